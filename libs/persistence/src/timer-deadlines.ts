import type { TimerEffect } from '@orders/domain';

/**
 * When a timer's transition is due: at the deadline an order column holds (to pay, to pay a
 * presale's balance), or once the order has been in its status for `inStatusForMs` since it
 * last entered it (shipped, the time the buyer has to confirm receipt; delivered, the
 * after-sales window, which a refused, closed or partial return opens again; returning, the
 * time an approved return's parcel has to reach the warehouse).
 */
export type TimerDeadline = 'payment_deadline' | 'balance_deadline' | { inStatusForMs: number };

/** The config that times the timers running from a status, as the config names it. */
export interface TimerSettings {
  AUTO_CONFIRM_MS: number;
  AFTER_SALES_WINDOW_MS: number;
  RETURN_PARCEL_WINDOW_MS: number;
  RETURN_REVIEW_WINDOW_MS: number;
}

/** The deadline the timer an effect starts fires after: its transition's `dueAfter`. */
export function timerDeadlineOf(effect: TimerEffect, settings: TimerSettings): TimerDeadline {
  if (effect === 'scheduleAutoConfirm') return { inStatusForMs: settings.AUTO_CONFIRM_MS };
  if (effect === 'scheduleCompletion') return { inStatusForMs: settings.AFTER_SALES_WINDOW_MS };
  if (effect === 'scheduleReturnClose') return { inStatusForMs: settings.RETURN_PARCEL_WINDOW_MS };
  if (effect === 'scheduleReturnReview') return { inStatusForMs: settings.RETURN_REVIEW_WINDOW_MS };
  return 'balance_deadline';
}

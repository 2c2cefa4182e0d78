import type { TimerEffect } from '@orders/domain';

/**
 * When a timer's transition is due: at the deadline an order column holds (to pay, to pay a
 * presale's balance), once the order has been in its status for `inStatusForMs` since it
 * last entered it (shipped, the time the buyer has to confirm receipt; returning, the
 * time an approved return's parcel has to reach the warehouse), or at the end of its after-sales
 * window (delivered: `afterSalesWindowMs` from its delivery or a partial return's receipt, which a
 * refused or closed return does not open again but gives back what was left of, and at least
 * `graceMs` after it: afterSalesWindowEnd).
 */
export type TimerDeadline = 'payment_deadline' | 'balance_deadline' | { inStatusForMs: number } | AfterSalesWindow;

/** The after-sales window's deadline (afterSalesWindowEnd over the order's history). */
export interface AfterSalesWindow {
  afterSalesWindowMs: number;
  graceMs: number;
}

export function isAfterSalesWindow(deadline: TimerDeadline): deadline is AfterSalesWindow {
  return typeof deadline === 'object' && 'afterSalesWindowMs' in deadline;
}

/** How long a timer of the deadline waits at most from the step that starts it (a job looking again waits that long). */
export function longestWaitOf(deadline: Exclude<TimerDeadline, string>): number {
  return isAfterSalesWindow(deadline) ? Math.max(deadline.afterSalesWindowMs, deadline.graceMs) : deadline.inStatusForMs;
}

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
  // a refused or closed return's grace: the time the shop had to review it (RETURN_REVIEW_WINDOW_MS, 2 days by
  // default against the window's 7), given back to the buyer to answer a refusal or close that came at the window's
  // end; never more than a whole window, the most a refusal gave before
  if (effect === 'scheduleCompletion') {
    return { afterSalesWindowMs: settings.AFTER_SALES_WINDOW_MS, graceMs: Math.min(settings.RETURN_REVIEW_WINDOW_MS, settings.AFTER_SALES_WINDOW_MS) };
  }
  if (effect === 'scheduleReturnClose') return { inStatusForMs: settings.RETURN_PARCEL_WINDOW_MS };
  if (effect === 'scheduleReturnReview') return { inStatusForMs: settings.RETURN_REVIEW_WINDOW_MS };
  return 'balance_deadline';
}

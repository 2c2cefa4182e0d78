/**
 * Steps that bring an order back to DELIVERED after a return that brought nothing back (refused, or closed as
 * never sent): they give back what was left of the after-sales window the delivery opened, not a whole new one.
 * Every other step into DELIVERED (the delivery itself, a buyer's or the system's confirmation, a partial return's
 * receipt, units actually back and paid for) opens a whole window. A whole window from each refusal or close let a
 * buyer chain returns never sent near each window's end and keep the order open for ever: never completed, its
 * settlement and its points waiting.
 */
export const WINDOW_RESUMING_ACTIONS: ReadonlySet<string> = new Set(['refuse_return', 'close_return']);

/** A step of an order's history as the window reads it (oldest first). */
export interface WindowStep {
  from: string | null;
  action: string;
  to: string;
  at: Date;
}

/**
 * When the after-sales window of an order in DELIVERED ends: `windowMs` from the last step that opened a whole
 * window (WINDOW_RESUMING_ACTIONS: every step into DELIVERED but a refusal or a close), or, after a return asked
 * inside that window and refused or closed, `graceMs` after that return ended if that is later (a return refused
 * or closed at, or after, the window's end leaves the buyer a short time to answer it: ask again for the right
 * units, say). A return asked after the window's end (inside such a grace) earns none, so the grace cannot be
 * chained either. Null when the order never entered DELIVERED.
 */
export function afterSalesWindowEnd(steps: readonly WindowStep[], windowMs: number, graceMs: number): Date | null {
  let openedUntil: number | null = null;
  let end: number | null = null;
  let askedAt: number | null = null;
  for (const step of steps) {
    const at = step.at.getTime();
    if (step.action === 'request_return') askedAt = at;
    if (step.to !== 'DELIVERED' || step.from === 'DELIVERED') continue;
    if (WINDOW_RESUMING_ACTIONS.has(step.action) && openedUntil !== null && end !== null) {
      if (askedAt !== null && askedAt < openedUntil) end = Math.max(end, at + graceMs);
    } else {
      openedUntil = at + windowMs;
      end = openedUntil;
    }
  }
  return end === null ? null : new Date(end);
}

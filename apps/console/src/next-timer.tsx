import { formatTime, type Order } from './api.js';

/** What each timer does to the order when it falls due, as an operator reads it. */
const TIMER_TEXT: Record<string, string> = {
  expire: 'Expires unpaid (its units back on sale)',
  expire_balance: 'Balance no longer payable (the deposit kept)',
  auto_confirm: 'Receipt confirmed for the buyer',
  complete: 'Completes (the after-sales window closes, once no refund is owed)',
  approve_return: 'Return approved for the shop',
  close_return: 'Return closed (its parcel never came)',
};

/**
 * What the system does to the order by itself next, and from when (the api's `nextTimer`), and
 * the refunds owed that hold a completion: an operator seeing its time passed learns what it waits for.
 */
export function NextTimer({ timer }: { timer: NonNullable<Order['nextTimer']> }) {
  const owed = timer.refundsOwed ?? [];
  return (
    <>
      {TIMER_TEXT[timer.action] ?? timer.action}: <time dateTime={timer.dueAt}>{formatTime(timer.dueAt)}</time>
      {owed.length > 0 && ` (held while the buyer is still owed ${owed.length === 1 ? 'refund' : 'refunds'} ${owed.join(', ')})`}
    </>
  );
}

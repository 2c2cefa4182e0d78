import { IllegalTransition } from '@orders/domain';
import { afterStaleOrderVersion, RefundRepository, retryTransaction } from '@orders/persistence';
import type { AppDeps } from './app-deps.js';

/**
 * After a refund's part was paid back (by the payment system's callback, or another way an
 * admin named): an order in REFUNDING with no refund left unsettled becomes REFUNDED, and a
 * split order it is, or is part of, held open while its buyer was owed money, closes as its
 * children give it (closeSplitOrderOnceRefunded). Its status as it is now; `changed` when this
 * closed it, or a child of it.
 */
export async function closeOrderOnceRefunded(deps: AppDeps, orderId: string, refundId: string): Promise<{ changed: boolean; status: string }> {
  // the order as it is after the part's commit: read before it, it could miss the order's last
  // refund opened, paid back and confirmed meanwhile, and nothing would close the order
  const now = (await deps.orders.findOrderRow(orderId))!;
  const refunded = now.status === 'REFUNDING' && (await new RefundRepository(deps.db).unsettled(orderId)) === 0 && (await refundSucceeded(deps, orderId, refundId));
  const childrenClosed = await deps.orders.closeSplitOrderOnceRefunded(now, { at: deps.clock(), detail: `refund ${refundId}` });
  for (const { order, fired } of childrenClosed) deps.metrics.transitions.inc({ type: order.type, from: fired.from, to: fired.to, action: fired.action });
  return { changed: refunded || childrenClosed.length > 0, status: (await deps.orders.findOrderRow(orderId))!.status };
}

/** The order's refund_succeeded; false when it was closed meanwhile by another refund's settlement, or is split (its children close). */
async function refundSucceeded(deps: AppDeps, orderId: string, refundId: string): Promise<boolean> {
  try {
    // the payment system's word in the order's table, whoever paid the money back: the refund's own history says who
    const { order: closed, fired } = await retryTransaction(
      () => deps.orders.applyTransition({ orderId, action: 'refund_succeeded', actor: 'payment', at: deps.clock(), detail: `refund ${refundId}` }),
      { alsoAfter: afterStaleOrderVersion },
    );
    deps.metrics.transitions.inc({ type: closed.type, from: fired.from, to: fired.to, action: fired.action });
    return true;
  } catch (error) {
    if (!(error instanceof IllegalTransition)) throw error;
    return false;
  }
}

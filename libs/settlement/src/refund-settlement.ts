import { IllegalTransition } from '@orders/domain';
import { afterStaleOrderVersion, RefundRepository, retryTransaction, type RefundPartView, type RefundView } from '@orders/persistence';
import type { SettlementDeps, SettlementLog } from './payment-settlement.js';

/** What closing an order once refunded takes: settling a refund part needs no queue. */
export type RefundSettlementDeps = Pick<SettlementDeps, 'db' | 'orders' | 'metrics' | 'clock'>;

/**
 * One part of a refund settled as the payment system reported it (its callback, or its answer
 * to the part asked for again: its callbacks may be lost for good). A part paid back completes
 * the refund with its last part, and an order in REFUNDING with no refund left unconfirmed
 * becomes REFUNDED; a part it could not pay back is recorded failed, for an admin to settle or
 * ask again. A part already settled so changes nothing.
 */
export async function settleRefundPart(
  deps: RefundSettlementDeps,
  refund: Pick<RefundView, 'refundId' | 'orderId' | 'kind'>,
  part: RefundPartView,
  status: 'SUCCEEDED' | 'FAILED',
  log: SettlementLog,
): Promise<{ changed: boolean; status: string }> {
  const refunds = new RefundRepository(deps.db);
  const partSeen = { orderId: refund.orderId, refundId: refund.refundId, partId: part.partId, paymentId: part.paymentId, amountCents: part.amountCents };
  if (status === 'FAILED') {
    const changed = await retryTransaction(() => refunds.failPart(part.partId, deps.clock()));
    if (changed) {
      deps.metrics.refunds.inc({ kind: refund.kind, outcome: 'failed' });
      log.error(partSeen, 'the payment system could not pay a refund back');
    }
    return { changed, status: (await deps.orders.findOrderRow(refund.orderId))!.status };
  }
  const { changed, refundSettled, owedElsewhere } = await retryTransaction(() => refunds.confirmPart(part.partId, deps.clock()));
  if (owedElsewhere === 'SETTLED_BY_HAND') {
    deps.metrics.refunds.inc({ kind: refund.kind, outcome: 'succeeded_after_settled_by_hand' });
    log.error(partSeen, 'the payment system paid back a refund part an admin had settled by hand: the buyer was paid back twice');
  } else if (owedElsewhere === 'ASKED_AGAIN') {
    deps.metrics.refunds.inc({ kind: refund.kind, outcome: 'succeeded_after_asked_again' });
    log.error(
      { ...partSeen, askedAgainAs: part.askedAgainAs },
      'the payment system paid back a refund part it had declined and an admin had asked for again under another part: unless that one failed too, the buyer was paid back twice',
    );
  }
  if (changed) deps.metrics.refundedCents.inc({ kind: refund.kind }, part.amountCents);
  if (refundSettled) deps.metrics.refunds.inc({ kind: refund.kind, outcome: 'succeeded' });
  const closed = await closeOrderOnceRefunded(deps, refund.orderId, `refund ${refund.refundId}`);
  return { changed: changed || closed.changed, status: closed.status };
}

/**
 * After a refund's part was paid back (by the payment system's word, or another way an
 * admin named), or a refund job paid back what was due: an order in REFUNDING with no refund
 * left unsettled becomes REFUNDED, and a split order it is, or is part of, held open while its
 * buyer was owed money, closes as its children give it (closeSplitOrderOnceRefunded); each step
 * with `detail`. Its status as it is now; `changed` when this closed it, or a child of it.
 */
export async function closeOrderOnceRefunded(deps: RefundSettlementDeps, orderId: string, detail: string): Promise<{ changed: boolean; status: string }> {
  // the order as it is after the part's commit: read before it, it could miss the order's last
  // refund opened, paid back and confirmed meanwhile, and nothing would close the order
  const now = (await deps.orders.findOrderRow(orderId))!;
  const refunded = now.status === 'REFUNDING' && (await new RefundRepository(deps.db).unsettled(orderId)) === 0 && (await refundSucceeded(deps, orderId, detail));
  const childrenClosed = await deps.orders.closeSplitOrderOnceRefunded(now, { at: deps.clock(), detail });
  for (const { order, fired } of childrenClosed) deps.metrics.transitions.inc({ type: order.type, from: fired.from, to: fired.to, action: fired.action });
  return { changed: refunded || childrenClosed.length > 0, status: (await deps.orders.findOrderRow(orderId))!.status };
}

/** The order's refund_succeeded; false when it was closed meanwhile by another refund's settlement, or is split (its children close). */
async function refundSucceeded(deps: RefundSettlementDeps, orderId: string, detail: string): Promise<boolean> {
  try {
    // the payment system's word in the order's table, whoever paid the money back: the refund's own history says who
    const { order: closed, fired } = await retryTransaction(
      () => deps.orders.applyTransition({ orderId, action: 'refund_succeeded', actor: 'payment', at: deps.clock(), detail }),
      { alsoAfter: afterStaleOrderVersion },
    );
    deps.metrics.transitions.inc({ type: closed.type, from: fired.from, to: fired.to, action: fired.action });
    return true;
  } catch (error) {
    if (!(error instanceof IllegalTransition)) throw error;
    return false;
  }
}

import type { Transaction } from 'kysely';
import type { OrderDb } from './connection.js';
import type { Database } from './schema.js';

/** A refund the buyer is still owed, of one order. */
export interface RefundOwed {
  orderId: string;
  refundId: string;
  amountCents: number;
}

/** The refund that gives a payment the order could not take (late, a second one, another amount) back whole. */
export function latePaymentRefundId(paymentId: string): string {
  return `${paymentId}-refund`;
}

/**
 * The orders' refunds the buyer is still owed, oldest first: due or sent and not confirmed by the
 * payment system, a part it declined among them until paid or settled by hand; then the payments
 * due back whole (refund_due_at), under the id of the refund that will give each back: that refund
 * is written only once paid, so while the payment system declines it, it shows nowhere else. In
 * `db`, a transaction's under the orders' locks where a step depends on it (an order's completion
 * waits for them), or the pool's where a view shows them.
 */
export async function refundsOwedIn(db: OrderDb | Transaction<Database>, orderIds: readonly string[]): Promise<RefundOwed[]> {
  if (orderIds.length === 0) return [];
  const [rows, late] = await Promise.all([
    unsettledRefundsOf(db, orderIds).select(['order_id', 'refund_id', 'amount_cents']).orderBy('created_at').orderBy('refund_id').execute(),
    db.selectFrom('payments').select(['order_id', 'payment_id', 'amount_cents']).where('order_id', 'in', orderIds).where('refund_due_at', 'is not', null).orderBy('refund_due_at').orderBy('payment_id').execute(),
  ]);
  return [
    ...rows.map((row) => ({ orderId: row.order_id, refundId: row.refund_id, amountCents: Number(row.amount_cents) })),
    ...late.map((row) => ({ orderId: row.order_id, refundId: latePaymentRefundId(row.payment_id), amountCents: Number(row.amount_cents) })),
  ];
}

/** The orders' refunds due or sent and not confirmed by the payment system yet. */
export function unsettledRefundsOf(db: OrderDb | Transaction<Database>, orderIds: readonly string[]) {
  return db.selectFrom('refunds').where('order_id', 'in', orderIds).where('status', 'in', ['PENDING', 'SENT']);
}

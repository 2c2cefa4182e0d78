import type { Transaction } from 'kysely';
import type { OrderDb } from './connection.js';
import type { Database } from './schema.js';

/** A refund the buyer is still owed, of one order. */
export interface RefundOwed {
  orderId: string;
  refundId: string;
  amountCents: number;
}

/**
 * The orders' refunds the buyer is still owed, oldest first: due or sent and not confirmed by the
 * payment system, a part it declined among them until paid or settled by hand. In `db`, a
 * transaction's under the orders' locks where a step depends on it (an order's completion waits
 * for them), or the pool's where a view shows them.
 */
export async function refundsOwedIn(db: OrderDb | Transaction<Database>, orderIds: readonly string[]): Promise<RefundOwed[]> {
  if (orderIds.length === 0) return [];
  const rows = await db
    .selectFrom('refunds')
    .select(['order_id', 'refund_id', 'amount_cents'])
    .where('order_id', 'in', orderIds)
    .where('status', 'in', ['PENDING', 'SENT'])
    .orderBy('created_at')
    .orderBy('refund_id')
    .execute();
  return rows.map((row) => ({ orderId: row.order_id, refundId: row.refund_id, amountCents: Number(row.amount_cents) }));
}

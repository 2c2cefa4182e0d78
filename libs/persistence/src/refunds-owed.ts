import { sql, type Transaction } from 'kysely';
import type { OrderDb } from './connection.js';
import type { Database } from './schema.js';

/**
 * When a refund part (`refund_parts as p`) was first sent: `sent_at`, or, for one sent before that
 * column, its drawing. Not the drawing alone: a refund falls due (its parts drawn) long before it is
 * sent when its units wait in a parcel the warehouse holds, or the payment system's refunds are
 * away, and a part sent a day after its drawing would be given up at its first lost callback, never
 * asked for again.
 */
export const firstSent = sql<Date>`COALESCE(p.sent_at, p.created_at)`;

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
  return asOwed(await owedRowsOf(db, orderIds));
}

/**
 * refundsOwedIn as committed now, in a transaction holding the orders' locks: each refund the
 * transaction's snapshot (taken at its first read, maybe before those locks) saw owed, and every
 * payment of the orders, is read again, locked by primary key, a settlement under way waited for.
 * By the snapshot alone, a step would find owed a refund whose settlement committed since, its own
 * check of the order run before the step's write: the order would read owed with nothing left to
 * close it; and it would miss a payment recorded due back since (a late payment), the order read
 * closed while its buyer is owed. By primary key: a locking read by order id or status locks index
 * ranges, holding up other orders' refunds (settleWhenPaidBack).
 */
export async function refundsOwedNow(trx: Transaction<Database>, orderIds: readonly string[]): Promise<RefundOwed[]> {
  if (orderIds.length === 0) return [];
  const [seen, paymentIds] = await Promise.all([
    refundsOwedRows(trx, orderIds),
    trx.selectFrom('payments').select('payment_id').where('order_id', 'in', orderIds).execute(),
  ]);
  const [refunds, payments] = await Promise.all([
    seen.length === 0 ? [] : trx.selectFrom('refunds').select(['refund_id', 'status']).where('refund_id', 'in', seen.map((row) => row.refund_id)).forUpdate().execute(),
    paymentIds.length === 0
      ? []
      : trx
          .selectFrom('payments')
          .select(['order_id', 'payment_id', 'amount_cents'])
          .where('payment_id', 'in', paymentIds.map((row) => row.payment_id))
          .where('refund_due_at', 'is not', null)
          .orderBy('refund_due_at')
          .orderBy('payment_id')
          .forUpdate()
          .execute(),
  ]);
  const refundsOwed = new Set(refunds.filter((row) => UNSETTLED.includes(row.status)).map((row) => row.refund_id));
  return asOwed({ refunds: seen.filter((row) => refundsOwed.has(row.refund_id)), late: payments });
}

async function owedRowsOf(db: OrderDb | Transaction<Database>, orderIds: readonly string[]) {
  if (orderIds.length === 0) return { refunds: [], late: [] };
  const [refunds, late] = await Promise.all([
    refundsOwedRows(db, orderIds),
    db.selectFrom('payments').select(['order_id', 'payment_id', 'amount_cents']).where('order_id', 'in', orderIds).where('refund_due_at', 'is not', null).orderBy('refund_due_at').orderBy('payment_id').execute(),
  ]);
  return { refunds, late };
}

function asOwed({ refunds, late }: Awaited<ReturnType<typeof owedRowsOf>>): RefundOwed[] {
  return [
    ...refunds.map((row) => ({ orderId: row.order_id, refundId: row.refund_id, amountCents: Number(row.amount_cents) })),
    ...late.map((row) => ({ orderId: row.order_id, refundId: latePaymentRefundId(row.payment_id), amountCents: Number(row.amount_cents) })),
  ];
}

/** A refund's statuses while the payment system has not confirmed it. */
const UNSETTLED = ['PENDING', 'SENT'];

/** The orders' refunds owed, oldest first: what refundsOwedIn and refundsOwedNow read of each. */
const refundsOwedRows = (db: OrderDb | Transaction<Database>, orderIds: readonly string[]) =>
  unsettledRefundsOf(db, orderIds).select(['order_id', 'refund_id', 'amount_cents']).orderBy('created_at').orderBy('refund_id').execute();

/** The orders' refunds due or sent and not confirmed by the payment system yet. */
export function unsettledRefundsOf(db: OrderDb | Transaction<Database>, orderIds: readonly string[]) {
  return db.selectFrom('refunds').where('order_id', 'in', orderIds).where('status', 'in', UNSETTLED);
}

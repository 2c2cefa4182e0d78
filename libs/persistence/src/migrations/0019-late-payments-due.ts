import { sql, type Kysely } from 'kysely';
import { addColumnsOnce, createIndexOnce, indexExists } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A payment taken after its order could take it is due to go back whole from the moment it is
 * recorded until its refund is: the overdue sweep enqueues again the refund job of one due for a
 * while (its job lost), a range of this index. The late payments recorded before this column
 * that were never given back are marked due now: a payment that did not fire its order's pay
 * transition (order_history names it, paymentDetail) and has no refund of its own, nor a part of
 * a refund order drawn from it (which, before refunds drew from the payments that paid alone,
 * gave some of it back: left to the operator, never given back twice).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('payments').addColumn('refund_due_at', sql`datetime(3)`));
  // until the index (the next step) exists, the payments to mark can be marked again whole
  if (!(await indexExists(db, 'payments', 'payments_refund_due'))) {
    await sql`
      UPDATE payments p SET p.refund_due_at = p.updated_at
      WHERE p.status = 'SUCCEEDED' AND p.amount_cents > 0
        AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.refund_id = CONCAT(p.payment_id, '-refund'))
        AND NOT EXISTS (SELECT 1 FROM refund_parts rp WHERE rp.payment_id = p.payment_id)
        AND NOT EXISTS (
          SELECT 1 FROM order_history h
          WHERE h.order_id = p.order_id AND h.action IN ('pay', 'pay_deposit')
            AND LEFT(h.detail, CHAR_LENGTH(CONCAT('payment ', p.payment_id, ', transaction '))) = CONCAT('payment ', p.payment_id, ', transaction ')
        )`.execute(db);
  }
  await createIndexOnce(db, db.schema.createIndex('payments_refund_due').on('payments').column('refund_due_at'));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('payments_refund_due').on('payments').execute();
  await db.schema.alterTable('payments').dropColumn('refund_due_at').execute();
}

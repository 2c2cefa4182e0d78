import { sql, type Kysely } from 'kysely';
import { addColumnsOnce, createIndexOnce, indexExists } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * When the payment system last answered a request for a payment: from then on it may take the
 * money, whatever the order does, and a payment still PENDING PAYMENT_CONFIRMATION_WAIT_MS later
 * had its callback lost and is asked about again (the overdue sweep, a range of this index). The
 * payments pending when it lands are taken as answered when last changed: most were (the request
 * job fails one its order no longer owes before asking), and left unasked the money of those
 * whose callback was lost would stay with the shop.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('payments').addColumn('requested_at', sql`datetime(3)`));
  // until the index (the next step) exists, the payments to mark can be marked again whole
  if (!(await indexExists(db, 'payments', 'payments_pending_requested'))) {
    await sql`UPDATE payments SET requested_at = updated_at WHERE status = 'PENDING' AND amount_cents > 0 AND requested_at IS NULL`.execute(db);
  }
  await createIndexOnce(db, db.schema.createIndex('payments_pending_requested').on('payments').columns(['status', 'requested_at']));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('payments_pending_requested').on('payments').execute();
  await db.schema.alterTable('payments').dropColumn('requested_at').execute();
}

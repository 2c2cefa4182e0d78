import { sql, type Kysely } from 'kysely';
import { createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

const now3 = sql`CURRENT_TIMESTAMP(3)`;

/**
 * A refund order drawn from several payments (a presale's deposit and balance): one part
 * per payment, each sent to and confirmed by the payment system on its own. Every refund
 * order from before this migration went back to one payment: it becomes one part under
 * the refund's own id, the id the payment system already knows it by.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('refund_parts')
    .ifNotExists()
    .addColumn('part_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('refund_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('payment_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('amount_cents', 'bigint', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .addColumn('updated_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .execute();
  await createIndexOnce(db, db.schema.createIndex('refund_parts_refund').on('refund_parts').column('refund_id'));
  await createIndexOnce(db, db.schema.createIndex('refund_parts_payment').on('refund_parts').column('payment_id'));
  // a return still under review has no money drawn yet: it is drawn when the units are received
  await sql`
    INSERT INTO refund_parts (part_id, refund_id, payment_id, amount_cents, status, created_at, updated_at)
    SELECT refund_id, refund_id, payment_id, amount_cents, status, created_at, updated_at
    FROM refunds r
    WHERE payment_id IS NOT NULL AND amount_cents > 0 AND status IN ('PENDING', 'SENT', 'SUCCEEDED')
      AND NOT EXISTS (SELECT 1 FROM refund_parts drawn WHERE drawn.refund_id = r.refund_id)
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('refund_parts').execute();
}

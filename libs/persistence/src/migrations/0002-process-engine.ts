import { sql, type Kysely } from 'kysely';
import { addColumnsOnce, createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The process engine: presale deadlines, what each payment is for, shipping allocated
 * to lines, shipment progress, and the indexes of the order centre's searches.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('orders').addColumn('balance_deadline', sql`datetime(3)`));
  await addColumnsOnce(db, db.schema.alterTable('order_items').addColumn('shipping_cents', 'bigint', (c) => c.notNull().defaultTo(0)));
  await addColumnsOnce(
    db,
    db.schema
      .alterTable('payments')
      .addColumn('purpose', 'varchar(16)', (c) => c.notNull().defaultTo('full'))
      .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(1))
  );
  // one attempt number per (order, purpose): two concurrent pay requests cannot both start attempt n
  await createIndexOnce(db, db.schema.createIndex('payments_attempt').on('payments').columns(['order_id', 'purpose', 'attempt']).unique());
  await addColumnsOnce(db, db.schema.alterTable('shipments').addColumn('shipped_at', sql`datetime(3)`).addColumn('delivered_at', sql`datetime(3)`));
  await createIndexOnce(db, db.schema.createIndex('shipments_order_unique').on('shipments').column('order_id').unique());
  await createIndexOnce(db, db.schema.createIndex('refunds_order_kind').on('refunds').columns(['order_id', 'kind']));
  await createIndexOnce(db, db.schema.createIndex('orders_created').on('orders').columns(['created_at', 'order_id']));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('orders_created').on('orders').execute();
  await db.schema.dropIndex('refunds_order_kind').on('refunds').execute();
  await db.schema.dropIndex('shipments_order_unique').on('shipments').execute();
  await db.schema.alterTable('shipments').dropColumn('shipped_at').dropColumn('delivered_at').execute();
  await db.schema.dropIndex('payments_attempt').on('payments').execute();
  await db.schema.alterTable('payments').dropColumn('purpose').dropColumn('attempt').execute();
  await db.schema.alterTable('order_items').dropColumn('shipping_cents').execute();
  await db.schema.alterTable('orders').dropColumn('balance_deadline').execute();
}

import { sql, type Kysely } from 'kysely';
import { createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

const now3 = sql`CURRENT_TIMESTAMP(3)`;

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('skus')
    .ifNotExists()
    .addColumn('sku_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('title', 'varchar(200)', (c) => c.notNull())
    .addColumn('price_cents', 'bigint', (c) => c.notNull())
    .addColumn('merchant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('channel', 'varchar(16)', (c) => c.notNull())
    .addColumn('warehouse_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('deduction', 'varchar(16)', (c) => c.notNull())
    .addColumn('stock', 'bigint', (c) => c.notNull())
    .addColumn('flash_price_cents', 'bigint')
    .addColumn('flash_starts_at', sql`datetime(3)`)
    .addColumn('flash_ends_at', sql`datetime(3)`)
    .addColumn('flash_per_user_limit', 'integer')
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .addColumn('updated_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .execute();
  await createIndexOnce(db, db.schema.createIndex('skus_merchant').on('skus').columns(['merchant_id', 'sku_id']));

  await db.schema
    .createTable('stock_ledger')
    .ifNotExists()
    .addColumn('id', 'bigint', (c) => c.primaryKey().autoIncrement())
    .addColumn('sku_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('ref', 'varchar(64)', (c) => c.notNull())
    .addColumn('order_id', 'varchar(32)')
    .addColumn('qty', 'bigint', (c) => c.notNull())
    .addColumn('reason', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .addUniqueConstraint('stock_ledger_movement', ['sku_id', 'kind', 'ref'])
    .execute();
  await createIndexOnce(db, db.schema.createIndex('stock_ledger_order').on('stock_ledger').column('order_id'));

  await db.schema
    .createTable('orders')
    .ifNotExists()
    .addColumn('order_id', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('parent_order_id', 'varchar(32)')
    .addColumn('type', 'varchar(32)', (c) => c.notNull())
    .addColumn('status', 'varchar(32)', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('channel', 'varchar(32)')
    .addColumn('subtotal_cents', 'bigint', (c) => c.notNull())
    .addColumn('discount_cents', 'bigint', (c) => c.notNull())
    .addColumn('shipping_cents', 'bigint', (c) => c.notNull())
    .addColumn('payable_cents', 'bigint', (c) => c.notNull())
    .addColumn('refunded_cents', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('coupon_code', 'varchar(64)')
    .addColumn('accepted_at', sql`datetime(3)`, (c) => c.notNull())
    .addColumn('payment_deadline', sql`datetime(3)`, (c) => c.notNull())
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .addColumn('updated_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .execute();
  // order ids are time-sortable (ULID), so "newest first" pages on the primary key
  await createIndexOnce(db, db.schema.createIndex('orders_user').on('orders').columns(['user_id', 'order_id']));
  await createIndexOnce(db, db.schema.createIndex('orders_status').on('orders').columns(['status', 'order_id']));
  await createIndexOnce(db, db.schema.createIndex('orders_type').on('orders').columns(['type', 'order_id']));
  await createIndexOnce(db, db.schema.createIndex('orders_parent').on('orders').column('parent_order_id'));

  await db.schema
    .createTable('order_items')
    .ifNotExists()
    .addColumn('order_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('line_no', 'integer', (c) => c.notNull())
    .addColumn('sku_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('title', 'varchar(200)', (c) => c.notNull())
    .addColumn('merchant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('channel', 'varchar(16)', (c) => c.notNull())
    .addColumn('warehouse_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('deduction', 'varchar(16)', (c) => c.notNull())
    .addColumn('qty', 'integer', (c) => c.notNull())
    .addColumn('list_price_cents', 'bigint', (c) => c.notNull())
    .addColumn('unit_price_cents', 'bigint', (c) => c.notNull())
    .addColumn('discount_cents', 'bigint', (c) => c.notNull())
    .addColumn('payable_cents', 'bigint', (c) => c.notNull())
    .addColumn('refunded_qty', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('refunded_cents', 'bigint', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('order_items_pk', ['order_id', 'line_no'])
    .execute();
  await createIndexOnce(db, db.schema.createIndex('order_items_merchant').on('order_items').columns(['merchant_id', 'order_id']));
  await createIndexOnce(db, db.schema.createIndex('order_items_sku').on('order_items').columns(['sku_id', 'order_id']));

  await db.schema
    .createTable('order_history')
    .ifNotExists()
    .addColumn('id', 'bigint', (c) => c.primaryKey().autoIncrement())
    .addColumn('order_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('from_status', 'varchar(32)')
    .addColumn('action', 'varchar(64)', (c) => c.notNull())
    .addColumn('to_status', 'varchar(32)', (c) => c.notNull())
    .addColumn('actor', 'varchar(32)', (c) => c.notNull())
    .addColumn('detail', 'varchar(500)')
    .addColumn('at', sql`datetime(3)`, (c) => c.notNull())
    // one history row per version: a transition applied twice cannot be recorded twice
    .addUniqueConstraint('order_history_version', ['order_id', 'version'])
    .execute();

  await db.schema
    .createTable('payments')
    .ifNotExists()
    .addColumn('payment_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('order_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('method', 'varchar(32)', (c) => c.notNull())
    .addColumn('amount_cents', 'bigint', (c) => c.notNull())
    .addColumn('status', 'varchar(32)', (c) => c.notNull())
    .addColumn('transaction_id', 'varchar(128)')
    .addColumn('paid_at', sql`datetime(3)`)
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .addColumn('updated_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .execute();
  await createIndexOnce(db, db.schema.createIndex('payments_order').on('payments').column('order_id'));

  await db.schema
    .createTable('shipments')
    .ifNotExists()
    .addColumn('shipment_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('order_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('warehouse_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('tracking_no', 'varchar(128)')
    .addColumn('status', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .addColumn('updated_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .execute();
  await createIndexOnce(db, db.schema.createIndex('shipments_order').on('shipments').column('order_id'));

  await db.schema
    .createTable('refunds')
    .ifNotExists()
    .addColumn('refund_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('order_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('status', 'varchar(32)', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('reason', 'varchar(500)', (c) => c.notNull())
    .addColumn('amount_cents', 'bigint', (c) => c.notNull())
    .addColumn('items', 'text', (c) => c.notNull())
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .addColumn('updated_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .execute();
  await createIndexOnce(db, db.schema.createIndex('refunds_order').on('refunds').column('order_id'));
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['refunds', 'shipments', 'payments', 'order_history', 'order_items', 'orders', 'stock_ledger', 'skus']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}

import { sql, type Kysely } from 'kysely';
import { addColumnsOnce, createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

const now3 = sql`CURRENT_TIMESTAMP(3)`;

/**
 * Pricing beyond the catalog: threshold promotions, coupons and each buyer's uses of
 * them, member levels, shipping fees per warehouse; what each order and line used
 * (as JSON text), which payment a refund gives money back from, and a refund's own history.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('promotions')
    .ifNotExists()
    .addColumn('promotion_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('title', 'varchar(200)', (c) => c.notNull())
    .addColumn('threshold_cents', 'bigint', (c) => c.notNull())
    .addColumn('off_cents', 'bigint', (c) => c.notNull())
    .addColumn('sku_ids', 'text')
    .addColumn('starts_at', sql`datetime(3)`, (c) => c.notNull())
    .addColumn('ends_at', sql`datetime(3)`, (c) => c.notNull())
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .execute();
  await db.schema
    .createTable('coupons')
    .ifNotExists()
    .addColumn('code', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('percent_off', 'integer', (c) => c.notNull())
    .addColumn('off_cents', 'bigint', (c) => c.notNull())
    .addColumn('min_spend_cents', 'bigint', (c) => c.notNull())
    .addColumn('per_buyer_limit', 'integer', (c) => c.notNull())
    .addColumn('starts_at', sql`datetime(3)`, (c) => c.notNull())
    .addColumn('ends_at', sql`datetime(3)`, (c) => c.notNull())
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(now3))
    .execute();
  // one row per order that used a coupon; 'restored' once the order closed without paying
  await db.schema
    .createTable('coupon_redemptions')
    .ifNotExists()
    .addColumn('code', 'varchar(64)', (c) => c.notNull())
    .addColumn('order_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('at', sql`datetime(3)`, (c) => c.notNull())
    .addPrimaryKeyConstraint('coupon_redemptions_pk', ['code', 'order_id'])
    .execute();
  await createIndexOnce(db, db.schema.createIndex('coupon_redemptions_buyer').on('coupon_redemptions').columns(['code', 'user_id', 'status']));
  await db.schema
    .createTable('member_levels')
    .ifNotExists()
    .addColumn('level', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('discount_percent', 'integer', (c) => c.notNull())
    .addColumn('free_shipping', 'boolean', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('members')
    .ifNotExists()
    .addColumn('user_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('level', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('warehouse_shipping')
    .ifNotExists()
    .addColumn('warehouse_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('fee_cents', 'bigint', (c) => c.notNull())
    .execute();
  await addColumnsOnce(db, db.schema.alterTable('orders').addColumn('benefits', 'text'));
  await addColumnsOnce(db, db.schema.alterTable('order_items').addColumn('discounts', 'text'));
  await addColumnsOnce(db, db.schema.alterTable('refunds').addColumn('payment_id', 'varchar(64)').addColumn('history', 'text'));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('refunds').dropColumn('payment_id').dropColumn('history').execute();
  await db.schema.alterTable('order_items').dropColumn('discounts').execute();
  await db.schema.alterTable('orders').dropColumn('benefits').execute();
  for (const table of ['warehouse_shipping', 'members', 'member_levels', 'coupon_redemptions', 'coupons', 'promotions']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}

import { sql, type Kysely } from 'kysely';
import { createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Member levels, buyers' levels and shipping fees keep every value they had and since
 * when: an order waits in the queue (a sale's backlog, a MySQL outage) and is priced with
 * the values in force when it was accepted, not with a change made while it waited.
 * The values already set are taken as in force since before any order still waiting.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const since = sql`'1970-01-01 00:00:00.000'`;
  await db.schema
    .createTable('member_level_history')
    .ifNotExists()
    .addColumn('change_id', 'bigint', (c) => c.primaryKey().autoIncrement())
    .addColumn('level', 'varchar(32)', (c) => c.notNull())
    .addColumn('discount_percent', 'integer', (c) => c.notNull())
    .addColumn('free_shipping', 'boolean', (c) => c.notNull())
    .addColumn('effective_from', sql`datetime(3)`, (c) => c.notNull())
    .execute();
  await createIndexOnce(db, db.schema.createIndex('member_level_history_level').on('member_level_history').columns(['level', 'effective_from']));
  await sql`
    INSERT INTO member_level_history (level, discount_percent, free_shipping, effective_from)
    SELECT src.level, src.discount_percent, src.free_shipping, ${since} FROM member_levels src
    WHERE NOT EXISTS (SELECT 1 FROM member_level_history h WHERE h.level = src.level)`.execute(db);

  await db.schema
    .createTable('member_history')
    .ifNotExists()
    .addColumn('change_id', 'bigint', (c) => c.primaryKey().autoIncrement())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('level', 'varchar(32)', (c) => c.notNull())
    .addColumn('effective_from', sql`datetime(3)`, (c) => c.notNull())
    .execute();
  await createIndexOnce(db, db.schema.createIndex('member_history_user').on('member_history').columns(['user_id', 'effective_from']));
  await sql`
    INSERT INTO member_history (user_id, level, effective_from)
    SELECT src.user_id, src.level, ${since} FROM members src
    WHERE NOT EXISTS (SELECT 1 FROM member_history h WHERE h.user_id = src.user_id)`.execute(db);

  await db.schema
    .createTable('shipping_fee_history')
    .ifNotExists()
    .addColumn('change_id', 'bigint', (c) => c.primaryKey().autoIncrement())
    .addColumn('warehouse_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('fee_cents', 'bigint', (c) => c.notNull())
    .addColumn('effective_from', sql`datetime(3)`, (c) => c.notNull())
    .execute();
  await createIndexOnce(db, db.schema.createIndex('shipping_fee_history_warehouse').on('shipping_fee_history').columns(['warehouse_id', 'effective_from']));
  await sql`
    INSERT INTO shipping_fee_history (warehouse_id, fee_cents, effective_from)
    SELECT src.warehouse_id, src.fee_cents, ${since} FROM warehouse_shipping src
    WHERE NOT EXISTS (SELECT 1 FROM shipping_fee_history h WHERE h.warehouse_id = src.warehouse_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['shipping_fee_history', 'member_history', 'member_level_history']) await db.schema.dropTable(table).ifExists().execute();
}

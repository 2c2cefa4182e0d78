import { migrateToLatest, type OrderDb } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { Migrator, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../src/migrations/index.js';

/** Every table's columns and indexes, and every row, in a stable order. */
async function snapshot(db: OrderDb): Promise<unknown> {
  const { rows: columns } = await sql<{ table_name: string }>`
    SELECT table_name, column_name, column_type, is_nullable, column_default, generation_expression
    FROM information_schema.columns WHERE table_schema = DATABASE() ORDER BY table_name, column_name`.execute(db);
  const { rows: indexes } = await sql`
    SELECT table_name, index_name, non_unique, seq_in_index, column_name
    FROM information_schema.statistics WHERE table_schema = DATABASE() ORDER BY table_name, index_name, seq_in_index`.execute(db);
  const tables = [...new Set(columns.map((column) => column.table_name))];
  const rows = Object.fromEntries(await Promise.all(tables.map(async (table) => [table, (await sql.raw(`SELECT * FROM \`${table}\` ORDER BY 1`).execute(db)).rows] as const)));
  return { columns, indexes, rows };
}

async function dropEveryTable(db: OrderDb): Promise<void> {
  const { rows } = await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()`.execute(db);
  for (const { name } of rows) await sql.raw(`DROP TABLE \`${name}\``).execute(db);
}

describe('a migration that failed midway runs again from its first step', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('migrations_again');
  });
  afterAll(async () => env?.cleanup());

  it('finishes a migration that stopped after adding its first column, as a lock wait timing out leaves it, and numbers the uses it found', async () => {
    await dropEveryTable(env.db);
    const migrator = new Migrator({ db: env.db, provider: { getMigrations: async () => migrations } });
    const before = await migrator.migrateTo('0015-order-address-optional');
    if (before.error) throw before.error;
    const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));
    await sql`INSERT INTO coupon_redemptions (code, order_id, user_id, status, at) VALUES ('ONCE', 'o1', 'ann', 'used', ${at(1)}), ('ONCE', 'o2', 'ann', 'used', ${at(2)})`.execute(env.db);
    // 0016's first statement, committed on its own before its next one failed
    await sql`ALTER TABLE coupon_redemptions ADD COLUMN use_no integer`.execute(env.db);

    await migrateToLatest(env.db);

    const executed = await env.db.selectFrom('kysely_migration' as never).select(sql<string>`name`.as('name')).execute();
    expect(executed.map((row) => row.name)).toEqual(Object.keys(migrations));
    const uses = await env.db.selectFrom('coupon_redemptions').select(['order_id', 'use_no', 'held_use_no']).orderBy('order_id').execute();
    expect(uses).toEqual([
      { order_id: 'o1', use_no: 1, held_use_no: 1 },
      { order_id: 'o2', use_no: 2, held_use_no: 2 },
    ]);
  });

  it('leaves the schema and every row as they are when each migration runs again over its own steps done', async () => {
    const at = new Date(Date.UTC(2026, 0, 1));
    // rows as the order system writes them since each backfilling migration ran: one run again must neither copy nor change them
    await env.db.insertInto('member_levels').values({ level: 'gold', discount_percent: 5, free_shipping: true }).execute();
    await env.db.insertInto('member_level_history').values({ level: 'gold', discount_percent: 5, free_shipping: true, effective_from: at }).execute();
    await env.db.insertInto('members').values({ user_id: 'ann', level: 'gold' }).execute();
    await env.db.insertInto('member_history').values({ user_id: 'ann', level: 'gold', effective_from: at }).execute();
    await env.db.insertInto('warehouse_shipping').values({ warehouse_id: 'wh-1', fee_cents: 500 }).execute();
    await env.db.insertInto('shipping_fee_history').values({ warehouse_id: 'wh-1', fee_cents: 500, effective_from: at }).execute();
    // an event the publisher has not put on the stream yet
    await env.db.insertInto('order_history').values({ order_id: 'o3', version: 1, from_status: null, action: 'create', to_status: 'PENDING_PAYMENT', actor: 'system', detail: null, at }).execute();
    const payment = (paymentId: string, purpose: string) => ({ payment_id: paymentId, order_id: 'o3', purpose, attempt: 1, method: 'card', amount_cents: 900, status: 'SUCCEEDED', transaction_id: `tx-${paymentId}`, paid_at: at, created_at: at, updated_at: at });
    // a balance paid (its history names no 'pay'), not due to go back
    await env.db.insertInto('payments').values([payment('o3-balance-1', 'balance'), payment('o3-full-1', 'full')]).execute();
    // a refund of a payment from before refund parts, and its part
    await env.db.insertInto('refunds').values({ refund_id: 'r1', order_id: 'o3', kind: 'refund', status: 'SENT', version: 1, reason: 'damaged', amount_cents: 900, items: '[]', payment_id: 'o3-full-1', created_at: at, updated_at: at }).execute();
    await env.db.insertInto('refund_parts').values({ part_id: 'r1', refund_id: 'r1', payment_id: 'o3-full-1', amount_cents: 900, status: 'SENT', created_at: at, updated_at: at }).execute();
    // a use given back freed number 1, and a later order took it
    await sql`INSERT INTO coupon_redemptions (code, order_id, user_id, status, at, use_no) VALUES ('TWICE', 'o4', 'bob', 'used', ${at}, 2), ('TWICE', 'o5', 'bob', 'used', ${new Date(at.getTime() + 60_000)}, 1)`.execute(env.db);
    const migrated = await snapshot(env.db);

    for (const migration of Object.values(migrations)) await migration.up(env.db);

    expect(await snapshot(env.db)).toEqual(migrated);
  });
});

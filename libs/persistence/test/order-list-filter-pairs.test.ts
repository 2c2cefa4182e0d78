import { createDb, OrderRepository, type OrderDb, type OrderListFilter } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { firstOrderIdAt } from '@orders/domain';
import { CompiledQuery, Kysely, MysqlDialect, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ORDERS = 12_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const MINUTE = 60_000;

let env: TestEnv;
let orders: OrderRepository;
/** the same database, its statements logged: what listOrders sent, to run again and count what it read */
let logged: OrderDb;
const statements: CompiledQuery[] = [];

const TYPES = ['flash_sale', 'flash_sale', 'presale', 'standard', 'standard'];
const STATUSES = ['PAID', 'PAID', 'SHIPPED', 'SHIPPED', 'SHIPPED', 'CANCELLED', 'PENDING_PAYMENT'];

/**
 * Order k is accepted at T0 + k minutes and written 2 s later, by one of 300 buyers; 2 in 5 are
 * flash-sale orders, 2 in 7 are paid (as the shop looks during a sale: paid and flash-sale
 * orders are many, those that are both a minority).
 */
async function fill(): Promise<void> {
  const rows = Array.from({ length: ORDERS }, (_, k) => {
    const acceptedMs = T0 + k * MINUTE;
    return {
      order_id: `${firstOrderIdAt(acceptedMs).slice(0, 10)}${String(k).padStart(16, '0')}`,
      parent_order_id: null,
      type: TYPES[k % TYPES.length]!,
      status: STATUSES[k % STATUSES.length]!,
      version: 1,
      user_id: `buyer-${k % 300}`,
      channel: null,
      subtotal_cents: 1_000,
      discount_cents: 0,
      shipping_cents: 0,
      payable_cents: 1_000,
      refunded_cents: 0,
      address: '{"name":"Ada","line1":"1 Main St"}',
      coupon_code: null,
      accepted_at: new Date(acceptedMs),
      payment_deadline: new Date(acceptedMs + 30 * MINUTE),
      created_at: new Date(acceptedMs + 2_000),
    };
  });
  for (let i = 0; i < rows.length; i += 2_000) await env.db.insertInto('orders').values(rows.slice(i, i + 2_000)).execute();
  await sql`ANALYZE TABLE orders`.execute(env.db);
}

beforeAll(async () => {
  env = await createTestEnv('order_list_pairs');
  orders = new OrderRepository(env.db);
  logged = new Kysely({ dialect: new MysqlDialect({ pool: createDb(env.config.MYSQL_URL, 1).pool }), log: (event) => void statements.push(event.query) });
  await fill();
}, 60_000);
afterAll(async () => {
  await logged?.destroy();
  await env?.cleanup();
});

/** The first two pages of 20 from `before` (or the newest), each from the cursor of the one before, as GET /v1/admin/orders reads them. */
async function twoPages(filter: Omit<OrderListFilter, 'limit'>): Promise<string[][]> {
  const first = (await orders.listOrders({ ...filter, limit: 20 })).map((o) => o.orderId);
  const second = (await orders.listOrders({ ...filter, before: first.at(-1), limit: 20 })).map((o) => o.orderId);
  return [first, second];
}

/** The same orders by the plainest query: every order that matches, newest first. */
async function expected(where: ReturnType<typeof sql>): Promise<string[][]> {
  const { rows } = await sql<{ order_id: string }>`SELECT o.order_id FROM orders o WHERE ${where} ORDER BY o.order_id DESC LIMIT 40`.execute(env.db);
  const ids = rows.map((row) => row.order_id);
  return [ids.slice(0, 20), ids.slice(20)];
}

/** Order k's id: accepted at T0 + k minutes. */
const orderId = (k: number) => `${firstOrderIdAt(T0 + k * MINUTE).slice(0, 10)}${String(k).padStart(16, '0')}`;
const createdFrom = new Date(T0 + 2_000 * MINUTE);
const createdTo = new Date(T0 + 5_000 * MINUTE);

describe('an admin’s list of orders by status and type, among 12,000 orders', () => {
  it('pages the orders of a type and status, from the newest and from a cursor deep in the list', async () => {
    expect(await twoPages({ type: 'flash_sale', status: 'PAID' })).toEqual(await expected(sql`o.type = 'flash_sale' AND o.status = 'PAID'`));
    expect(await twoPages({ type: 'presale', status: 'CANCELLED', before: orderId(6_000) })).toEqual(
      await expected(sql`o.type = 'presale' AND o.status = 'CANCELLED' AND o.order_id < ${orderId(6_000)}`),
    );
    expect(await twoPages({ status: 'PAID', before: orderId(6_000) })).toEqual(await expected(sql`o.status = 'PAID' AND o.order_id < ${orderId(6_000)}`));
    expect(await twoPages({ type: 'flash_sale', createdFrom, createdTo })).toEqual(
      await expected(sql`o.type = 'flash_sale' AND o.created_at >= ${createdFrom} AND o.created_at < ${createdTo}`),
    );
    expect(await twoPages({ type: 'flash_sale', status: 'PAID', leaf: true, userId: 'buyer-7' })).toEqual(
      await expected(sql`o.type = 'flash_sale' AND o.status = 'PAID' AND o.user_id = 'buyer-7'`),
    );
  });

  it('reads as many index entries for a page as it holds, not every order of the status and of the type', async () => {
    // flash-sale orders paid: 4 in 35 orders (1,371), among 4,800 flash-sale and 3,429 paid ones
    for (const filter of [
      { type: 'flash_sale', status: 'PAID' },
      { type: 'flash_sale', status: 'PAID', before: orderId(6_000) },
      { status: 'PAID', before: orderId(6_000) },
      { type: 'flash_sale', createdFrom, createdTo },
    ] satisfies Omit<OrderListFilter, 'limit'>[]) {
      statements.length = 0;
      await new OrderRepository(logged).listOrders({ ...filter, limit: 21 });
      const page = statements[0]!;
      await logged.connection().execute(async (connection) => {
        await sql`FLUSH STATUS`.execute(connection);
        await connection.executeQuery(CompiledQuery.raw(page.sql, [...page.parameters]));
        const { rows } = await sql<{ Variable_name: string; Value: string }>`SHOW SESSION STATUS LIKE 'Handler_read%'`.execute(connection);
        const entries = rows.reduce((sum, row) => sum + Number(row.Value), 0);
        // a page of 21 orders, 2 in 5 of the paid ones walked matching: some dozens of entries
        expect(entries, `${JSON.stringify(filter)}: ${page.sql}`).toBeLessThan(300);
      });
    }
  });
});

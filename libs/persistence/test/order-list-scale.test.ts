import { OrderRepository } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { OrderListReads } from './support/order-list-reads.js';
import { firstOrderIdAt } from '@orders/domain';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ORDERS = 10_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const MINUTE = 60_000;

let env: TestEnv;
let orders: OrderRepository;
let reads: OrderListReads;

/**
 * Order k is accepted at T0 + k minutes and written 2 s later; every tenth (k % 10 = 3) is a
 * child of order k - 1, with its parent's time in its id but written 2 days later (a presale
 * split when its balance is paid). Each order has 2 lines of `bigshop` (LAMP, and KETTLE or
 * MUG): 20,000 of that merchant's lines; every third also has a line of `corner`.
 */
async function fill(): Promise<void> {
  const rows = Array.from({ length: ORDERS }, (_, k) => {
    const child = k % 10 === 3;
    const acceptedMs = T0 + (child ? k - 1 : k) * MINUTE;
    return {
      order_id: `${firstOrderIdAt(acceptedMs).slice(0, 10)}${String(k).padStart(16, '0')}`,
      parent_order_id: child ? `${firstOrderIdAt(acceptedMs).slice(0, 10)}${String(k - 1).padStart(16, '0')}` : null,
      type: 'standard',
      status: k % 7 === 0 ? 'CANCELLED' : k % 2 === 0 ? 'SHIPPED' : 'PAID',
      version: 1,
      user_id: `buyer-${k % 500}`,
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
      created_at: new Date(child ? acceptedMs + 2 * 24 * 60 * MINUTE : acceptedMs + 2_000),
    };
  });
  for (let i = 0; i < rows.length; i += 2_000) await env.db.insertInto('orders').values(rows.slice(i, i + 2_000)).execute();
  const line = (lineNo: number, skuId: string, merchantId: string) =>
    sql`SELECT order_id, ${lineNo}, ${skuId}, 'item', ${merchantId}, 'self', 'wh-east', 'placement', 1, 500, 500, 0, 500 FROM orders`;
  const lines = (select: ReturnType<typeof line>) =>
    sql`INSERT INTO order_items (order_id, line_no, sku_id, title, merchant_id, channel, warehouse_id, deduction, qty, list_price_cents, unit_price_cents, discount_cents, payable_cents) ${select}`.execute(env.db);
  await lines(line(1, 'LAMP', 'bigshop'));
  await lines(sql`${line(2, 'KETTLE', 'bigshop')} WHERE RIGHT(order_id, 1) IN ('0', '4', '8')`);
  await lines(sql`${line(2, 'MUG', 'bigshop')} WHERE RIGHT(order_id, 1) NOT IN ('0', '4', '8')`);
  await lines(sql`${line(3, 'PEN', 'corner')} WHERE CAST(RIGHT(order_id, 5) AS UNSIGNED) % 3 = 0`);
  await sql`ANALYZE TABLE orders, order_items`.execute(env.db);
}

beforeAll(async () => {
  env = await createTestEnv('order_list_scale');
  orders = new OrderRepository(env.db);
  reads = new OrderListReads(env.db, env.config.MYSQL_URL);
  await fill();
}, 60_000);
afterAll(async () => {
  await reads?.close();
  await env?.cleanup();
});

const hasLine = (column: 'merchant_id' | 'sku_id', value: string) =>
  sql`EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.order_id AND ${sql.ref(`i.${column}`)} = ${value})`;

describe('listing the orders of a merchant with 20,000 lines', () => {
  it('pages a merchant’s orders, each once though it has 2 lines of the merchant', async () => {
    expect(await reads.twoPages({ merchantId: 'bigshop' })).toEqual(await reads.expected(hasLine('merchant_id', 'bigshop')));
  });

  it('pages a merchant’s orders of one status, and a merchant’s unsplit orders and children', async () => {
    expect(await reads.twoPages({ merchantId: 'bigshop', status: 'CANCELLED' })).toEqual(await reads.expected(sql`${hasLine('merchant_id', 'bigshop')} AND o.status = 'CANCELLED'`));
    const leaf = sql`NOT EXISTS (SELECT 1 FROM orders c WHERE c.parent_order_id = o.order_id)`;
    expect(await reads.twoPages({ merchantId: 'bigshop', leaf: true, status: 'SHIPPED' })).toEqual(await reads.expected(sql`${hasLine('merchant_id', 'bigshop')} AND ${leaf} AND o.status = 'SHIPPED'`));
  });

  it('pages a SKU’s orders, alone and with its merchant or another', async () => {
    expect(await reads.twoPages({ skuId: 'KETTLE' })).toEqual(await reads.expected(hasLine('sku_id', 'KETTLE')));
    expect(await reads.twoPages({ skuId: 'PEN', merchantId: 'bigshop' })).toEqual(await reads.expected(sql`${hasLine('sku_id', 'PEN')} AND ${hasLine('merchant_id', 'bigshop')}`));
    expect(await reads.twoPages({ skuId: 'KETTLE', merchantId: 'corner' })).toEqual(await reads.expected(sql`${hasLine('sku_id', 'KETTLE')} AND ${hasLine('merchant_id', 'corner')}`));
  });

  it('pages the orders written between two instants, children split 2 days after their parent’s acceptance included', async () => {
    const createdFrom = new Date(T0 + 5_000 * MINUTE);
    const createdTo = new Date(T0 + 5_000 * MINUTE + 3 * 24 * 60 * MINUTE);
    const between = sql`o.created_at >= ${createdFrom} AND o.created_at < ${createdTo}`;
    const pages = await reads.twoPages({ createdFrom, createdTo });
    expect(pages).toEqual(await reads.expected(between));
    expect(await reads.twoPages({ merchantId: 'corner', createdFrom, createdTo, status: 'PAID' })).toEqual(await reads.expected(sql`${between} AND ${hasLine('merchant_id', 'corner')} AND o.status = 'PAID'`));
    // the late children at the window's start: accepted before createdFrom, written inside it
    const { rows } = await sql<{ order_id: string }>`SELECT o.order_id FROM orders o WHERE ${between} AND o.accepted_at < ${createdFrom} ORDER BY o.order_id`.execute(env.db);
    expect(rows.length).toBeGreaterThan(0);
    const all = (await orders.listOrders({ createdFrom, createdTo, limit: 10_000 })).map((o) => o.orderId);
    expect(all).toEqual(expect.arrayContaining(rows.map((row) => row.order_id)));
  });

  it('reads a merchant’s first page down its lines’ index, without collecting and sorting all its orders', async () => {
    const plan = await reads.planOf<{ table: string; key: string | null; Extra: string | null }>((repository) => repository.listOrders({ merchantId: 'bigshop', leaf: true, limit: 21 }));
    expect(plan[0]).toMatchObject({ table: 'line', key: 'order_items_merchant' });
    for (const step of plan) expect(step.Extra ?? '').not.toMatch(/filesort|temporary/i);
  });

  it('reads as many index entries for a merchant’s page as the page holds, not every split order’s child in the shop', async () => {
    const { rows: children } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM orders WHERE parent_order_id IS NOT NULL`.execute(env.db);
    expect(Number(children[0]!.n)).toBe(ORDERS / 10);
    // what GET /v1/orders reads for a merchant, for an admin's list of leaves, and what the backstop sweep reads for a page
    for (const read of [
      (repository: OrderRepository) => repository.listOrders({ merchantId: 'bigshop', leaf: true, limit: 21 }),
      (repository: OrderRepository) => repository.listOrders({ leaf: true, status: 'PAID', limit: 21 }),
      (repository: OrderRepository) => repository.waitingLongerThan('SHIPPED', ['standard'], -MINUTE, { offset: 0, limit: 21 }),
    ]) {
      const { entries, sql: sent } = await reads.entriesRead(read);
      // a page of 21 orders: their lines and a look for each one's children, some hundreds at most
      expect(entries, sent).toBeLessThan(300);
    }
  });
});

describe('the orders a lost timer’s backstop sweep moves on', () => {
  it('leaves split orders out (their status follows their children, whose timers run) and takes every other order waiting in the status', async () => {
    const waiting = await orders.waitingLongerThan('SHIPPED', ['standard'], -MINUTE, { offset: 0, limit: ORDERS });
    const { rows: split } = await sql<{ order_id: string }>`SELECT DISTINCT c.parent_order_id AS order_id FROM orders c JOIN orders o ON o.order_id = c.parent_order_id WHERE o.status = 'SHIPPED'`.execute(env.db);
    const { rows: shipped } = await sql<{ order_id: string }>`SELECT o.order_id FROM orders o WHERE o.status = 'SHIPPED'`.execute(env.db);
    expect(split.length).toBeGreaterThan(0);
    const splitIds = new Set(split.map((row) => row.order_id));
    expect(waiting.toSorted()).toEqual(shipped.map((row) => row.order_id).filter((id) => !splitIds.has(id)).toSorted());
  });
});

import { type OrderListFilter } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { OrderListReads } from './support/order-list-reads.js';
import { firstOrderIdAt } from '@orders/domain';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ORDERS = 12_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const MINUTE = 60_000;

let env: TestEnv;
let reads: OrderListReads;

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
  reads = new OrderListReads(env.db, env.config.MYSQL_URL);
  await fill();
}, 60_000);
afterAll(async () => {
  await reads?.close();
  await env?.cleanup();
});

/** Order k's id: accepted at T0 + k minutes. */
const orderId = (k: number) => `${firstOrderIdAt(T0 + k * MINUTE).slice(0, 10)}${String(k).padStart(16, '0')}`;
const createdFrom = new Date(T0 + 2_000 * MINUTE);
const createdTo = new Date(T0 + 5_000 * MINUTE);

describe('an admin’s list of orders by status and type, among 12,000 orders', () => {
  it('pages the orders of a type and status, from the newest and from a cursor deep in the list', async () => {
    expect(await reads.twoPages({ type: 'flash_sale', status: 'PAID' })).toEqual(await reads.expected(sql`o.type = 'flash_sale' AND o.status = 'PAID'`));
    expect(await reads.twoPages({ type: 'presale', status: 'CANCELLED', before: orderId(6_000) })).toEqual(
      await reads.expected(sql`o.type = 'presale' AND o.status = 'CANCELLED' AND o.order_id < ${orderId(6_000)}`),
    );
    expect(await reads.twoPages({ status: 'PAID', before: orderId(6_000) })).toEqual(await reads.expected(sql`o.status = 'PAID' AND o.order_id < ${orderId(6_000)}`));
    expect(await reads.twoPages({ type: 'flash_sale', createdFrom, createdTo })).toEqual(
      await reads.expected(sql`o.type = 'flash_sale' AND o.created_at >= ${createdFrom} AND o.created_at < ${createdTo}`),
    );
    expect(await reads.twoPages({ type: 'flash_sale', status: 'PAID', leaf: true, userId: 'buyer-7' })).toEqual(
      await reads.expected(sql`o.type = 'flash_sale' AND o.status = 'PAID' AND o.user_id = 'buyer-7'`),
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
      const { entries, sql: sent } = await reads.entriesRead((repository) => repository.listOrders({ ...filter, limit: 21 }));
      // a page of 21 orders, 2 in 5 of the paid ones walked matching: some dozens of entries
      expect(entries, `${JSON.stringify(filter)}: ${sent}`).toBeLessThan(300);
    }
  });
});

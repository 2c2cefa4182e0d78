import { loadConfig } from '@orders/config';
import { firstOrderIdAt } from '@orders/domain';
import { OrderRepository, orderListOptionsOf } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const T0 = Date.parse('2026-03-01T00:00:00Z');

let env: TestEnv;

/** An order row accepted at `acceptedMs` (the time its id carries) and written at `writtenMs`. */
function orderRow(suffix: string, acceptedMs: number, writtenMs: number, parentOrderId: string | null) {
  return {
    order_id: `${firstOrderIdAt(acceptedMs).slice(0, 10)}${suffix.padStart(16, '0')}`,
    parent_order_id: parentOrderId,
    type: 'presale',
    status: 'PAID',
    version: 1,
    user_id: 'early-bird',
    channel: null,
    subtotal_cents: 100_000,
    discount_cents: 0,
    shipping_cents: 0,
    payable_cents: 100_000,
    refunded_cents: 0,
    address: '{"name":"Ada","line1":"1 Main St"}',
    coupon_code: null,
    accepted_at: new Date(acceptedMs),
    payment_deadline: new Date(acceptedMs + 30 * MINUTE),
    created_at: new Date(writtenMs),
  };
}

beforeAll(async () => {
  // a presale's deposit is due 30 minutes after checkout (the default), its balance 14 days after the deposit
  env = await createTestEnv('order_list_late_rows', { PAYMENT_TIMEOUT_MS: String(30 * MINUTE), PRESALE_BALANCE_TIMEOUT_MS: String(14 * DAY) });
});
afterAll(async () => {
  await env?.cleanup();
});

describe('listing orders by the date they were written, when a presale’s balance is due weeks later', () => {
  it('finds a presale’s child written when its balance was paid, 10 days after the presale was accepted', async () => {
    const presale = orderRow('1', T0, T0 + 2_000, null);
    const child = orderRow('2', T0, T0 + 10 * DAY, presale.order_id);
    const nextDay = orderRow('3', T0 + DAY, T0 + DAY + 2_000, null);
    await env.db.insertInto('orders').values([presale, child, nextDay]).execute();
    const orders = new OrderRepository(env.db, orderListOptionsOf(env.config));
    const listed = await orders.listOrders({ createdFrom: new Date(T0 + 9 * DAY), createdTo: new Date(T0 + 11 * DAY), limit: 20 });
    expect(listed.map((order) => order.orderId)).toEqual([child.order_id]);
    expect(listed[0]).toMatchObject({ parentOrderId: presale.order_id, createdAt: new Date(T0 + 10 * DAY).toISOString() });
    // the lists look back the deposit's deadline, the balance timeout, the wait for a balance asked in time and a day for queues
    expect(orderListOptionsOf(env.config).writtenWithinMs).toBe(30 * MINUTE + 14 * DAY + 30 * MINUTE + DAY);
  });

  it('finds the child of a presale whose balance, asked for just before its deadline, was answered 30 minutes after it, written by a settle job held up for 23 h 45 min', async () => {
    const accepted = T0 + 2 * DAY;
    // the deposit at its deadline (30 minutes), the balance due 14 days later, its payment answered at the end of the
    // forfeit's wait for it (PAYMENT_TIMEOUT_MS past the deadline), the child written within the day for queues
    const balancePaid = accepted + 30 * MINUTE + 14 * DAY + 30 * MINUTE;
    const presale = orderRow('4', accepted, accepted + 2_000, null);
    const child = orderRow('5', accepted, balancePaid + 23 * 60 * MINUTE + 45 * MINUTE, presale.order_id);
    await env.db.insertInto('orders').values([presale, child]).execute();
    const orders = new OrderRepository(env.db, orderListOptionsOf(env.config));
    const listed = await orders.listOrders({ createdFrom: new Date(child.created_at.getTime() - 5 * MINUTE), createdTo: new Date(child.created_at.getTime() + MINUTE), limit: 20 });
    expect(listed.map((order) => order.orderId)).toEqual([child.order_id]);
  });

  it('keeps the 7-day margin with the default settings (a deposit due in 30 minutes, the balance 3 days later)', () => {
    const defaults = loadConfig({ NODE_ENV: 'development' });
    expect([defaults.PAYMENT_TIMEOUT_MS, defaults.PRESALE_BALANCE_TIMEOUT_MS]).toEqual([30 * MINUTE, 3 * DAY]);
    expect(orderListOptionsOf(defaults).writtenWithinMs).toBe(7 * DAY);
  });
});

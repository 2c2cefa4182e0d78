// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const window = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };

/** "20.00 off for the first 50 orders": the shop's promise holds whatever the rush, and uses given back go to the next buyers. */
describe('a coupon for the first so many orders', () => {
  let system: OrderSystem;
  let admin: string;
  /** the buyers whose orders hold the coupon, and those orders */
  const holders = new Map<string, string>();

  beforeAll(async () => {
    system = await startOrderSystem('coupon_total_limit', { WORKER_CONCURRENCY: '16' });
    admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'KETTLE', priceCents: 5_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement' });
    await system.createSku({ skuId: 'SPOON', priceCents: 300, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement' });
    const created = await system.request('POST', '/v1/admin/coupons', {
      token: admin,
      body: { code: 'FIRST50', kind: 'fixed', offCents: 2_000, minSpendCents: 1_000, perBuyerLimit: 1, totalLimit: 50, ...window },
    });
    expect([created.status, created.body.totalLimit]).toEqual([201, 50]);
  });
  afterAll(async () => system?.close());

  const checkout = (buyer: string, skuId = 'KETTLE') =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `${buyer}-${skuId}` }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress, couponCode: 'FIRST50' } });
  const withCoupon = async () =>
    Number((await system.env.db.selectFrom('coupon_redemptions').select((eb) => eb.fn.countAll().as('n')).where('code', '=', 'FIRST50').where('status', '=', 'used').executeTakeFirstOrThrow()).n);

  it('gives the coupon to 50 of 200 buyers checking out at once, refuses the rest with 422 COUPON_LIMIT_EXCEEDED, and each of the 50 orders pays 20.00 less', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => checkout(`rush-${i}`)));
    const accepted = answers.filter((answer) => answer.status === 202);
    expect(accepted).toHaveLength(50);
    const refused = answers.filter((answer) => answer.status !== 202);
    expect(refused.every((answer) => answer.status === 422 && answer.body.code === 'COUPON_LIMIT_EXCEEDED' && String(answer.headers['content-type']).startsWith('application/problem+json'))).toBe(true);
    expect(refused[0]!.body.detail).toMatch(/used by as many orders as it allows in all/);

    answers.forEach((answer, i) => answer.status === 202 && holders.set(`rush-${i}`, answer.body.orderId));
    const orders = await Promise.all(accepted.map((answer) => system.waitForStatus(answer.body.orderId, 'PENDING_PAYMENT')));
    expect(orders.map((order: any) => order.amounts.payableCents)).toEqual(Array(50).fill(3_000));
    expect(await withCoupon()).toBe(50);

    // the operator watching the promotion reads what is left of it
    const read = await system.request('GET', '/v1/admin/coupons/FIRST50', { token: admin });
    expect(read.body).toMatchObject({ code: 'FIRST50', perBuyerLimit: 1, totalLimit: 50, usesHeld: 50, usesLeft: 0 });
    // and on Grafana, from the workers' metrics
    const scraped = await system.workers.deps.metrics.exposition();
    const series = (name: string) => Number(new RegExp(`^${name}\\{[^}]*coupon="FIRST50"[^}]*\\} (\\S+)$`, 'm').exec(scraped)?.[1]);
    expect([series('coupon_uses_held'), series('coupon_total_limit')]).toEqual([50, 50]);
    expect((await system.request('GET', '/v1/admin/coupons/FIRST50', { token: system.token('shop', 'merchant') })).status).toBe(403);
    expect((await system.request('GET', '/v1/admin/coupons/NO-SUCH', { token: admin })).status).toBe(404);
  });

  it('hands the uses of orders cancelled unpaid, or priced without the coupon, to the next buyers, and no more', async () => {
    const orderOf = async (buyer: string) => (await system.env.db.selectFrom('orders').select('order_id').where('user_id', '=', buyer).executeTakeFirstOrThrow()).order_id;
    for (const [buyer, orderId] of [...holders].slice(0, 2)) {
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(buyer), body: { reason: 'changed my mind' } });
      expect(cancelled.body.status).toBe('CANCELLED');
    }
    const next = await Promise.all(Array.from({ length: 10 }, (_, i) => checkout(`next-${i}`)));
    expect(next.filter((answer) => answer.status === 202)).toHaveLength(2);
    const nextHolder = `next-${next.findIndex((answer) => answer.status === 202)}`;
    await system.waitForStatus(await waitFor(async () => orderOf(nextHolder).catch(() => null), { what: `${nextHolder}'s order in MySQL` }), 'PENDING_PAYMENT');

    // a use freed again: a spoon (3.00) is below the coupon's 10.00 minimum spend, so its order is priced
    // without it and gives the use back once persisted; the next kettle buyer gets it
    const cancelled = await system.request('POST', `/v1/orders/${await orderOf(nextHolder)}/cancel`, { token: system.token(nextHolder), body: { reason: 'later' } });
    expect(cancelled.status).toBe(200);
    const spoon = await checkout('spoon-buyer', 'SPOON');
    expect(spoon.status).toBe(202);
    const spoonOrder = await system.waitForStatus(spoon.body.orderId, 'PENDING_PAYMENT');
    expect(spoonOrder.amounts.payableCents).toBe(300);
    await waitFor(async () => (await checkout('after-spoon')).status === 202, { what: 'the spoon order’s use given back and taken by the next buyer' });
    expect((await checkout('one-too-many')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
    await waitFor(async () => (await withCoupon()) === 50, { what: '50 orders holding the coupon in MySQL' });
    expect((await system.request('GET', '/v1/admin/coupons/FIRST50', { token: admin })).body).toMatchObject({ usesHeld: 50, usesLeft: 0 });
  });
});

import { buyerAddress, waitFor } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('a once-per-buyer coupon that would take nothing off an order', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('coupon_taking_nothing');
    await system.createSku({ skuId: 'PIN', priceCents: 50, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
    await system.createSku({ skuId: 'LAMP', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
    const coupon = { code: 'PENNY', kind: 'percent', percentOff: 1, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
  });
  afterAll(async () => system?.close());

  const checkout = (skuId: string, key: string) =>
    system.request('POST', '/v1/orders', {
      token: system.token('pip'),
      headers: { 'idempotency-key': key },
      body: { items: [{ skuId, qty: 1 }], address: buyerAddress, couponCode: 'PENNY' },
    });

  it('is not used on 1 % of a 0.50 pin: the buyer keeps the use for the lamp, which it takes 1.00 off', async () => {
    const pin = await checkout('PIN', 'pip-pin');
    expect(pin.status).toBe(202);
    const pinOrder = await system.waitForStatus(pin.body.orderId, 'PENDING_PAYMENT');
    expect([pinOrder.amounts.payableCents, pinOrder.benefits.coupon]).toEqual([50, null]);
    expect(await system.env.db.selectFrom('coupon_redemptions').select('status').where('order_id', '=', pin.body.orderId).execute()).toEqual([]);

    // the pin's unused coupon use goes back in Redis just after its order is committed (OrderWriter):
    // the buyer, seeing the pin's order without the coupon, may find it still held for a moment
    let attempt = 0;
    const lamp = await waitFor(
      async () => {
        const answer = await checkout('LAMP', `pip-lamp-${attempt++}`);
        if (answer.status !== 202) expect(answer.body.code).toBe('COUPON_LIMIT_EXCEEDED');
        return answer.status === 202 && answer;
      },
      { what: "the lamp's checkout with the coupon use the pin did not take", timeoutMs: 10_000 },
    );
    const lampOrder = await system.waitForStatus(lamp.body.orderId, 'PENDING_PAYMENT');
    expect(lampOrder.benefits.coupon).toEqual({ code: 'PENNY', discountCents: 100 });
    expect((await checkout('LAMP', 'pip-lamp-again')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
  });

  it("gives back no use when an order every line of which was in its flash sale is cancelled again long after: the buyer's use of another order stays counted", async () => {
    const now = Date.now();
    const sale = { priceCents: 40, startsAt: new Date(now - 3_600_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 0 };
    await system.createSku({ skuId: 'FLASH-PIN', priceCents: 50, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement', flashSale: sale });
    const order = (skuId: string, key: string) =>
      system.request('POST', '/v1/orders', { token: system.token('fay'), headers: { 'idempotency-key': key }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress, couponCode: 'PENNY' } });
    // the flash-sale pin takes no use of the coupon; cancelled, it gives none back
    const pin = await order('FLASH-PIN', 'fay-pin');
    expect(pin.status).toBe(202);
    expect((await system.waitForStatus(pin.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toBeNull();
    expect((await system.request('POST', `/v1/orders/${pin.body.orderId}/cancel`, { token: system.token('fay'), body: { reason: 'changed my mind' } })).status).toBe(200);
    // the lamp takes the buyer's one use
    const lamp = await order('LAMP', 'fay-lamp');
    expect(lamp.status).toBe(202);
    expect((await system.waitForStatus(lamp.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'PENNY', discountCents: 100 });
    // a day on, the pin's released reservation has gone from Redis; the buyer cancels the pin again
    const inventory = system.workers.deps.inventory;
    await system.env.redis.del(inventory.keys.order(inventory.keys.groupOfOrder(pin.body.orderId), pin.body.orderId));
    expect((await system.request('POST', `/v1/orders/${pin.body.orderId}/cancel`, { token: system.token('fay'), body: { reason: 'changed my mind' } })).status).toBe(200);
    // the lamp still holds the use: a second order with the coupon is refused
    expect((await order('LAMP', 'fay-lamp-again')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
  });

  it('gives back no use when an order that gave its use back is cancelled again after Redis has forgotten it did', async () => {
    const order = (key: string) =>
      system.request('POST', '/v1/orders', { token: system.token('gil'), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: 'PENNY' } });
    const first = await order('gil-1');
    expect((await system.waitForStatus(first.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'PENNY', discountCents: 100 });
    const cancel = () => system.request('POST', `/v1/orders/${first.body.orderId}/cancel`, { token: system.token('gil'), body: { reason: 'changed my mind' } });
    expect((await cancel()).status).toBe(200);
    // its use went back: gil's next order takes it
    const second = await order('gil-2');
    expect((await system.waitForStatus(second.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'PENNY', discountCents: 100 });
    // 91 days on: Redis has forgotten the first order (its record, and the marker saying its use went back); gil cancels it again
    const inventory = system.workers.deps.inventory;
    const group = inventory.keys.groupOfOrder(first.body.orderId);
    await system.env.redis.del(inventory.keys.order(group, first.body.orderId), inventory.keys.couponGivenBack(group, first.body.orderId));
    await sql`UPDATE orders SET updated_at = UTC_TIMESTAMP(3) - INTERVAL 91 DAY WHERE order_id = ${first.body.orderId}`.execute(system.env.db);
    expect((await cancel()).status).toBe(200);
    // the second order still holds the use
    expect((await order('gil-3')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
  });

  it('gives back no use when a paid order refunded on its cancel is cancelled again after Redis has forgotten its use went back: its refund job gives nothing back either', async () => {
    const order = (key: string) =>
      system.request('POST', '/v1/orders', { token: system.token('hal'), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: 'PENNY' } });
    const first = (await order('hal-1')).body.orderId as string;
    await system.waitForStatus(first, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${first}/pay`, { token: system.token('hal'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(first, 'IN_FULFILLMENT');
    const cancel = () => system.request('POST', `/v1/orders/${first}/cancel`, { token: system.token('hal'), body: { reason: 'changed my mind' } });
    expect((await cancel()).status).toBe(200);
    await system.waitForStatus(first, 'REFUNDED');
    const second = await waitFor(async () => {
      const answer = await order('hal-2');
      return answer.status === 202 && answer;
    }, { what: "the first order's use back in Redis" });
    expect((await system.waitForStatus(second.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'PENNY', discountCents: 100 });
    // the cancel's refund job done (its callback may close the order before the job ends)
    const { payments } = system.workers.deps.queues;
    const refundJobsDone = () => waitFor(async () => Object.values(await payments.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).every((count) => count === 0), { what: 'the refund jobs run' });
    await refundJobsDone();
    // 91 days on: Redis has forgotten the first order, and MySQL says its use went back that long ago
    const inventory = system.workers.deps.inventory;
    const group = inventory.keys.groupOfOrder(first);
    await system.env.redis.del(inventory.keys.order(group, first), inventory.keys.couponGivenBack(group, first));
    await sql`UPDATE orders SET updated_at = UTC_TIMESTAMP(3) - INTERVAL 91 DAY WHERE order_id = ${first}`.execute(system.env.db);
    await sql`UPDATE coupon_redemptions SET at = UTC_TIMESTAMP(3) - INTERVAL 91 DAY WHERE order_id = ${first}`.execute(system.env.db);
    expect((await cancel()).status).toBe(200);
    // the repeat's refund job has run
    await refundJobsDone();
    expect((await order('hal-3')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
  });
});

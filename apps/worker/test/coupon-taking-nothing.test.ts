import { buyerAddress, waitFor } from '@orders/testing';
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
});

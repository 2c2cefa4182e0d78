import { buyerAddress } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('a coupon given back to its buyer when the order closes without the goods', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('coupon_expiry', { PAYMENT_TIMEOUT_MS: '1000' });
    await system.createSku({ skuId: 'SCARF', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
    await system.createSku({ skuId: 'LAST-HAT', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
    const coupon = { code: 'ONCE', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
  });
  afterAll(async () => system?.close());

  const checkout = (key: string, buyer = 'hal', skuId = 'SCARF') =>
    system.request('POST', '/v1/orders', {
      token: system.token(buyer),
      headers: { 'idempotency-key': key },
      body: { items: [{ skuId, qty: 1 }], address: buyerAddress, couponCode: 'ONCE' },
    });

  it('gives the coupon back to its buyer with the stock when the payment deadline passes, exactly once', async () => {
    const first = await checkout('hal-1');
    expect(first.status).toBe(202);
    expect((await system.waitForStatus(first.body.orderId, 'PENDING_PAYMENT')).amounts.payableCents).toBe(2_700);
    expect((await checkout('hal-2')).body.code).toBe('COUPON_LIMIT_EXCEEDED');

    await system.waitForStatus(first.body.orderId, 'EXPIRED', 10_000);
    const redemptions = await system.env.db.selectFrom('coupon_redemptions').select(['order_id', 'status']).execute();
    expect(redemptions).toEqual([{ order_id: first.body.orderId, status: 'restored' }]);
    const release = await system.env.db.selectFrom('stock_ledger').select(['kind', 'qty', 'reason']).where('order_id', '=', first.body.orderId).where('kind', '=', 'release').execute();
    expect(release).toEqual([{ kind: 'release', qty: 1, reason: 'expire' }]);

    const next = await checkout('hal-3');
    expect(next.status).toBe(202);
    expect((await system.waitForStatus(next.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'ONCE', discountCents: 300 });
    expect((await checkout('hal-4')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
  });

  it('gives the coupon back with the refund when the last unit of a payment-time SKU went to another buyer first', async () => {
    const lost = await checkout('ivy-1', 'ivy', 'LAST-HAT');
    expect(lost.status).toBe(202);
    const won = await system.checkout('jo', [{ skuId: 'LAST-HAT', qty: 1 }]);
    await Promise.all([system.waitForStatus(lost.body.orderId, 'PENDING_PAYMENT'), system.waitForStatus(won, 'PENDING_PAYMENT')]);
    expect((await system.request('POST', `/v1/orders/${won}/pay`, { token: system.token('jo'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(won, 'IN_FULFILLMENT');
    expect((await system.request('POST', `/v1/orders/${lost.body.orderId}/pay`, { token: system.token('ivy'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(lost.body.orderId, 'REFUNDED');

    const redemptions = await system.env.db.selectFrom('coupon_redemptions').select(['status']).where('order_id', '=', lost.body.orderId).execute();
    expect(redemptions).toEqual([{ status: 'restored' }]);
    // the buyer's next order gets the coupon's discount again
    const next = await checkout('ivy-2', 'ivy');
    expect(next.status).toBe(202);
    expect((await system.waitForStatus(next.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'ONCE', discountCents: 300 });
  });
});

import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('a coupon held by an order that expires unpaid', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // long enough that each order is still unpaid when the checkout after it is made, on a loaded box too
    system = await startOrderSystem('coupon_expiry', { PAYMENT_TIMEOUT_MS: '5000' });
    await system.createSku({ skuId: 'SCARF', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
    const coupon = { code: 'ONCE', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
  });
  afterAll(async () => system?.close());

  const checkout = (key: string) =>
    system.request('POST', '/v1/orders', {
      token: system.token('hal'),
      headers: { 'idempotency-key': key },
      body: { items: [{ skuId: 'SCARF', qty: 1 }], address: buyerAddress, couponCode: 'ONCE' },
    });

  it('gives the coupon back to its buyer with the stock when the payment deadline passes, exactly once', async () => {
    const first = await checkout('hal-1');
    expect(first.status).toBe(202);
    expect((await system.waitForStatus(first.body.orderId, 'PENDING_PAYMENT')).amounts.payableCents).toBe(2_700);
    expect((await checkout('hal-2')).body.code).toBe('COUPON_LIMIT_EXCEEDED');

    await system.waitForStatus(first.body.orderId, 'EXPIRED', 30_000);
    const redemptions = await system.env.db.selectFrom('coupon_redemptions').select(['order_id', 'status']).execute();
    expect(redemptions).toEqual([{ order_id: first.body.orderId, status: 'restored' }]);
    const release = await system.env.db.selectFrom('stock_ledger').select(['kind', 'qty', 'reason']).where('order_id', '=', first.body.orderId).where('kind', '=', 'release').execute();
    expect(release).toEqual([{ kind: 'release', qty: 1, reason: 'expire' }]);

    // Redis gives the stock and the coupon use back in one script, just after the expiry's commit
    await waitFor(async () => (await system.stockOf('SCARF')).available === 5, { what: 'the stock back in Redis' });
    const next = await checkout('hal-3');
    expect(next.status).toBe(202);
    expect((await system.waitForStatus(next.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'ONCE', discountCents: 300 });
    expect((await checkout('hal-4')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
  });
});

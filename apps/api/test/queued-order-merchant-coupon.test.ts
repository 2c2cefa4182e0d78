import { buyerAddress, createSku, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/**
 * An order still in the queue (no worker runs here: it stays accepted, read from Redis) of two
 * merchants' lines: the shop's kettle at its list price and the potter's mug in its flash sale,
 * which takes no coupon. The buyer entered a coupon of 10.00 off.
 */
describe("a merchant's view of an order still in the queue that the buyer entered a coupon on", () => {
  let env: TestEnv;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('queued_order_merchant_coupon');
    api = await startApi(env);
    const admin = api.token('ops', 'admin');
    const sale = { priceCents: 900, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z', perUserLimit: 5 };
    await createSku(api, admin, { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await createSku(api, admin, { skuId: 'MUG', title: 'Mug', priceCents: 1_500, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement', flashSale: sale });
    const coupon = { code: 'TENOFF', kind: 'fixed', offCents: 1_000, minSpendCents: 0, perBuyerLimit: 5, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await api.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it('names the coupon to the merchant whose lines take it, and not to the one whose flash-sale lines take none', async () => {
    const checkout = await api.request('POST', '/v1/orders', {
      token: api.token('ada'),
      headers: { 'idempotency-key': 'kettle-and-mug' },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }], address: buyerAddress, couponCode: 'TENOFF' },
    });
    expect(checkout.status).toBe(202);
    const seenBy = async (token: string) => {
      const answer = await api.request('GET', `/v1/orders/${checkout.body.orderId}`, { token });
      expect([answer.status, answer.body.status]).toEqual([200, 'ACCEPTED']);
      return [answer.body.items.map((item: { skuId: string }) => item.skuId), answer.body.couponCode];
    };

    expect(await seenBy(api.token('ada'))).toEqual([['KETTLE', 'MUG'], 'TENOFF']);
    expect(await seenBy(api.token('shop', 'merchant'))).toEqual([['KETTLE'], 'TENOFF']);
    expect(await seenBy(api.token('potter', 'merchant'))).toEqual([['MUG'], null]);
  });
});

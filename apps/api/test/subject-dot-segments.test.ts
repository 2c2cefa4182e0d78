import { buyerAddress, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/** Buyers and merchants named . or .., whom no token can carry (the api refuses such a subject with 401). */
describe('a buyer or merchant id of . or .., which no token could sign in as', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let admin: string;

  beforeAll(async () => {
    env = await createTestEnv('subject_dot_segments');
    api = await startApi(env);
    admin = api.token('ops', 'admin');
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const line = { skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_900 };
  const imported = (userId: string, merchantId: string) => ({ externalOrderId: `EXT-${userId}-${merchantId}`, userId, placedAt: new Date().toISOString(), status: 'PAID', items: [{ ...line, merchantId }], address: buyerAddress });

  it('is refused on an imported order (its buyer or its merchant) with 400 VALIDATION_FAILED, importing nothing', async () => {
    for (const [userId, merchantId] of [
      ['..', 'shop'],
      ['.', 'shop'],
      ['ivy', '..'],
    ]) {
      const answer = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'partner', orders: [imported(userId!, merchantId!)] } });
      expect([answer.status, answer.body.code], `${userId} ${merchantId}`).toEqual([400, 'VALIDATION_FAILED']);
    }
    expect((await api.request('GET', '/v1/admin/orders', { token: admin })).body.items).toEqual([]);
    // ivy of shop is taken
    expect((await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'partner', orders: [imported('ivy', 'shop')] } })).status).toBe(200);
  });

  it("is refused as a SKU's merchant with 400 VALIDATION_FAILED, creating nothing", async () => {
    const sku = { skuId: 'LAMP', title: 'Lamp', priceCents: 2_500, merchantId: '..', channel: 'third_party', warehouseId: 'wh-east', stock: 5, deduction: 'placement' };
    const answer = await api.request('POST', '/v1/admin/skus', { token: admin, body: sku });
    expect([answer.status, answer.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect((await api.request('GET', '/v1/admin/skus/LAMP', { token: admin })).status).toBe(404);
  });
});

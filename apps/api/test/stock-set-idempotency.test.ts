import { buyerAddress, createSku, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/**
 * A merchant's stock set is absolute: one whose answer was lost (a timeout, a proxy's 502) and
 * that is sent again after buyers bought would put their units back on sale, more than the shelf
 * holds. Sent under an Idempotency-Key, the repeat sets nothing.
 */
describe('setting a SKU’s stock under an Idempotency-Key', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let admin: string;

  beforeAll(async () => {
    env = await createTestEnv('stock_set_keyed');
    api = await startApi(env);
    admin = api.token('ops', 'admin');
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const newSku = (skuId: string, stockBuckets = 1) =>
    createSku(api, admin, { skuId, title: 'Rug', priceCents: 9_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', stockBuckets });
  const setStock = (skuId: string, stock: number, key: string | undefined, token = admin) =>
    api.request('PUT', `/v1/admin/skus/${skuId}/stock`, { token, body: { stock }, headers: key === undefined ? {} : { 'idempotency-key': key } });
  const buy = (buyer: string, skuId: string) =>
    api.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': `${buyer}-${skuId}` }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress } });
  const stockSets = (skuId: string) =>
    env.db.selectFrom('stock_ledger').select(['qty']).where('sku_id', '=', skuId).where('reason', '=', 'stock set by operator').orderBy('id').execute();

  it('keeps the 3 units bought after a set of 20 sold when the merchant sends the set again with its key', async () => {
    await newSku('RUG', 4);
    const first = await setStock('RUG', 20, 'recount-rug');
    expect([first.status, first.headers['idempotent-replayed'], first.body.stock]).toEqual([200, undefined, { available: 20, reserved: 0, sold: 0 }]);
    const bought = await Promise.all(['ann', 'bob', 'cy'].map((buyer) => buy(buyer, 'RUG')));
    expect(bought.map((answer) => answer.status)).toEqual([202, 202, 202]);

    const again = await setStock('RUG', 20, 'recount-rug');
    expect([again.status, again.headers['idempotent-replayed'], again.body.stock]).toEqual([200, 'true', { available: 17, reserved: 3, sold: 0 }]);
    expect(await api.deps.inventory.getSkuStock('RUG')).toEqual({ available: 17, reserved: 3, sold: 0 });
    expect(await stockSets('RUG')).toEqual([{ qty: 10 }]);
  });

  it('refuses the key with another body (422 IDEMPOTENCY_CONFLICT), nothing set; another key, or another caller’s, sets', async () => {
    await newSku('MAT');
    expect((await setStock('MAT', 20, 'recount-mat')).status).toBe(200);
    expect((await buy('dee', 'MAT')).status).toBe(202);

    const otherBody = await setStock('MAT', 25, 'recount-mat');
    expect([otherBody.status, otherBody.body.code]).toEqual([422, 'IDEMPOTENCY_CONFLICT']);
    expect(await api.deps.inventory.getSkuStock('MAT')).toEqual({ available: 19, reserved: 1, sold: 0 });

    expect((await setStock('MAT', 25, 'recount-mat-2')).body.stock).toEqual({ available: 25, reserved: 1, sold: 0 });
    const merchant = await setStock('MAT', 30, 'recount-mat', api.token('shop', 'merchant'));
    expect([merchant.status, merchant.headers['idempotent-replayed'], merchant.body.stock]).toEqual([200, undefined, { available: 30, reserved: 1, sold: 0 }]);
    // a set without a key is made every time it is sent, as before
    expect((await setStock('MAT', 30, undefined)).body.stock).toEqual({ available: 30, reserved: 1, sold: 0 });
    expect(await stockSets('MAT')).toEqual([{ qty: 10 }, { qty: 6 }, { qty: 5 }, { qty: 0 }]);
  });

  it('sets a SKU once when the same keyed set is sent ten times at once', async () => {
    await newSku('MUG');
    const answers = await Promise.all(Array.from({ length: 10 }, () => setStock('MUG', 40, 'recount-mug')));
    expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(200));
    expect(answers.filter((answer) => answer.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    expect(await stockSets('MUG')).toEqual([{ qty: 30 }]);
    expect((await buy('eve', 'MUG')).status).toBe(202);
    expect((await setStock('MUG', 40, 'recount-mug')).body.stock).toEqual({ available: 39, reserved: 1, sold: 0 });
  });
});

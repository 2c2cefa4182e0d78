import { CatalogRepository } from '@orders/persistence';
import { buyerAddress } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A SKU create sent again whose first committed and never reached Redis (answered 5xx), or whose
 * counters Redis lost, its stock never moved, is put on sale by the resend: as the catalog has it,
 * off sale when the shop took it off sale meanwhile (a recall, a wrong price), never by the request's rules.
 */
describe('a SKU create sent again for a SKU taken off sale', () => {
  let system: OrderSystem;
  const admin = () => system.token('ops', 'admin');
  const buy = (buyer: string, skuId: string, qty = 1, key = `${buyer}-${skuId}`) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId, qty }], address: buyerAddress } });
  const sku = (skuId: string, extra: Record<string, unknown> = {}) => ({
    skuId,
    title: skuId,
    priceCents: 2_500,
    merchantId: 'shop',
    channel: 'self' as const,
    warehouseId: 'wh-east',
    stock: 20,
    deduction: 'placement' as const,
    ...extra,
  });

  beforeAll(async () => {
    system = await startOrderSystem('sku_create_off_sale', { RECONCILE_INTERVAL_MS: '0', RECONCILE_SETTLE_MS: '100' });
  }, 60_000);

  afterAll(async () => {
    await system?.close();
  });

  it('a create sent again after its first answered 5xx does not put on sale a SKU the shop took off sale meanwhile', async () => {
    const body = sku('RECALLED', { stockBuckets: 2 });
    const catalog = new CatalogRepository(system.env.db);
    // the create committed, and its api died (or Redis failed it) before it wrote Redis: the create answered 5xx
    await expect(
      catalog.createSku({ ...body, flashSale: null, stockBuckets: 2, orderType: 'standard' }, body.stock, 'opening-RECALLED', () => Promise.reject(new Error('the api was killed'))),
    ).rejects.toThrow('the api was killed');
    // the shop calls the launch off: the SKU taken off sale (200, the catalog has it off sale)
    const off = await system.request('PUT', '/v1/admin/skus/RECALLED/on-sale', { token: admin(), body: { onSale: false } });
    expect([off.status, off.body.onSale]).toEqual([200, false]);
    // the console retries the create whose answer was a 5xx, as docs/operations.md tells
    const again = await system.request('POST', '/v1/admin/skus', { token: admin(), body });
    expect(again.status).toBe(201);
    // the catalog still has the SKU off sale, and so does its answer ...
    expect(again.body.onSale).toBe(false);
    // ... so every checkout of it is refused (422 SALE_NOT_ACTIVE), in every bucket
    const answers = await Promise.all(['ann', 'bob', 'cy', 'dee', 'eve', 'fay'].map((buyer) => buy(buyer, 'RECALLED')));
    expect(answers.map((answer) => [answer.status, answer.body.code])).toEqual(answers.map(() => [422, 'SALE_NOT_ACTIVE']));
    expect(await system.stockOf('RECALLED')).toEqual({ available: 20, reserved: 0, sold: 0 });
  });

  it('a create sent again after Redis lost the counters of a SKU taken off sale does not put it back on sale', async () => {
    const body = sku('PULLED');
    const created = await system.request('POST', '/v1/admin/skus', { token: admin(), body });
    expect(created.status).toBe(201);
    const off = await system.request('PUT', '/v1/admin/skus/PULLED/on-sale', { token: admin(), body: { onSale: false } });
    expect([off.status, off.body.onSale]).toEqual([200, false]);
    // Redis lost the SKU's counters (a restart without its AOF), nothing sold
    await system.env.redis.del(`${system.env.config.REDIS_KEY_PREFIX}{g0}:sku:PULLED`);
    const again = await system.request('POST', '/v1/admin/skus', { token: admin(), body });
    expect(again.status).toBe(201);
    expect(again.body.onSale).toBe(false);
    const answer = await buy('gus', 'PULLED');
    expect([answer.status, answer.body.code]).toEqual([422, 'SALE_NOT_ACTIVE']);
  });
});

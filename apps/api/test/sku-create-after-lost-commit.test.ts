import { StockKeys } from '@orders/stock';
import { buyerAddress, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/**
 * A create commits the catalog's row, then puts the counters in Redis. Counters in Redis for a
 * SKU the catalog does not have (left by a create from before it committed first, or written by
 * hand) are replaced by the create; a create committed whose counters never reached Redis (its
 * api killed between the two) sells nothing until the same create is sent again.
 */
describe('creating a SKU whose first create reached only one of Redis and MySQL', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let admin: string;
  let keys: StockKeys;

  beforeAll(async () => {
    env = await createTestEnv('sku_create_lost_commit');
    api = await startApi(env);
    admin = api.token('ops', 'admin');
    keys = new StockKeys(env.config.REDIS_KEY_PREFIX);
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const lamp = { title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement' } as const;
  /** What the lost create left in Redis: its stock and, if any, its flash sale running now. */
  const leftBehind = (skuId: string, available: number, buckets = 1) =>
    api.deps.inventory.initSku({ skuId, available, deduction: 'placement', saleStartsAt: new Date('2020-01-01T00:00:00Z'), saleEndsAt: new Date('2100-01-01T00:00:00Z'), perUserLimit: 1, buckets });
  const checkout = (buyer: string, skuId: string) =>
    api.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': `${buyer}-${skuId}` }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress } });

  it('makes Redis sell what MySQL records: the new stock of 50 and a sale that starts in 2099, not the 10 and the running sale left behind', async () => {
    await leftBehind('LAMP', 10);
    const created = await api.request('POST', '/v1/admin/skus', {
      token: admin,
      body: { skuId: 'LAMP', ...lamp, stock: 50, flashSale: { priceCents: 100, startsAt: '2099-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z', perUserLimit: 2 } },
    });
    expect(created.status).toBe(201);
    expect(created.body.stock).toEqual({ available: 50, reserved: 0, sold: 0 });
    const row = await env.db.selectFrom('skus').select(['stock', 'flash_starts_at', 'flash_per_user_limit', 'order_type']).where('sku_id', '=', 'LAMP').executeTakeFirstOrThrow();
    const counters = await env.redis.hgetall(keys.sku(keys.bucketGroup(0), 'LAMP'));
    expect(counters).toEqual({
      available: String(row.stock),
      reserved: '0',
      sold: '0',
      deduction: 'placement',
      saleStartsAt: String(row.flash_starts_at!.getTime()),
      saleEndsAt: String(Date.parse('2100-01-01T00:00:00Z')),
      perUserLimit: String(row.flash_per_user_limit),
      buckets: '1',
      orderType: row.order_type,
      countsEndWithSale: '1',
      countsBySale: '1',
    });

    // the new sale has not opened: its units are held for it, where the running sale left behind would sell them
    const refused = await checkout('ada', 'LAMP');
    expect([refused.status, refused.body.code]).toEqual([422, 'SALE_NOT_ACTIVE']);
  });

  it('drops the buckets of the stock left behind that the new create does not split into', async () => {
    await leftBehind('TORCH', 40, 4);
    const created = await api.request('POST', '/v1/admin/skus', { token: admin, body: { skuId: 'TORCH', ...lamp, stock: 7 } });
    expect([created.status, created.body.stockBuckets, created.body.bucketStock]).toEqual([201, 1, [{ available: 7, reserved: 0, sold: 0 }]]);
    for (const bucket of [1, 2, 3]) expect(await env.redis.exists(keys.sku(keys.bucketGroup(bucket), 'TORCH'))).toBe(0);
  });

  it('refuses with 409 CONFLICT, changing nothing, when orders already reserved units of the stock left behind', async () => {
    await leftBehind('KETTLE', 5);
    expect((await checkout('bea', 'KETTLE')).status).toBe(202);

    const refused = await api.request('POST', '/v1/admin/skus', { token: admin, body: { skuId: 'KETTLE', ...lamp, stock: 50 } });
    expect([refused.status, refused.body.code]).toEqual([409, 'CONFLICT']);
    expect(refused.body.detail).toMatch(/KETTLE is not in the catalog, yet orders hold units of its stock/);
    expect(await env.db.selectFrom('skus').select('sku_id').where('sku_id', '=', 'KETTLE').execute()).toEqual([]);
    expect(await env.db.selectFrom('stock_ledger').select('sku_id').where('sku_id', '=', 'KETTLE').execute()).toEqual([]);
    expect(await api.deps.inventory.getSkuStock('KETTLE')).toEqual({ available: 4, reserved: 1, sold: 0 });
  });

  it('refuses checkouts of a SKU committed whose counters never reached Redis, and puts it on sale when the same create is sent again', async () => {
    const vase = { skuId: 'VASE', ...lamp, title: 'Vase', flashSale: null };
    // the create committed, and its api died before it wrote Redis
    await expect(api.deps.catalog.createSku(vase, 30, 'opening-VASE', () => Promise.reject(new Error('the api was killed')))).rejects.toThrow('the api was killed');
    const refused = await checkout('cal', 'VASE');
    expect([refused.status, refused.body.code]).toEqual([422, 'UNKNOWN_SKU']);
    // another create of that id is refused as before
    const other = await api.request('POST', '/v1/admin/skus', { token: admin, body: { skuId: 'VASE', ...lamp, title: 'Vase', priceCents: 12_000, stock: 30 } });
    expect([other.status, other.body.code]).toEqual([409, 'SKU_EXISTS']);

    const again = await api.request('POST', '/v1/admin/skus', { token: admin, body: { skuId: 'VASE', ...lamp, title: 'Vase', stock: 30 } });
    expect([again.status, again.body.stock]).toEqual([201, { available: 30, reserved: 0, sold: 0 }]);
    expect((await checkout('cal', 'VASE')).status).toBe(202);
    expect(await env.db.selectFrom('stock_ledger').select(['kind', 'qty']).where('sku_id', '=', 'VASE').execute()).toEqual([{ kind: 'adjust', qty: 30 }]);
  });

  it('does not put a SKU back on sale at its opening stock when Redis lost its counters after its stock moved: 409, left to the stock repair', async () => {
    const created = await api.request('POST', '/v1/admin/skus', { token: admin, body: { skuId: 'JUG', ...lamp, title: 'Jug', stock: 5 } });
    expect(created.status).toBe(201);
    expect((await api.request('PUT', '/v1/admin/skus/JUG/stock', { token: admin, body: { stock: 3 } })).status).toBe(200);
    // Redis lost the SKU's counters
    await env.redis.del(keys.sku(keys.bucketGroup(0), 'JUG'));

    const again = await api.request('POST', '/v1/admin/skus', { token: admin, body: { skuId: 'JUG', ...lamp, title: 'Jug', stock: 5 } });
    expect([again.status, again.body.code]).toEqual([409, 'SKU_EXISTS']);
    expect(await api.deps.inventory.getSkuStock('JUG')).toBeNull();
  });

  it('creates a SKU sent twenty times at once once: one stock in Redis and one opening in the ledger, every other answer 409', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => api.request('POST', '/v1/admin/skus', { token: admin, body: { skuId: 'STOOL', ...lamp, title: 'Stool', stock: 30 } })));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses).toContain(201);
    expect(statuses.filter((status) => status !== 201).every((status) => status === 409)).toBe(true);
    expect(await api.deps.inventory.getSkuStock('STOOL')).toEqual({ available: 30, reserved: 0, sold: 0 });
    expect(await env.db.selectFrom('stock_ledger').select(['kind', 'qty']).where('sku_id', '=', 'STOOL').execute()).toEqual([{ kind: 'adjust', qty: 30 }]);
  });
});

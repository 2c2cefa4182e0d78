import { buyerAddress, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/**
 * An admin's create whose answer was lost (a dropped connection, a console reloaded) is sent
 * again with the same Idempotency-Key: it reads as created, not as 409 SKU_EXISTS, and
 * creates nothing twice.
 */
describe('creating a SKU under an Idempotency-Key', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let admin: string;

  beforeAll(async () => {
    env = await createTestEnv('sku_create_keyed');
    api = await startApi(env);
    admin = api.token('ops', 'admin');
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const body = (skuId: string, stock = 30) => ({
    skuId,
    title: 'Desk lamp',
    priceCents: 10_000,
    merchantId: 'shop',
    channel: 'self',
    warehouseId: 'wh-east',
    deduction: 'placement',
    stock,
    flashSale: { priceCents: 5_000, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z', perUserLimit: 2 },
  });
  const create = (sku: object, key: string | undefined, token = admin) =>
    api.request('POST', '/v1/admin/skus', { token, body: sku, headers: key === undefined ? {} : { 'idempotency-key': key } });
  const openings = (skuId: string) => env.db.selectFrom('stock_ledger').select(['kind', 'qty']).where('sku_id', '=', skuId).where('reason', '=', 'opening stock').execute();

  it('answers a create sent again the SKU as it is now, marked replayed, and keeps one opening stock', async () => {
    const first = await create(body('LAMP'), 'create-lamp');
    expect([first.status, first.headers['idempotent-replayed']]).toEqual([201, undefined]);
    const sold = await api.request('POST', '/v1/orders', {
      token: api.token('ada'),
      headers: { 'idempotency-key': 'ada-lamp' },
      body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress },
    });
    expect(sold.status).toBe(202);

    const again = await create(body('LAMP'), 'create-lamp');
    expect([again.status, again.headers['idempotent-replayed'], again.headers.location]).toEqual([201, 'true', '/v1/admin/skus/LAMP']);
    expect(again.body).toMatchObject({ skuId: 'LAMP', title: 'Desk lamp', stock: { available: 29, reserved: 1, sold: 0 } });
    expect(await openings('LAMP')).toEqual([{ kind: 'adjust', qty: 30 }]);
    expect(await api.deps.inventory.getSkuStock('LAMP')).toEqual({ available: 29, reserved: 1, sold: 0 });
  });

  it('refuses the key with another body (422 IDEMPOTENCY_CONFLICT), and an existing SKU without the key or under another (409 SKU_EXISTS)', async () => {
    expect((await create(body('TORCH'), 'create-torch')).status).toBe(201);

    const otherBody = await create(body('TORCH', 40), 'create-torch');
    expect([otherBody.status, otherBody.body.code]).toEqual([422, 'IDEMPOTENCY_CONFLICT']);
    const unkeyed = await create(body('TORCH'), undefined);
    expect([unkeyed.status, unkeyed.body.code]).toEqual([409, 'SKU_EXISTS']);
    const otherKey = await create(body('TORCH'), 'create-torch-2');
    expect([otherKey.status, otherKey.body.code]).toEqual([409, 'SKU_EXISTS']);
    // the key is its caller's: another admin sending the same one creates nothing of theirs
    const otherAdmin = await create(body('TORCH'), 'create-torch', api.token('night-shift', 'admin'));
    expect([otherAdmin.status, otherAdmin.body.code]).toEqual([409, 'SKU_EXISTS']);

    expect(await openings('TORCH')).toEqual([{ kind: 'adjust', qty: 30 }]);
    expect(await api.deps.inventory.getSkuStock('TORCH')).toEqual({ available: 30, reserved: 0, sold: 0 });
  });

  it('answers a merchant its own keyed create again', async () => {
    const merchant = api.token('shop', 'merchant');
    expect((await create(body('VASE'), 'vase', merchant)).status).toBe(201);
    const again = await create(body('VASE'), 'vase', merchant);
    expect([again.status, again.headers['idempotent-replayed'], again.body.merchantId]).toEqual([201, 'true', 'shop']);
  });

  it('creates a SKU sent twenty times at once under one key once, every answer 201', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => create(body('STOOL'), 'create-stool')));
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 20 }, () => 201));
    expect(answers.every((answer) => answer.body.skuId === 'STOOL')).toBe(true);
    expect(await openings('STOOL')).toEqual([{ kind: 'adjust', qty: 30 }]);
    expect(await api.deps.inventory.getSkuStock('STOOL')).toEqual({ available: 30, reserved: 0, sold: 0 });
  });
});

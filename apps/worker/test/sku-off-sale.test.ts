import { buyerAddress } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const BUCKETS = 3;

/** A SKU as GET /v1/admin/skus lists it, in what these tests read of it. */
interface ListedSku {
  skuId: string;
  onSale: boolean;
  stock: { available: number };
}

/**
 * A wrong price, a recall, a launch called off: the shop stops selling a SKU at once, in every
 * bucket of its stock, and nothing else changes. The units its orders give back wait for its
 * return to sale instead of going on sale, where a stock set to 0 put them back on sale.
 */
describe('a SKU taken off sale', () => {
  let system: OrderSystem;
  const admin = () => system.token('ops', 'admin');
  const onSale = (skuId: string, body: unknown, token = admin()) => system.request('PUT', `/v1/admin/skus/${skuId}/on-sale`, { token, body });
  const buy = (buyer: string, skuId: string, qty = 1) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `${buyer}-${skuId}` }, body: { items: [{ skuId, qty }], address: buyerAddress } });
  /** skus_off_sale as the workers export it (read from MySQL at most once a second). */
  const offSaleGauge = async () => (await system.workers.deps.metrics.skusOffSale.get()).values[0]?.value;
  /** Whether each bucket of the SKU in Redis has it off sale. */
  const offSaleInBuckets = (skuId: string, buckets = BUCKETS) =>
    Promise.all(Array.from({ length: buckets }, async (_, bucket) => (await system.env.redis.hget(`${system.env.config.REDIS_KEY_PREFIX}{g${bucket}}:sku:${skuId}`, 'offSale')) === '1'));

  beforeAll(async () => {
    system = await startOrderSystem('sku_off_sale', { RECONCILE_INTERVAL_MS: '0', RECONCILE_SETTLE_MS: '100' });
    for (const skuId of ['LAMP', 'HOT', 'DESK']) {
      await system.createSku({ skuId, priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: skuId === 'HOT' ? 1_000 : 20, deduction: 'placement', stockBuckets: BUCKETS });
    }
  }, 60_000);

  afterAll(async () => {
    await system?.close();
  });

  it('refuses every checkout of it, lets the orders it took go on, and keeps what they give back off sale until it is put back on sale', { timeout: 60_000 }, async () => {
    const paid = await system.checkout('ann', [{ skuId: 'LAMP', qty: 2 }]);
    const unpaid = await system.checkout('bob', [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(unpaid, 'PENDING_PAYMENT');

    const off = await onSale('LAMP', { onSale: false });
    expect([off.status, off.body.onSale, off.body.stock.available]).toEqual([200, false, 17]);
    const since = off.body.offSaleSince as string;
    expect(Date.parse(since)).toBeGreaterThan(Date.now() - 60_000);
    expect(await offSaleInBuckets('LAMP')).toEqual([true, true, true]);
    await expect.poll(offSaleGauge).toBe(1);
    for (const buyer of ['cat', 'dan', 'eve', 'fay']) {
      const refused = await buy(buyer, 'LAMP');
      expect([refused.status, refused.body.code, refused.body.detail]).toEqual([422, 'SALE_NOT_ACTIVE', 'SKU LAMP is off sale: the shop has stopped selling it for now']);
    }

    // the orders it took go on: one paid and handed to the warehouse, one cancelled, its unit back in available and not sold
    expect((await system.request('POST', `/v1/orders/${paid}/pay`, { token: system.token('ann'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(paid, 'IN_FULFILLMENT');
    expect((await system.request('POST', `/v1/orders/${unpaid}/cancel`, { token: system.token('bob'), body: { reason: 'changed my mind' } })).status).toBe(200);
    await system.waitForStatus(unpaid, 'CANCELLED');
    expect(await system.stockOf('LAMP')).toEqual({ available: 18, reserved: 0, sold: 2 });
    expect((await buy('gus', 'LAMP')).status).toBe(422);

    // asked again: as it stands, taken off when it first was
    const again = await onSale('LAMP', { onSale: false });
    expect([again.status, again.body.onSale, again.body.offSaleSince]).toEqual([200, false, since]);

    const back = await onSale('LAMP', { onSale: true });
    expect([back.status, back.body.onSale, back.body.offSaleSince]).toEqual([200, true, null]);
    expect(await offSaleInBuckets('LAMP')).toEqual([false, false, false]);
    expect((await buy('gus', 'LAMP')).status).toBe(202);
    await expect.poll(offSaleGauge).toBe(0);
  });

  it('is the shop’s to change: a merchant for its own SKUs, never a buyer; a body that is not { onSale: boolean } is refused', async () => {
    expect((await onSale('LAMP', { onSale: false }, system.token('other-shop', 'merchant'))).status).toBe(404);
    expect((await onSale('LAMP', { onSale: false }, system.token('ann'))).status).toBe(403);
    expect((await onSale('NO-SUCH-SKU', { onSale: false })).status).toBe(404);
    for (const body of [{}, { onSale: 'no' }, { onSale: false, stock: 0 }]) {
      const refused = await onSale('LAMP', body);
      expect([refused.status, refused.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    }
    expect((await system.request('GET', '/v1/admin/skus/LAMP', { token: admin() })).body.onSale).toBe(true);
    const merchant = await onSale('LAMP', { onSale: false }, system.token('shop', 'merchant'));
    expect([merchant.status, merchant.body.onSale]).toEqual([200, false]);
    expect((await onSale('LAMP', { onSale: true }, system.token('shop', 'merchant'))).body.onSale).toBe(true);
  });

  it('taken off sale amid hundreds of checkouts: none is accepted once the change was answered, and every unit is an accepted order’s or still available', { timeout: 120_000 }, async () => {
    const before = Array.from({ length: 200 }, (_, i) => buy(`early-${i}`, 'HOT'));
    const off = await onSale('HOT', { onSale: false });
    expect(off.status).toBe(200);
    const after = await Promise.all(Array.from({ length: 200 }, (_, i) => buy(`late-${i}`, 'HOT')));
    expect(after.map((answer) => [answer.status, answer.body.code])).toEqual(Array(200).fill([422, 'SALE_NOT_ACTIVE']));
    const early = await Promise.all(before);
    const accepted = early.filter((answer) => answer.status === 202);
    expect(early.filter((answer) => answer.status !== 202).map((answer) => answer.body.code)).toEqual(Array(200 - accepted.length).fill('SALE_NOT_ACTIVE'));
    await Promise.all(accepted.map((answer) => system.waitForStatus(answer.body.orderId, 'PENDING_PAYMENT', 30_000)));
    expect(await system.stockOf('HOT')).toEqual({ available: 1_000 - accepted.length, reserved: accepted.length, sold: 0 });
  });

  it('is listed among the SKUs off sale, page by page, a merchant seeing its own only', async () => {
    await system.createSku({ skuId: 'OTHER-VASE', priceCents: 4_000, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
    for (const skuId of ['OTHER-VASE', 'LAMP']) expect((await onSale(skuId, { onSale: false })).status).toBe(200);
    const list = (query: string, token = admin()) => system.request('GET', `/v1/admin/skus?${query}`, { token });
    const all = await list('offSale=true');
    expect([all.status, all.body.items.map((sku: ListedSku) => [sku.skuId, sku.onSale, sku.stock.available]), all.body.nextCursor]).toEqual([
      200,
      [['HOT', false, expect.any(Number)], ['LAMP', false, 17], ['OTHER-VASE', false, 5]],
      null,
    ]);
    const first = await list('offSale=true&limit=2');
    expect(first.body.items.map((sku: ListedSku) => sku.skuId)).toEqual(['HOT', 'LAMP']);
    const next = await list(`offSale=true&limit=2&cursor=${first.body.nextCursor}`);
    expect([next.body.items.map((sku: ListedSku) => sku.skuId), next.body.nextCursor]).toEqual([['OTHER-VASE'], null]);
    expect((await list('offSale=false')).body.items.map((sku: ListedSku) => sku.skuId)).toEqual(['DESK']);
    // a merchant: its own SKUs, and no other's by name
    expect((await list('offSale=true', system.token('shop', 'merchant'))).body.items.map((sku: ListedSku) => sku.skuId)).toEqual(['HOT', 'LAMP']);
    expect((await list('merchantId=potter', system.token('shop', 'merchant'))).status).toBe(403);
    expect((await list('merchantId=potter')).body.items.map((sku: ListedSku) => sku.skuId)).toEqual(['OTHER-VASE']);
    for (const query of ['cursor=Li4', 'limit=0', 'offSale=maybe', 'colour=red']) {
      const refused = await list(query);
      expect([query, refused.status, refused.body.code]).toEqual([query, 400, 'VALIDATION_FAILED']);
    }
    expect((await list('offSale=true', system.token('ann'))).status).toBe(403);
    for (const skuId of ['OTHER-VASE', 'LAMP']) expect((await onSale(skuId, { onSale: true })).status).toBe(200);
  });

  it('is taken off sale while Redis has lost a bucket of it, put back on a bucket that sells it anyway by the stock repair, and the lost bucket comes back off sale', { timeout: 60_000 }, async () => {
    const prefix = system.env.config.REDIS_KEY_PREFIX;
    // bucket 2 is lost: it sells nothing until the repair recreates it, as the catalog then has the SKU
    await system.env.redis.del(`${prefix}{g2}:sku:DESK`);
    const off = await onSale('DESK', { onSale: false });
    expect([off.status, off.body.onSale]).toEqual([200, false]);
    expect(await offSaleInBuckets('DESK')).toEqual([true, true, false]);
    // bucket 1 sells it again (a change whose COMMIT failed, Redis left as it was)
    await system.env.redis.hdel(`${prefix}{g1}:sku:DESK`, 'offSale');
    const check = await system.reconciler(100).reconcile({ repair: false });
    expect(check.saleRulesDrift).toEqual([{ skuId: 'DESK', catalog: { startsAt: 0, endsAt: 0, perUserLimit: 0, offSale: true }, buckets: [{ bucket: 1, startsAt: 0, endsAt: 0, perUserLimit: 0, offSale: false }] }]);

    const repaired = await system.reconciler(100).reconcile({ repair: true });
    expect(repaired.repaired).toBe(true);
    expect(await offSaleInBuckets('DESK')).toEqual([true, true, true]);
    expect(await system.stockOf('DESK')).toEqual({ available: 20, reserved: 0, sold: 0 });
    const refused = await Promise.all(['hal', 'ida', 'jon', 'kim', 'lea', 'max'].map((buyer) => buy(buyer, 'DESK')));
    expect(refused.map((answer) => answer.status)).toEqual(Array(6).fill(422));
    expect((await system.reconciler(100).reconcile({ repair: false })).saleRulesDrift).toEqual([]);
  });
});

import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const HOUR = 3600 * 1000;

describe("a buyer's count toward a flash sale's limit through the stock repair", () => {
  let system: OrderSystem;
  let saleStart: number;
  const buy = (buyer: string, skuId: string, key: string) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress } });

  beforeAll(async () => {
    system = await startOrderSystem('limits_through_repairs', { RECONCILE_INTERVAL_MS: '0', RECONCILE_SETTLE_MS: '100' });
    saleStart = Date.now() - HOUR;
    const sale = (perUserLimit: number) => ({ priceCents: 49_900, startsAt: new Date(saleStart).toISOString(), endsAt: new Date(saleStart + 2 * HOUR).toISOString(), perUserLimit });
    await system.createSku({ skuId: 'CONSOLE', priceCents: 59_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', flashSale: sale(2) });
    await system.createSku({ skuId: 'PHONE', priceCents: 59_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', flashSale: sale(1) });
    // another SKU of the catalog, repaired after PHONE (the repair goes by SKU id)
    await system.createSku({ skuId: 'RADIO', priceCents: 1_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
  }, 60_000);

  afterAll(async () => {
    await system?.close();
  });

  // Redis fails over to a replica that had not received a buyer's last checkout, whose order the
  // worker had already written to MySQL from the old master: every write of that checkout's script
  // is missing on the new master (it replicates whole scripts), and nothing else.
  it('is raised to the orders MySQL holds: a buyer with a limit of 2 holding 2 is refused a third, and one given back by an expiry may be bought again', async () => {
    const first = await system.checkout('ann', [{ skuId: 'CONSOLE', qty: 1 }], 'ann-1');
    const second = await system.checkout('ann', [{ skuId: 'CONSOLE', qty: 1 }], 'ann-2');
    await system.waitForStatus(first, 'PENDING_PAYMENT');
    await system.waitForStatus(second, 'PENDING_PAYMENT');

    const { redis } = system.env;
    const g = `${system.env.config.REDIS_KEY_PREFIX}{g0}`;
    expect(await redis.get(`${g}:bought:CONSOLE:ann`)).toBe(`${saleStart}:2`);
    await redis.set(`${g}:bought:CONSOLE:ann`, `${saleStart}:1`, 'KEEPTTL');
    await redis.hincrby(`${g}:sku:CONSOLE`, 'available', 1);
    await redis.hincrby(`${g}:sku:CONSOLE`, 'reserved', -1);
    await redis.del(`${g}:order:${second}`, `${g}:idem:ann:ann-2`);

    const report = await system.reconciler().reconcile({ repair: true });
    expect([report.reservationsRestored, report.flashSaleCountsRestored]).toEqual([1, 1]);
    expect(await system.stockOf('CONSOLE')).toMatchObject({ available: 8, reserved: 2, sold: 0 });
    const third = await buy('ann', 'CONSOLE', 'ann-3');
    expect([third.status, third.body.code]).toEqual([422, 'LIMIT_EXCEEDED']);

    // the order whose record the repair put back gives its unit back to the limit when it closes
    const cancelled = await system.request('POST', `/v1/orders/${second}/cancel`, { token: system.token('ann'), body: { reason: 'changed my mind' } });
    expect(cancelled.status).toBe(200);
    expect((await buy('ann', 'CONSOLE', 'ann-4')).status).toBe(202);
  });

  it('is back before a SKU Redis lost is on sale again: a buyer of a limit-1 sale holding one is refused another while the repair still runs', async () => {
    const first = await system.checkout('bo', [{ skuId: 'PHONE', qty: 1 }], 'bo-phone-1');
    await system.waitForStatus(first, 'PENDING_PAYMENT');
    // Redis restarts without its data (no AOF): every key is gone
    await system.loseRedisData();
    // RADIO's row is busy a moment (a merchant's stock set under way): the repair waits for it, PHONE already back
    const busy = await system.env.db.startTransaction().execute();
    let during: Awaited<ReturnType<typeof buy>>;
    try {
      await busy.selectFrom('skus').select('sku_id').where('sku_id', '=', 'RADIO').forUpdate().execute();
      const repair = system.reconciler().reconcile({ repair: true });
      repair.catch(() => undefined);
      const phoneKey = `${system.env.config.REDIS_KEY_PREFIX}{g0}:sku:PHONE`;
      await waitFor(async () => (await system.env.redis.hget(phoneKey, 'deduction')) !== null, { what: 'PHONE back on sale' });
      during = await buy('bo', 'PHONE', 'bo-phone-2');
      await busy.commit().execute();
      await repair;
    } finally {
      await busy.rollback().execute().catch(() => undefined);
    }
    const after = await buy('bo', 'PHONE', 'bo-phone-3');
    expect([during.status, during.body.code, after.status]).toEqual([422, 'LIMIT_EXCEEDED', 422]);
    // another buyer gets theirs
    expect((await buy('cy', 'PHONE', 'cy-phone-1')).status).toBe(202);
  });
});

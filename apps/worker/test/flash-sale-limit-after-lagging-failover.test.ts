import { buyerAddress } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const HOUR = 3600 * 1000;

/**
 * Redis fails over to a replica that had not received a buyer's last checkout, whose order the
 * worker had already written to MySQL from the old master: every write of that checkout's script
 * is missing on the new master (its replication is of whole scripts), and nothing else.
 */
describe("a buyer's count toward a flash sale's limit after a failover to a replica that was behind, and the stock repair", () => {
  let system: OrderSystem;
  let saleStart: number;
  const buy = (buyer: string, key: string) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'CONSOLE', qty: 1 }], address: buyerAddress } });

  beforeAll(async () => {
    system = await startOrderSystem('limit_after_lagging_failover', { RECONCILE_INTERVAL_MS: '0', RECONCILE_SETTLE_MS: '100' });
    saleStart = Date.now() - HOUR;
    await system.createSku({
      skuId: 'CONSOLE',
      priceCents: 59_900,
      merchantId: 'shop',
      channel: 'self',
      warehouseId: 'wh-east',
      stock: 10,
      deduction: 'placement',
      flashSale: { priceCents: 49_900, startsAt: new Date(saleStart).toISOString(), endsAt: new Date(saleStart + 2 * HOUR).toISOString(), perUserLimit: 2 },
    });
  }, 60_000);

  afterAll(async () => {
    await system?.close();
  });

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
    const third = await buy('ann', 'ann-3');
    expect([third.status, third.body.code]).toEqual([422, 'LIMIT_EXCEEDED']);

    // the order whose record the repair put back gives its unit back to the limit when it closes
    const cancelled = await system.request('POST', `/v1/orders/${second}/cancel`, { token: system.token('ann'), body: { reason: 'changed my mind' } });
    expect(cancelled.status).toBe(200);
    expect((await buy('ann', 'ann-4')).status).toBe(202);
  });
});

import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const HOUR = 3600 * 1000;

describe("a buyer's flash-sale limit: kept through a Redis loss and its repair, given back by a cancellation after payment", () => {
  let system: OrderSystem;

  const boughtKey = (skuId: string, buyer: string) => `${system.env.config.REDIS_KEY_PREFIX}{g0}:bought:${skuId}:${buyer}`;
  const buy = (buyer: string, skuId: string, key: string) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress } });
  const cancel = (orderId: string, buyer: string) => system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(buyer), body: { reason: 'changed my mind' } });

  /** The buyer's order of one unit, paid by card and handed to the warehouse, not shipped. */
  async function paid(buyer: string, skuId: string, key: string): Promise<string> {
    const orderId = await system.checkout(buyer, [{ skuId, qty: 1 }], key);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    return orderId;
  }

  beforeAll(async () => {
    system = await startOrderSystem('flash_sale_limits', { RECONCILE_INTERVAL_MS: '0', RECONCILE_SETTLE_MS: '100' });
    const now = Date.now();
    for (const skuId of ['PHONE', 'WATCH']) {
      await system.createSku({
        skuId,
        priceCents: 59_900,
        merchantId: 'shop',
        channel: 'self',
        warehouseId: 'wh-east',
        stock: 10,
        deduction: 'placement',
        flashSale: { priceCents: 49_900, startsAt: new Date(now - HOUR).toISOString(), endsAt: new Date(now + HOUR).toISOString(), perUserLimit: 1 },
      });
    }
  }, 60_000);

  afterAll(async () => {
    await system?.close();
  });

  it('refuses a second phone of a limit-1 sale to a buyer whose count Redis lost, once the repair has run', async () => {
    await paid('ann', 'PHONE', 'ann-phone-1');
    // Redis lost the buyer's count (a failover to a replica behind, a restart without AOF)
    expect(await system.env.redis.del(boughtKey('PHONE', 'ann'))).toBe(1);

    const report = await system.reconciler().reconcile({ repair: true });

    const second = await buy('ann', 'PHONE', 'ann-phone-2');
    expect([second.status, second.body.code]).toEqual([422, 'LIMIT_EXCEEDED']);
    expect(report.flashSaleCountsRestored).toBe(1);
    // another buyer still gets theirs
    expect((await buy('bea', 'PHONE', 'bea-phone-1')).status).toBe(202);
  });

  it('sells a limit-1 watch again to a buyer who paid, cancelled and was refunded, and only once however often the cancel is repeated', async () => {
    const first = await paid('cal', 'WATCH', 'cal-watch-1');
    const cancelled = await cancel(first, 'cal');
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
    await system.waitForRefund(first);
    await system.waitForStatus(first, 'REFUNDED');
    // the watch was in a parcel the warehouse held: it is back on sale, and in the buyer's limit, once the warehouse took it out
    await waitFor(async () => (await system.env.redis.hget(`${system.env.config.REDIS_KEY_PREFIX}{g0}:sku:WATCH`, 'available')) === '10', { what: 'the watch back on sale' });

    const again = await buy('cal', 'WATCH', 'cal-watch-2');
    expect(again.status).toBe(202);
    await system.waitForStatus(again.body.orderId, 'PENDING_PAYMENT');

    // the cancel sent again (its refund job queued again) and a repair give nothing back a second time
    expect((await cancel(first, 'cal')).status).toBe(200);
    await system.reconciler().reconcile({ repair: true });
    const third = await buy('cal', 'WATCH', 'cal-watch-3');
    expect([third.status, third.body.code]).toEqual([422, 'LIMIT_EXCEEDED']);
  });
});

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

  // Redis fails over to a replica that had not received a buyer's last checkout, whose order the
  // worker had already written to MySQL from the old master: every write of that checkout's script
  // is missing on the new master (it replicates whole scripts), and nothing else.
  it('is raised to the orders MySQL holds: a buyer with a limit of 2 holding 2 is refused a third, and one given back by a cancel may be bought again', async () => {
    const saleStart = Date.now() - HOUR;
    const sale = { priceCents: 49_900, startsAt: new Date(saleStart).toISOString(), endsAt: new Date(saleStart + 2 * HOUR).toISOString(), perUserLimit: 2 };
    await system.createSku({ skuId: 'CONSOLE', priceCents: 59_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', flashSale: sale });
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

  it('gives a limit-1 lamp sold at payment back to the buyer whose payment found it sold out, and a repair leaves it given back', async () => {
    const now = Date.now();
    const sale = { priceCents: 900, startsAt: new Date(now - HOUR).toISOString(), endsAt: new Date(now + HOUR).toISOString(), perUserLimit: 1 };
    await system.createSku({ skuId: 'LAST-LAMP', priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment', flashSale: sale });
    // payment-time: both checkouts only see the one lamp; both pay while it is on sale, Eve's payment takes it, Dee's finds it gone
    const dee = await system.checkout('dee', [{ skuId: 'LAST-LAMP', qty: 1 }], 'dee-lamp-1');
    const eve = await system.checkout('eve', [{ skuId: 'LAST-LAMP', qty: 1 }], 'eve-lamp-1');
    await Promise.all([system.waitForStatus(dee, 'PENDING_PAYMENT'), system.waitForStatus(eve, 'PENDING_PAYMENT')]);
    expect((await system.payInRace({ orderId: eve, buyer: 'eve' }, { orderId: dee, buyer: 'dee' })).status).toBe(202);
    await system.waitForStatus(eve, 'IN_FULFILLMENT');
    await system.waitForStatus(dee, 'REFUNDED');
    expect(await system.env.redis.get(boughtKey('LAST-LAMP', 'dee'))).toBe(`${Date.parse(sale.startsAt)}:0`);

    // an operator's repair (for drift elsewhere) counts Dee's units from MySQL: her refunded order holds none
    await system.reconciler().reconcile({ repair: true });
    expect((await system.request('PUT', '/v1/admin/skus/LAST-LAMP/stock', { token: system.token('ops', 'admin'), body: { stock: 1 } })).status).toBe(200);
    const again = await buy('dee', 'LAST-LAMP', 'dee-lamp-2');
    expect([again.status, again.body.code]).toEqual([202, undefined]);
    // Eve's paid lamp still counts
    expect((await buy('eve', 'LAST-LAMP', 'eve-lamp-2')).body.code).toBe('LIMIT_EXCEEDED');
  });

  it('is back before a SKU Redis lost is on sale again: a buyer of a limit-1 sale holding one is refused another while the repair still runs', async () => {
    // another SKU of the catalog, repaired after PHONE (the repair goes by SKU id)
    await system.createSku({ skuId: 'RADIO', priceCents: 1_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
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
  it('frees the checkout key of a hot SKU sent several times at once and refused every time: another cart under it is taken at once', async () => {
    const now = Date.now();
    const flashSale = { priceCents: 49_900, startsAt: new Date(now - HOUR).toISOString(), endsAt: new Date(now + HOUR).toISOString(), perUserLimit: 1 };
    await system.createSku({ skuId: 'TAPPED', priceCents: 59_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement', flashSale, stockBuckets: 4 });
    await system.createSku({ skuId: 'OTHER', priceCents: 59_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    const buyers = Array.from({ length: 10 }, (_, i) => `tap-${i}`);
    // each buyer holds their one unit of the hot SKU
    expect((await Promise.all(buyers.map((b) => buy(b, 'TAPPED', 'first')))).map((a) => a.status)).toEqual(buyers.map(() => 202));
    // the app sends the next checkout four times at once (taps, retries on a slow answer): every one refused, no order
    const tapped = await Promise.all(buyers.flatMap((b) => Array.from({ length: 4 }, () => buy(b, 'TAPPED', 'next'))));
    expect(tapped.map((a) => [a.status, a.body.code])).toEqual(tapped.map(() => [422, 'LIMIT_EXCEEDED']));
    // the key is free again, as after any refused checkout: the buyer picks another product under it
    const other = await Promise.all(buyers.map((b) => buy(b, 'OTHER', 'next')));
    expect(other.map((a) => [a.status, a.body.code])).toEqual(buyers.map(() => [202, undefined]));
  });
});

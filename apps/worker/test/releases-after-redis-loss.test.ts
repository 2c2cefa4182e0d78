import { buyerAddress, ledgerAvailable } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * Unpaid orders closed after Redis lost their reservation records and the operator ran the
 * stock repair, which counted their units reserved again from the ledger and put their
 * records back from MySQL: closing them puts those units back on sale, once.
 */
describe('orders closed unpaid after Redis lost their reservations', () => {
  let system: OrderSystem;

  /** `npm run reconcile` as an operator runs it, in this process, on this test's database and key prefix. */
  const reconcile = (repair: boolean) => system.reconciler().reconcile({ repair });
  const loseRedisData = () => system.loseRedisData();
  const stock = (skuId: string) => system.stockOf(skuId);
  const checkout = (buyer: string, items: Array<{ skuId: string; qty: number }>, key: string, couponCode?: string) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items, address: buyerAddress, couponCode } });
  const driftOf = async (skuId: string) => (await reconcile(false)).drift.filter((drift) => drift.skuId === skuId);
  const sku = { merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement' } as const;

  beforeAll(async () => {
    system = await startOrderSystem('releases_after_redis_loss', {
      RECONCILE_INTERVAL_MS: '0',
      // flash-sale orders expire within the test; standard ones and presale deposits wait for their buyer
      FLASH_SALE_PAYMENT_TIMEOUT_MS: '4000',
      PRESALE_BALANCE_TIMEOUT_MS: '4000',
    });
  });
  afterAll(async () => system?.close());

  it('puts the 2 sneakers of a flash-sale order left unpaid back on sale when it expires', async () => {
    const now = Date.now();
    const flashSale = { priceCents: 4_900, startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 2 };
    await system.createSku({ ...sku, skuId: 'SNEAKER', priceCents: 9_900, stock: 10, flashSale });
    const orderId = (await checkout('ann', [{ skuId: 'SNEAKER', qty: 2 }], 'ann-sneakers')).body.orderId as string;
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');

    await loseRedisData();
    expect((await reconcile(true)).reservationsRestored).toBe(1);
    expect(await stock('SNEAKER')).toEqual({ available: 8, reserved: 2, sold: 0 });
    // still unpaid and open when the repair counted its sneakers reserved
    expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');

    await system.waitForStatus(orderId, 'EXPIRED', 15_000);
    await expect.poll(() => stock('SNEAKER')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect(await ledgerAvailable(system.env.db, 'SNEAKER')).toBe(10);
    expect(await driftOf('SNEAKER')).toEqual([]);
  });

  it('puts the 3 mugs and the coupon use of an order its buyer cancels back, once', async () => {
    await system.createSku({ ...sku, skuId: 'MUG', priceCents: 1_500, stock: 10 });
    const coupon = { code: 'MUGS', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
    const orderId = (await checkout('bob', [{ skuId: 'MUG', qty: 3 }], 'bob-mugs', 'MUGS')).body.orderId as string;
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');

    await loseRedisData();
    await reconcile(true);
    expect(await stock('MUG')).toEqual({ available: 7, reserved: 3, sold: 0 });

    const cancel = () => system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('bob'), body: { reason: 'ordered by mistake' } });
    const cancelled = await cancel();
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'CANCELLED']);
    expect(await stock('MUG')).toEqual({ available: 10, reserved: 0, sold: 0 });
    // cancelling again gives nothing back a second time
    expect((await cancel()).status).toBe(200);
    expect(await stock('MUG')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect(await driftOf('MUG')).toEqual([]);
    // the coupon's one use per buyer is bob's again, once: a second order with it is refused
    const again = await checkout('bob', [{ skuId: 'MUG', qty: 1 }], 'bob-mug-again', 'MUGS');
    expect(again.status).toBe(202);
    const third = await checkout('bob', [{ skuId: 'MUG', qty: 1 }], 'bob-mug-third', 'MUGS');
    expect([third.status, third.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  });

  it('gives a use back once when its order, cancelled before Redis lost its data, is cancelled again after the repair counted the buyer\'s uses from MySQL', async () => {
    await system.createSku({ ...sku, skuId: 'PLATE', priceCents: 2_000, stock: 10 });
    const coupon = { code: 'PLATES', kind: 'fixed', offCents: 200, minSpendCents: 0, perBuyerLimit: 2, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
    const first = (await checkout('eve', [{ skuId: 'PLATE', qty: 1 }], 'eve-plate-1', 'PLATES')).body.orderId as string;
    const second = (await checkout('eve', [{ skuId: 'PLATE', qty: 1 }], 'eve-plate-2', 'PLATES')).body.orderId as string;
    await system.waitForStatus(first, 'PENDING_PAYMENT');
    await system.waitForStatus(second, 'PENDING_PAYMENT');
    const cancel = () => system.request('POST', `/v1/orders/${first}/cancel`, { token: system.token('eve'), body: { reason: 'one is enough' } });
    expect((await cancel()).body.status).toBe('CANCELLED');

    // Redis loses its data (with the marker saying the first order's use went back); the repair counts eve's one use left held, the second order's
    await loseRedisData();
    await reconcile(true);
    const usesHeld = async () => (await system.request('GET', '/v1/admin/coupons/PLATES', { token: system.token('ops', 'admin') })).body.usesHeld as number;
    expect(await usesHeld()).toBe(1);
    // eve cancels the first order again (as after a cancel answered 5xx): its use went back already, and is not given back a second time
    expect((await cancel()).status).toBe(200);
    expect(await usesHeld()).toBe(1);
    expect((await checkout('eve', [{ skuId: 'PLATE', qty: 1 }], 'eve-plate-3', 'PLATES')).status).toBe(202);
    const past = await checkout('eve', [{ skuId: 'PLATE', qty: 1 }], 'eve-plate-4', 'PLATES');
    expect([past.status, past.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  });

  it('gives a use back once when its order, cancelled before Redis lost its data, is cancelled again after its buyer, holding none at the repair, took the coupon again', async () => {
    await system.createSku({ ...sku, skuId: 'BOWL', priceCents: 2_000, stock: 10 });
    const coupon = { code: 'BOWLS', kind: 'fixed', offCents: 200, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
    const first = (await checkout('fin', [{ skuId: 'BOWL', qty: 1 }], 'fin-bowl-1', 'BOWLS')).body.orderId as string;
    await system.waitForStatus(first, 'PENDING_PAYMENT');
    const cancel = () => system.request('POST', `/v1/orders/${first}/cancel`, { token: system.token('fin'), body: { reason: 'wrong colour' } });
    expect((await cancel()).body.status).toBe('CANCELLED');

    await loseRedisData();
    await reconcile(true);
    const usesHeld = async () => (await system.request('GET', '/v1/admin/coupons/BOWLS', { token: system.token('ops', 'admin') })).body.usesHeld as number;
    expect(await usesHeld()).toBe(0);
    // fin's second order holds the one use; the first order's cancel sent again gives nothing back
    expect((await checkout('fin', [{ skuId: 'BOWL', qty: 1 }], 'fin-bowl-2', 'BOWLS')).status).toBe(202);
    expect((await cancel()).status).toBe(200);
    expect(await usesHeld()).toBe(1);
    const past = await checkout('fin', [{ skuId: 'BOWL', qty: 1 }], 'fin-bowl-3', 'BOWLS');
    expect([past.status, past.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  });

  it('puts the camera of a presale whose balance was not paid by its deadline back on sale, the deposit kept', async () => {
    await system.createSku({ ...sku, skuId: 'NEXT-CAMERA', priceCents: 80_000, stock: 4, orderType: 'presale' });
    const orderId = (await checkout('cal', [{ skuId: 'NEXT-CAMERA', qty: 1 }], 'cal-camera')).body.orderId as string;
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('cal'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');

    await loseRedisData();
    await reconcile(true);
    expect(await stock('NEXT-CAMERA')).toEqual({ available: 3, reserved: 1, sold: 0 });
    expect((await system.order(orderId)).status).toBe('DEPOSIT_PAID');

    await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', 15_000);
    await expect.poll(() => stock('NEXT-CAMERA')).toEqual({ available: 4, reserved: 0, sold: 0 });
    expect(await driftOf('NEXT-CAMERA')).toEqual([]);
  });

  it('leaves the counters as a failover left them when an order whose reservation it lost is cancelled before the repair, and the repair finds nothing to move', async () => {
    await system.createSku({ ...sku, skuId: 'VASE', priceCents: 3_000, stock: 10 });
    // in MySQL, holding 2 vases in the ledger; Redis (a replica that was behind) has neither its record nor its units reserved
    const orderId = await system.persisted('standard', 'dee', [{ skuId: 'VASE', qty: 2 }]);
    expect(await stock('VASE')).toEqual({ available: 10, reserved: 0, sold: 0 });

    const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('dee'), body: { reason: 'too late' } });
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'CANCELLED']);
    expect(await stock('VASE')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect(await driftOf('VASE')).toEqual([]);
  });
});

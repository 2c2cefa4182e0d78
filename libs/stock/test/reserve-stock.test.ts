import { IdempotencyConflict, LimitExceeded, OutOfStock, SaleNotActive, UnknownSku } from '@orders/domain';
import { Inventory, type ReserveStockRequest } from '@orders/stock';
import { buyerAddress, reservationOf } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';

const HOUR = 3600_000;

describe('the stock scripts', () => {
  const prefix = testKeyPrefix('stock');
  let redis: Redis;
  let inventory: Inventory;
  // the scripts expire keys at times derived from `now` on Redis's own clock, so `now` is today
  const now = new Date();

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, TEST_TIMEOUTS);
    await inventory.initSku({ skuId: 'A', available: 5, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    await inventory.initSku({ skuId: 'B', available: 1, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    await inventory.initSku({ skuId: 'PAY', available: 3, deduction: 'payment', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    await inventory.initSku({ skuId: 'SALE', available: 100, deduction: 'placement', saleStartsAt: new Date(now.getTime() - HOUR), saleEndsAt: new Date(now.getTime() + HOUR), perUserLimit: 3 });
    await inventory.initSku({ skuId: 'LATER', available: 100, deduction: 'placement', saleStartsAt: new Date(now.getTime() + HOUR), saleEndsAt: new Date(now.getTime() + 2 * HOUR), perUserLimit: 3 });
    await inventory.initSku({ skuId: 'OVER', available: 100, deduction: 'placement', saleStartsAt: new Date(now.getTime() - 2 * HOUR), saleEndsAt: new Date(now.getTime() - HOUR), perUserLimit: 3 });
    await inventory.initSku({ skuId: 'MUG', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    await inventory.initSku({ skuId: 'LAMP', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    await inventory.publishCoupon({ code: 'SAVE', perBuyerLimit: 1, startsAt: new Date(now.getTime() - HOUR), endsAt: new Date(now.getTime() + HOUR) });
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  const reserve = (userId: string, items: Array<{ skuId: string; qty: number }>, extra: Partial<ReserveStockRequest> = {}) =>
    inventory.reserveStock(reservationOf(userId, items, { now, ...extra }));

  it('reserves every line of an order or none of them', async () => {
    await expect(reserve('u1', [{ skuId: 'A', qty: 2 }, { skuId: 'B', qty: 2 }])).rejects.toBeInstanceOf(OutOfStock);
    expect(await inventory.getSkuStock('A')).toEqual({ available: 5, reserved: 0, sold: 0 });
    const ok = await reserve('u1', [{ skuId: 'A', qty: 2 }, { skuId: 'B', qty: 1 }]);
    expect(ok.created).toBe(true);
    expect(ok.order.type).toBe('standard');
    expect(Date.parse(ok.order.paymentDeadline) - Date.parse(ok.order.acceptedAt)).toBe(30 * 60_000);
    expect(await inventory.getSkuStock('A')).toEqual({ available: 3, reserved: 2, sold: 0 });
    expect(await inventory.getSkuStock('B')).toEqual({ available: 0, reserved: 1, sold: 0 });
  });

  it('only checks, never takes, stock of a SKU deducted at payment', async () => {
    await reserve('u1', [{ skuId: 'PAY', qty: 3 }]);
    expect(await inventory.getSkuStock('PAY')).toEqual({ available: 3, reserved: 0, sold: 0 });
    await expect(reserve('u1', [{ skuId: 'PAY', qty: 4 }])).rejects.toBeInstanceOf(OutOfStock);
  });

  it('names the unknown SKU', async () => {
    await expect(reserve('u1', [{ skuId: 'A', qty: 1 }, { skuId: 'GHOST', qty: 1 }])).rejects.toMatchObject(new UnknownSku('GHOST'));
  });

  it('sells a flash-sale SKU at its limit per buyer inside its window only', async () => {
    const first = await reserve('fan', [{ skuId: 'SALE', qty: 2 }]);
    expect(first.order.type).toBe('flash_sale');
    expect(Date.parse(first.order.paymentDeadline) - Date.parse(first.order.acceptedAt)).toBe(10 * 60_000);
    await expect(reserve('fan', [{ skuId: 'SALE', qty: 2 }])).rejects.toBeInstanceOf(LimitExceeded);
    await reserve('fan', [{ skuId: 'SALE', qty: 1 }]);
    await expect(reserve('fan', [{ skuId: 'LATER', qty: 1 }], { requestedType: 'flash_sale' })).rejects.toBeInstanceOf(SaleNotActive);
    // after its end a flash-sale SKU sells as an ordinary one, at list price and without the limit
    expect((await reserve('fan', [{ skuId: 'OVER', qty: 5 }])).order.type).toBe('standard');
    await expect(reserve('fan', [{ skuId: 'OVER', qty: 1 }], { requestedType: 'flash_sale' })).rejects.toBeInstanceOf(SaleNotActive);
  });

  it('holds the units of a sale not open yet for it: refused, whatever order type is asked, and with any other line', async () => {
    for (const requestedType of [null, 'standard', 'flash_sale'] as const) {
      await expect(reserve('early', [{ skuId: 'LATER', qty: 1 }], { requestedType })).rejects.toMatchObject({ skuId: 'LATER', opensAt: new Date(now.getTime() + HOUR) });
    }
    await expect(reserve('early', [{ skuId: 'MUG', qty: 1 }, { skuId: 'LATER', qty: 1 }])).rejects.toMatchObject({ skuId: 'LATER', opensAt: new Date(now.getTime() + HOUR) });
    expect(await inventory.getSkuStock('LATER')).toEqual({ available: 100, reserved: 0, sold: 0 });
    expect(await inventory.getSkuStock('MUG')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  it("decides the sale's window and the payment deadline by Redis's clock, whatever the api host's clock says", async () => {
    const [seconds, micros] = await redis.time();
    const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    // a host 90 minutes ahead would see LATER's sale open, and one two hours behind SALE's not yet
    await expect(reserve('skewed', [{ skuId: 'LATER', qty: 1 }], { requestedType: 'flash_sale', now: new Date(now.getTime() + 1.5 * HOUR) })).rejects.toBeInstanceOf(SaleNotActive);
    const behind = await reserve('skewed', [{ skuId: 'SALE', qty: 1 }], { now: new Date(now.getTime() - 2 * HOUR) });
    expect(behind.order.type).toBe('flash_sale');
    expect(Date.parse(behind.order.acceptedAt)).toBeGreaterThanOrEqual(redisNow);
    expect(Date.parse(behind.order.acceptedAt)).toBeLessThan(redisNow + 60_000);
    expect(Date.parse(behind.order.paymentDeadline) - Date.parse(behind.order.acceptedAt)).toBe(10 * 60_000);
  });

  it('replays the same key and body, and refuses the same key with another body', async () => {
    const first = await reserve('u2', [{ skuId: 'A', qty: 1 }], { idempotencyKey: 'same', bodyHash: 'body-1' });
    // through an api host whose clock runs an hour ahead: the same order, accepted and priced when it was
    const again = await reserve('u2', [{ skuId: 'A', qty: 1 }], { idempotencyKey: 'same', bodyHash: 'body-1', now: new Date(now.getTime() + HOUR) });
    expect(again.created).toBe(false);
    expect(again.order).toMatchObject({ orderId: first.order.orderId, acceptedAt: first.order.acceptedAt, paymentDeadline: first.order.paymentDeadline });
    await expect(reserve('u2', [{ skuId: 'A', qty: 2 }], { idempotencyKey: 'same', bodyHash: 'body-2' })).rejects.toBeInstanceOf(IdempotencyConflict);
    expect(await redis.pttl(inventory.keys.idempotency('{g0}', 'u2', 'same'))).toBeGreaterThan(23 * HOUR);
  });

  it("keeps each buyer's keys their own, whatever ':' and '%' their ids and keys hold", async () => {
    const theirs = await reserve('ann:x', [{ skuId: 'MUG', qty: 1 }], { idempotencyKey: 'k1', bodyHash: 'same-body' });
    // ann's key x:k1 is a key of her own: her checkout is taken, neither refused as a reused key nor answered with ann:x's order
    const hers = await reserve('ann', [{ skuId: 'MUG', qty: 1 }], { idempotencyKey: 'x:k1', bodyHash: 'same-body' });
    expect(hers.created).toBe(true);
    expect(hers.order.orderId).not.toBe(theirs.order.orderId);
    const escaped = await reserve('ann', [{ skuId: 'MUG', qty: 1 }], { idempotencyKey: 'x%3Ak1', bodyHash: 'same-body' });
    expect([escaped.created, escaped.order.orderId === hers.order.orderId]).toEqual([true, false]);
    const again = await reserve('ann', [{ skuId: 'MUG', qty: 1 }], { idempotencyKey: 'x:k1', bodyHash: 'same-body' });
    expect([again.created, again.order.orderId]).toEqual([false, hers.order.orderId]);
  });

  it('releases a reservation exactly once and gives the buyer their limit back', async () => {
    const before = await inventory.getSkuStock('SALE');
    const order = await reserve('releaser', [{ skuId: 'SALE', qty: 3 }]);
    expect(await inventory.releaseStock(order.order.orderId, 'releaser', 'expired')).toBe(true);
    expect(await inventory.releaseStock(order.order.orderId, 'releaser', 'expired')).toBe(false);
    expect(await inventory.getSkuStock('SALE')).toEqual(before);
    expect((await reserve('releaser', [{ skuId: 'SALE', qty: 3 }])).created).toBe(true);
  });

  describe('a SKU whose hash Redis lost', () => {
    const skuKey = (skuId: string) => inventory.keys.sku('{g0}', skuId);
    const rules = { deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 } as const;

    it('stays lost through a refund’s restock, a cancel’s release and a payment’s commit, and sells nothing until the repair', async () => {
      await inventory.initSku({ skuId: 'KITE', available: 10, ...rules });
      const refunded = await reserve('kite-1', [{ skuId: 'KITE', qty: 2 }]);
      const cancelled = await reserve('kite-2', [{ skuId: 'KITE', qty: 1 }]);
      const paid = await reserve('kite-3', [{ skuId: 'KITE', qty: 3 }]);
      expect(await inventory.commitStock(refunded.order.orderId)).toEqual({ status: 'committed' });
      await redis.del(skuKey('KITE'));

      expect(await inventory.restockStock(refunded.order.orderId, 'kite-refund', [{ skuId: 'KITE', qty: 2 }])).toBe(true);
      expect(await inventory.releaseStock(cancelled.order.orderId, 'kite-2', 'cancelled')).toBe(true);
      expect(await inventory.commitStock(paid.order.orderId)).toEqual({ status: 'committed' });
      expect(await redis.exists(skuKey('KITE'))).toBe(0);
      // done once each all the same: the repair, which recreates the counters from the ledger, does not do them again
      expect(await inventory.restockStock(refunded.order.orderId, 'kite-refund', [{ skuId: 'KITE', qty: 2 }])).toBe(false);
      expect(await inventory.releaseStock(cancelled.order.orderId, 'kite-2', 'cancelled')).toBe(false);
      await expect(reserve('kite-4', [{ skuId: 'KITE', qty: 1 }])).rejects.toMatchObject(new UnknownSku('KITE'));
    });

    it('refuses counters without their rules as an unknown SKU, and sells them with their rules once the repair has put them back', async () => {
      // what a refund's restock used to leave of a lost SKU: counters alone
      await redis.hset(skuKey('KITE2'), { available: 2, sold: -2 });
      await expect(reserve('kite2-1', [{ skuId: 'KITE2', qty: 1 }])).rejects.toMatchObject(new UnknownSku('KITE2'));

      const saleStartsAt = new Date(now.getTime() - HOUR);
      const saleEndsAt = new Date(now.getTime() + HOUR);
      expect(await inventory.recreateLostBuckets({ skuId: 'KITE2', deduction: 'placement', saleStartsAt, saleEndsAt, perUserLimit: 1 })).toEqual([0]);
      expect(await redis.hgetall(skuKey('KITE2'))).toEqual({
        available: '2',
        reserved: '0',
        sold: '-2',
        deduction: 'placement',
        saleStartsAt: String(saleStartsAt.getTime()),
        saleEndsAt: String(saleEndsAt.getTime()),
        perUserLimit: '1',
        buckets: '1',
        orderType: 'standard',
        countsEndWithSale: '1',
        countsBySale: '1',
      });
      expect((await reserve('kite2-1', [{ skuId: 'KITE2', qty: 1 }])).order.type).toBe('flash_sale');
      await expect(reserve('kite2-1', [{ skuId: 'KITE2', qty: 1 }])).rejects.toBeInstanceOf(LimitExceeded);
      expect(await inventory.getSkuStock('KITE2')).toEqual({ available: 1, reserved: 1, sold: -2 });
    });
  });

  describe('a reservation once committed or released', () => {
    const orderKey = (orderId: string) => inventory.keys.order('{g0}', orderId);
    const record = (orderId: string) => redis.hgetall(orderKey(orderId));
    const bytes = async (orderId: string) => Number(await redis.call('MEMORY', 'USAGE', orderKey(orderId), 'SAMPLES', '0'));
    const uses = (userId: string) => redis.get(inventory.keys.couponUses('{g0}', 'SAVE', userId));
    const lampCheckout = (userId: string, qty: number) => reservationOf(userId, [{ skuId: 'LAMP', qty }], { now, payload: { address: buyerAddress, couponCode: 'SAVE' } });

    it('keeps of a paid order only its state and coupon, in a sixth of the memory, as long as before: a second commit, a release and the checkout replayed answer as before', async () => {
      const checkout = lampCheckout('payer', 2);
      const first = await inventory.reserveStock(checkout);
      const { orderId } = first.order;
      const reservedBytes = await bytes(orderId);
      const keptUntil = Date.now() + (await redis.pttl(orderKey(orderId)));

      expect(await inventory.commitStock(orderId)).toEqual({ status: 'committed' });
      expect(await record(orderId)).toEqual({ s: 'committed', c: 'SAVE' });
      expect(await bytes(orderId)).toBeLessThan(reservedBytes / 4);
      // still a week past the payment deadline: a settle job replayed from the dead letters finds it committed
      expect(Math.abs(Date.now() + (await redis.pttl(orderKey(orderId))) - keptUntil)).toBeLessThan(60_000);

      const stock = await inventory.getSkuStock('LAMP');
      expect(stock).toMatchObject({ reserved: 0, sold: 2 });
      expect(await inventory.commitStock(orderId)).toEqual({ status: 'already' });
      expect(await inventory.releaseStock(orderId, 'payer', 'expired', 'SAVE')).toBe(false);
      expect(await inventory.reserveStock(checkout)).toEqual({ created: false, order: first.order });
      expect(await inventory.getSkuStock('LAMP')).toEqual(stock);
      expect(await uses('payer')).toBe('1');
      // the paid order cancelled: its coupon use goes back once
      expect(await inventory.releaseCoupon(first.order)).toBe(true);
      expect(await inventory.releaseCoupon(first.order)).toBe(false);
      expect(await uses('payer')).toBe('0');
    });

    it('keeps of a released order only its state and reason, for a day: a second release, a commit and the checkout replayed answer as before, and the same once it is gone', async () => {
      const checkout = lampCheckout('leaver', 3);
      const first = await inventory.reserveStock(checkout);
      const { orderId } = first.order;
      const reservedBytes = await bytes(orderId);
      const before = await inventory.getSkuStock('LAMP');

      expect(await inventory.releaseStock(orderId, 'leaver', 'expired', 'SAVE')).toBe(true);
      expect(await record(orderId)).toEqual({ s: 'released', r: 'expired' });
      expect(await bytes(orderId)).toBeLessThan(reservedBytes / 4);
      expect(await redis.pttl(orderKey(orderId))).toBeGreaterThan(23 * HOUR);
      expect(await redis.pttl(orderKey(orderId))).toBeLessThanOrEqual(24 * HOUR);

      const released = { available: before!.available + 3, reserved: before!.reserved - 3, sold: before!.sold };
      expect(await inventory.getSkuStock('LAMP')).toEqual(released);
      expect(await uses('leaver')).toBe('0');
      expect(await inventory.releaseStock(orderId, 'leaver', 'expired', 'SAVE')).toBe(false);
      expect(await inventory.commitStock(orderId)).toEqual({ status: 'released' });
      expect(await inventory.reserveStock(checkout)).toEqual({ created: false, order: first.order });

      // a day later the record is gone: a release still gives nothing back twice, a commit still commits nothing
      await redis.del(orderKey(orderId));
      expect(await inventory.releaseStock(orderId, 'leaver', 'expired', 'SAVE')).toBe(false);
      expect(await inventory.commitStock(orderId)).toEqual({ status: 'missing' });
      expect(await inventory.getSkuStock('LAMP')).toEqual(released);
      expect(await uses('leaver')).toBe('0');
    });

    it('takes a paid order out of the accepted set when its persisting did not, rather than calling it stranded or lost', async () => {
      const { order } = await inventory.reserveStock(lampCheckout('late', 1));
      expect(await inventory.commitStock(order.orderId)).toEqual({ status: 'committed' });

      const group = inventory.keys.groupOfOrder(order.orderId);
      const { stranded, withoutReservation } = await inventory.findStrandedOrders(group, new Date(now.getTime() + HOUR), 0, { offset: 0, limit: 500 });
      expect(stranded.map((accepted) => accepted.orderId)).not.toContain(order.orderId);
      expect(withoutReservation).not.toContain(order.orderId);
      expect(await inventory.awaitsPersisting(order.orderId)).toBe(false);
    });
  });
});

import { CouponNotValid, CouponUsedUp } from '@orders/domain';
import { Inventory } from '@orders/stock';
import { buyerAddress, reservationOf } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, testKeyPrefix } from './support/test-keys.js';

describe('coupons reserved with the stock, in one script', () => {
  const prefix = testKeyPrefix('coupon');
  // the scripts expire keys at times derived from `now` on Redis's own clock, so `now` is today
  const now = new Date();
  let redis: Redis;
  let inventory: Inventory;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, { standardPaymentTimeoutMs: 60_000, flashSalePaymentTimeoutMs: 60_000, idempotencyTtlMs: 86_400_000 });
    await inventory.initSku({ skuId: 'A', available: 20, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    await inventory.publishCoupon({ code: 'TWICE', perBuyerLimit: 2, startsAt: new Date(now.getTime() - 60_000), endsAt: new Date(now.getTime() + 60_000) });
    await inventory.publishCoupon({ code: 'LATER', perBuyerLimit: 2, startsAt: new Date(now.getTime() + 60_000), endsAt: new Date(now.getTime() + 120_000) });
    // a welcome coupon with no end in sight
    await inventory.publishCoupon({ code: 'FOREVER', perBuyerLimit: 3, startsAt: new Date(now.getTime() - 60_000), endsAt: new Date('2100-01-01T00:00:00Z') });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const reserve = (userId: string, couponCode: string | null) =>
    inventory.reserveStock(reservationOf(userId, [{ skuId: 'A', qty: 1 }], { payload: { address: buyerAddress, couponCode }, now }));
  const available = async () => (await inventory.getSkuStock('A'))!.available;

  it('takes one use per order up to the buyer’s limit; the next checkout is refused whole, and a release gives the use back once', async () => {
    const first = await reserve('ann', 'TWICE');
    await reserve('ann', 'TWICE');
    await expect(reserve('ann', 'TWICE')).rejects.toBeInstanceOf(CouponUsedUp);
    expect(await available()).toBe(18);
    // another buyer has uses of their own
    await reserve('bob', 'TWICE');
    expect(await inventory.releaseStock(first.order.orderId, 'ann', 'cancelled')).toBe(true);
    expect(await inventory.releaseStock(first.order.orderId, 'ann', 'cancelled')).toBe(false);
    const again = await reserve('ann', 'TWICE');
    await expect(reserve('ann', 'TWICE')).rejects.toBeInstanceOf(CouponUsedUp);
    // a coupon that did not apply at pricing goes back while the order lives on, once
    expect(await inventory.releaseCoupon(again.order)).toBe(true);
    expect(await inventory.releaseCoupon(again.order)).toBe(false);
    expect(await inventory.releaseStock(again.order.orderId, 'ann', 'expired')).toBe(true);
    await reserve('ann', 'TWICE');
    expect(await redis.get(inventory.keys.couponUses('{g0}', 'TWICE', 'ann'))).toBe('2');
  });

  it('keeps the marker of a use given back 90 days at most, and a buyer’s uses given back to none a day, though a coupon valid for years keeps the uses it holds as long: one per order or buyer would fill Redis', async () => {
    const ninetyDaysMs = 90 * 24 * 3600 * 1000;
    const markerTtl = async (orderId: string) => redis.pttl(inventory.keys.couponGivenBack('{g0}', orderId));
    const uses = inventory.keys.couponUses('{g0}', 'FOREVER', 'fay');
    const released = await reserve('fay', 'FOREVER');
    const notApplied = await reserve('fay', 'FOREVER');
    const afterRecord = await reserve('fay', 'FOREVER');
    expect(await redis.pttl(uses)).toBeGreaterThan(50 * 365 * 24 * 3600 * 1000);
    expect(await inventory.releaseStock(released.order.orderId, 'fay', 'cancelled', 'FOREVER')).toBe(true);
    expect(await inventory.releaseCoupon(notApplied.order)).toBe(true);
    // a paid order cancelled after its record expired: the marker alone decides
    await redis.del(inventory.keys.order('{g0}', afterRecord.order.orderId));
    expect(await inventory.releaseCoupon(afterRecord.order)).toBe(true);
    for (const { order } of [released, notApplied, afterRecord]) {
      expect(await markerTtl(order.orderId)).toBeLessThanOrEqual(ninetyDaysMs);
      expect(await markerTtl(order.orderId)).toBeGreaterThan(ninetyDaysMs - 60_000);
    }
    expect(await redis.get(uses)).toBe('0');
    expect(await redis.pttl(uses)).toBeLessThanOrEqual(24 * 3600 * 1000);
    // the buyer's next use is kept as long as the coupon again
    await reserve('fay', 'FOREVER');
    expect(await redis.pttl(uses)).toBeGreaterThan(50 * 365 * 24 * 3600 * 1000);
  });

  it('gives a paid order’s coupon use back once after its reservation record has expired, and never a second time for a use given back before', async () => {
    const uses = () => redis.get(inventory.keys.couponUses('{g0}', 'TWICE', 'dee'));
    const outlived = await reserve('dee', 'TWICE');
    const givenBackEarlier = await reserve('dee', 'TWICE');
    expect((await inventory.commitStock(outlived.order.orderId)).status).toBe('committed');
    expect(await inventory.releaseCoupon(givenBackEarlier.order)).toBe(true);
    expect(await uses()).toBe('1');
    // the records expire a week past the payment deadline; a paid order can be cancelled later
    await redis.del(inventory.keys.order('{g0}', outlived.order.orderId), inventory.keys.order('{g0}', givenBackEarlier.order.orderId));

    expect(await inventory.releaseCoupon(givenBackEarlier.order)).toBe(false);
    expect(await inventory.releaseCoupon(outlived.order)).toBe(true);
    expect(await inventory.releaseCoupon(outlived.order)).toBe(false);
    expect(await uses()).toBe('0');
    await reserve('dee', 'TWICE');
    await reserve('dee', 'TWICE');
    await expect(reserve('dee', 'TWICE')).rejects.toBeInstanceOf(CouponUsedUp);
  });

  it('gives an unpaid order’s coupon use back once when Redis lost its reservation record, and never again for a use a release gave back', async () => {
    const uses = () => redis.get(inventory.keys.couponUses('{g0}', 'TWICE', 'eve'));
    const lost = await reserve('eve', 'TWICE');
    const released = await reserve('eve', 'TWICE');
    expect(await inventory.releaseStock(released.order.orderId, 'eve', 'cancelled', 'TWICE')).toBe(true);
    expect(await uses()).toBe('1');
    // Redis lost both records; the stock repair counted the lost order's use from MySQL
    await redis.del(inventory.keys.order('{g0}', lost.order.orderId), inventory.keys.order('{g0}', released.order.orderId));

    expect(await inventory.releaseStock(lost.order.orderId, 'eve', 'expired', 'TWICE')).toBe(false);
    expect(await uses()).toBe('0');
    await reserve('eve', 'TWICE');
    await reserve('eve', 'TWICE');
    expect(await inventory.releaseStock(lost.order.orderId, 'eve', 'expired', 'TWICE')).toBe(false);
    expect(await inventory.releaseStock(released.order.orderId, 'eve', 'cancelled', 'TWICE')).toBe(false);
    expect(await uses()).toBe('2');
    await expect(reserve('eve', 'TWICE')).rejects.toBeInstanceOf(CouponUsedUp);
  });

  it('gives a use back once when Redis lost the uses count too: a cancel before the stock repair, and one sent again after it, leave the count the repair put back', async () => {
    const usesKey = inventory.keys.couponUses('{g0}', 'TWICE', 'fay');
    const cancelled = await reserve('fay', 'TWICE');
    const kept = await reserve('fay', 'TWICE');
    // Redis lost the buyer's count and both records; MySQL has the cancel's use given back
    await redis.del(usesKey, inventory.keys.order('{g0}', cancelled.order.orderId), inventory.keys.order('{g0}', kept.order.orderId));
    expect(await inventory.releaseStock(cancelled.order.orderId, 'fay', 'cancelled', 'TWICE')).toBe(false);
    // the stock repair counts the uses MySQL holds: the kept order's
    const coupon = { code: 'TWICE', endsAt: new Date(now.getTime() + 60_000) };
    expect(await inventory.restoreCouponUses(coupon, [{ orderId: kept.order.orderId, userId: 'fay' }])).toBe(1);

    expect(await inventory.releaseStock(cancelled.order.orderId, 'fay', 'cancelled', 'TWICE')).toBe(false);
    expect(await redis.get(usesKey)).toBe('1');
    await reserve('fay', 'TWICE');
    await expect(reserve('fay', 'TWICE')).rejects.toBeInstanceOf(CouponUsedUp);
  });

  it('refuses an unknown coupon or one outside its window, reserving nothing', async () => {
    const before = await available();
    await expect(reserve('cy', 'NOSUCH')).rejects.toBeInstanceOf(CouponNotValid);
    await expect(reserve('cy', 'LATER')).rejects.toBeInstanceOf(CouponNotValid);
    expect(await available()).toBe(before);
    await reserve('cy', null);
    expect(await available()).toBe(before - 1);
  });
});

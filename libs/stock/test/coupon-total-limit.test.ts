import { CouponAllTaken } from '@orders/domain';
import { Inventory, type Reservation } from '@orders/stock';
import { buyerAddress, reservationOf } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';

const HOUR = 3600_000;

/** A coupon for the first so many orders, raced for by many buyers at once: never more orders hold it than it allows. */
describe("a coupon's total limit", () => {
  const prefix = testKeyPrefix('coupon_total');
  let redis: Redis;
  let inventory: Inventory;
  const now = Date.now();
  const window = { startsAt: new Date(now - HOUR), endsAt: new Date(now + HOUR) };

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, TEST_TIMEOUTS);
    await inventory.initSku({ skuId: 'TEA', available: 10_000, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    // split into buckets: its carts run in the buyer's bucket and take the coupon's use in the buyers' own group first
    await inventory.initSku({ skuId: 'HOT', available: 10_000, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0, buckets: 4 });
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  const taken = async (code: string) => Number(await redis.hget(inventory.keys.coupon(inventory.keys.couponGroup(), code), 'taken'));
  const race = (code: string, skuId: string, buyers: number, tag: string) =>
    Promise.allSettled(
      Array.from({ length: buyers }, (_, i) => inventory.reserveStock(reservationOf(`${tag}-${i}`, [{ skuId, qty: 1 }], { payload: { address: buyerAddress, couponCode: code } }))),
    );
  const accepted = (answers: PromiseSettledResult<Reservation>[]) => answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value.order] : []));

  it.each([
    ['TEA', 'a cart in the buyers’ own group'],
    ['HOT', 'a cart of a SKU split into buckets'],
  ])('lets exactly 100 of 300 buyers racing for it use it (%s: %s); each use given back is taken by the next buyer, never one more', async (skuId) => {
    const code = `FIRST100-${skuId}`;
    await inventory.publishCoupon({ code, perBuyerLimit: 1, totalLimit: 100, ...window });
    const answers = await race(code, skuId, 300, `${skuId}-racer`);
    const orders = accepted(answers);
    expect(orders).toHaveLength(100);
    const refused = answers.filter((answer): answer is PromiseRejectedResult => answer.status === 'rejected');
    expect(refused).toHaveLength(200);
    expect(refused.every((answer) => answer.reason instanceof CouponAllTaken && answer.reason.code === 'COUPON_LIMIT_EXCEEDED')).toBe(true);
    expect(await taken(code)).toBe(100);

    // ten orders go unpaid and one is priced without the coupon: eleven uses come back, once each
    for (const order of orders.slice(0, 10)) {
      expect(await inventory.releaseStock(order.orderId, order.userId, 'expired', code)).toBe(true);
      expect(await inventory.releaseStock(order.orderId, order.userId, 'expired', code)).toBe(false);
    }
    expect(await inventory.releaseCoupon(orders[10]!)).toBe(true);
    expect(await inventory.releaseCoupon(orders[10]!)).toBe(false);
    expect(await taken(code)).toBe(89);
    const latecomers = accepted(await race(code, skuId, 50, `${skuId}-late`));
    expect(latecomers).toHaveLength(11);
    expect(await taken(code)).toBe(100);
  });

  it('leaves a coupon without a total limit to its per-buyer limit alone, and republished after Redis lost it, counts the uses MySQL says orders hold', async () => {
    await inventory.publishCoupon({ code: 'OPEN', perBuyerLimit: 1, ...window });
    expect(accepted(await race('OPEN', 'TEA', 150, 'open'))).toHaveLength(150);

    const key = inventory.keys.coupon(inventory.keys.couponGroup(), 'LOST');
    await inventory.publishCoupon({ code: 'LOST', perBuyerLimit: 1, totalLimit: 20, ...window });
    await redis.del(key);
    // the stock repair publishes it again with the 15 uses MySQL has; a count Redis kept is not overwritten
    await inventory.publishCoupon({ code: 'LOST', perBuyerLimit: 1, totalLimit: 20, ...window }, 15);
    await inventory.publishCoupon({ code: 'LOST', perBuyerLimit: 1, totalLimit: 20, ...window }, 3);
    expect(await taken('LOST')).toBe(15);
    expect(accepted(await race('LOST', 'TEA', 30, 'lost'))).toHaveLength(5);
  });

  it('keeps a coupon in Redis a day past its end, as its buyers’ uses, not for good', async () => {
    await inventory.publishCoupon({ code: 'MONTHLY', perBuyerLimit: 1, totalLimit: 10, ...window });
    const expiresAt = await redis.pexpiretime(inventory.keys.coupon(inventory.keys.couponGroup(), 'MONTHLY'));
    expect(expiresAt).toBe(window.endsAt.getTime() + 24 * HOUR);
  });
});

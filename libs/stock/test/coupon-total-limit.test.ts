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
    // in their flash sale now, alone and split into buckets
    await inventory.initSku({ skuId: 'DEAL', available: 10_000, deduction: 'placement', saleStartsAt: window.startsAt, saleEndsAt: window.endsAt, perUserLimit: 5 });
    await inventory.initSku({ skuId: 'HOT-DEAL', available: 10_000, deduction: 'placement', saleStartsAt: window.startsAt, saleEndsAt: window.endsAt, perUserLimit: 5, buckets: 4 });
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

  it.each([
    ['DEAL', 'a cart in the buyers’ own group: none taken, whatever the rush', true],
    ['HOT-DEAL', 'a cart of a SKU split into buckets: the use its claim took comes back as the order is accepted', false],
  ])('holds no use for a cart whose every line is in its flash sale (%s, %s), which the coupon takes nothing off; a cart with a line outside it holds one', async (skuId, _, atOnce) => {
    const code = `SALE2-${skuId}`;
    await inventory.publishCoupon({ code, perBuyerLimit: 1, totalLimit: 2, ...window });
    const flashOnly = (buyer: string) => inventory.reserveStock(reservationOf(buyer, [{ skuId, qty: 1 }], { payload: { address: buyerAddress, couponCode: code } }));
    // a claim takes its use before its reservation says the cart is all in the sale: at once, such carts could hold the two uses for a moment
    if (atOnce) expect(accepted(await race(code, skuId, 5, `${skuId}-flash`))).toHaveLength(5);
    else for (let i = 0; i < 5; i += 1) await flashOnly(`${skuId}-flash-${i}`);
    expect([await taken(code), Number(await redis.get(inventory.keys.couponUses(inventory.keys.couponGroup(), code, `${skuId}-flash-0`)))]).toEqual([0, 0]);
    // the coupon still has to be one the buyer may use: a sixth is refused once two other orders hold its uses
    const mixed = (buyer: string) => inventory.reserveStock(reservationOf(buyer, [{ skuId: 'TEA', qty: 1 }], { payload: { address: buyerAddress, couponCode: code } }));
    await mixed(`${skuId}-tea-1`);
    await mixed(`${skuId}-tea-2`);
    expect(await taken(code)).toBe(2);
    await expect(flashOnly(`${skuId}-flash-late`)).rejects.toBeInstanceOf(CouponAllTaken);
  });

  it('keeps a coupon in Redis a day past its end, as its buyers’ uses, not for good', async () => {
    await inventory.publishCoupon({ code: 'MONTHLY', perBuyerLimit: 1, totalLimit: 10, ...window });
    const expiresAt = await redis.pexpiretime(inventory.keys.coupon(inventory.keys.couponGroup(), 'MONTHLY'));
    expect(expiresAt).toBe(window.endsAt.getTime() + 24 * HOUR);
    // in the buyer's own group, and through a bucket's claim there
    for (const [skuId, buyer] of [['TEA', 'monthly-tea'], ['HOT', 'monthly-hot']] as const) {
      await inventory.reserveStock(reservationOf(buyer, [{ skuId, qty: 1 }], { payload: { address: buyerAddress, couponCode: 'MONTHLY' } }));
      expect(await redis.pexpiretime(inventory.keys.couponUses(inventory.keys.couponGroup(), 'MONTHLY', buyer))).toBe(window.endsAt.getTime() + 24 * HOUR);
    }
  });
});

import { CheckoutRefused, CouponUsedUp, OutOfStock } from '@orders/domain';
import { CheckoutInProgress, Inventory, type CheckoutCounters, type Reservation, type ReserveStockRequest, type WindowCount } from '@orders/stock';
import { buyerAddress, buyerOutsideBucketZero, reservationOf } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOT_BUCKETS, openHotSaleWithOnceCoupon } from './support/hot-sale.js';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';

describe('a checkout of a SKU split into buckets sent again while the first under its Idempotency-Key is under way', () => {
  const prefix = testKeyPrefix('checkout_in_progress');
  const now = new Date();
  let redis: Redis;
  let inventory: Inventory;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, TEST_TIMEOUTS);
    await openHotSaleWithOnceCoupon(inventory, now, 1_000);
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  /** A buyer whose cart runs in a bucket other than {g0}: their key and coupon use are claimed in their own group first. */
  const buyerOutsideG0 = (name: string) => buyerOutsideBucketZero(name, HOT_BUCKETS);
  /** One request of the buyer's cart under `key`, with the once-per-buyer coupon: each request its own order id, the same body. */
  const requestOf = (buyer: string, key: string, qty = 1): ReserveStockRequest =>
    reservationOf(buyer, [{ skuId: 'HOT', qty }], { now, idempotencyKey: key, bodyHash: `HOT-${qty}-ONCE`, payload: { address: buyerAddress, couponCode: 'ONCE' } });
  const uses = (buyer: string) => redis.get(inventory.keys.couponUses(inventory.keys.groupOf(buyer), 'ONCE', buyer));
  /** The buyer's retries of a request answered CheckoutInProgress, until one is answered otherwise. */
  const retried = async (buyer: string, key: string, qty = 1): Promise<Reservation> => {
    for (;;) {
      try {
        return await inventory.reserveStock(requestOf(buyer, key, qty));
      } catch (error) {
        if (!(error instanceof CheckoutInProgress)) throw error;
      }
    }
  };

  it('answers the second of two sent at once "in progress", not over the coupon the first took, and takes its retry on its own merits once the first was refused', async () => {
    const buyer = buyerOutsideG0('twice-refused');
    // more than the buyer's bucket holds: the first is refused after its claim took the coupon's use
    const [first, second] = await Promise.allSettled([inventory.reserveStock(requestOf(buyer, 'twice', 1_000)), inventory.reserveStock(requestOf(buyer, 'twice', 1_000))]);

    expect(first.status === 'rejected' && first.reason).toBeInstanceOf(OutOfStock);
    expect(second.status === 'rejected' && second.reason).toBeInstanceOf(CheckoutInProgress);
    await expect(retried(buyer, 'twice', 1_000)).rejects.toBeInstanceOf(OutOfStock);
    expect(await uses(buyer)).toBe('0');
    expect((await inventory.reserveStock(requestOf(buyer, 'afterwards'))).created).toBe(true);
    expect(await uses(buyer)).toBe('1');
  });

  it('answers two sent at once with the one order, its coupon used once', async () => {
    const buyer = buyerOutsideG0('twice-accepted');
    const answers = await Promise.allSettled([inventory.reserveStock(requestOf(buyer, 'twice')), inventory.reserveStock(requestOf(buyer, 'twice'))]);
    const orders = await Promise.all(answers.map((answer) => (answer.status === 'fulfilled' ? answer.value : retried(buyer, 'twice'))));

    expect(orders.map((reservation) => reservation.created).sort()).toEqual([false, true]);
    expect(orders[1]!.order.orderId).toBe(orders[0]!.order.orderId);
    expect(await uses(buyer)).toBe('1');
  });

  it("answers the second of two sent at once as the first, the one checkout attempt not counted twice, and refuses the buyer's next attempt over the checkout velocity", async () => {
    const buyer = buyerOutsideG0('twice-fast');
    const own = inventory.keys.groupOf(buyer);
    // one checkout attempt a minute: the second request's attempt is over it
    const velocity = { slotGroup: own, key: `${prefix}${own}:velocity:${buyer}`, windowMs: 60_000, max: 1 };
    const countersOf = (): CheckoutCounters => {
      let spent: WindowCount | null = null;
      return {
        budget: { slotGroup: own, key: `${prefix}${own}:budget:${buyer}`, windowMs: 60_000, max: 100 },
        velocity,
        get spent() {
          return spent;
        },
        counted: (budget) => void (spent = budget),
      };
    };
    const tooMany = () => ({ ...requestOf(buyer, 'twice-fast', 1_000), payload: { address: buyerAddress, couponCode: null }, counters: countersOf() });
    const [first, second] = await Promise.allSettled([inventory.reserveStock(tooMany()), inventory.reserveStock(tooMany())]);

    expect(first.status === 'rejected' && first.reason).toBeInstanceOf(OutOfStock);
    expect(second.status === 'rejected' && second.reason).toBeInstanceOf(OutOfStock);
    await expect(inventory.reserveStock({ ...tooMany(), idempotencyKey: 'twice-fast-next' })).rejects.toBeInstanceOf(CheckoutRefused);
  });

  it('gives back no use of an order accepted under a key whose record has expired while its claim lives on', async () => {
    const buyer = buyerOutsideG0('expired-record');
    // the key's record kept 1 s, its claim a minute longer; a claim not taken up for 200 ms is gone
    const shortLived = new Inventory(redis, prefix, { ...TEST_TIMEOUTS, idempotencyTtlMs: 1_000, claimAbandonedAfterMs: 200 });
    const { order } = await shortLived.reserveStock(requestOf(buyer, 'kept-a-second'));
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await redis.exists(inventory.keys.idempotency(inventory.keys.groupOf(buyer), buyer, 'kept-a-second'))).toBe(1);

    await expect(shortLived.reserveStock(requestOf(buyer, 'kept-a-second'))).rejects.toBeInstanceOf(CouponUsedUp);
    expect(await uses(buyer)).toBe('1');
    expect(await redis.hget(inventory.keys.couponHeld(inventory.keys.groupOf(buyer), order.orderId), 'c')).toBe('ONCE');
  });
});

import { Inventory, type ReserveStockRequest } from '@orders/stock';
import { buyerAddress, buyerOutsideBucketZero, reservationOf, startFailingRedisLink, waitFor, type FailingRedisLink } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisBehindLink } from './support/held-link.js';
import { HOT_BUCKETS, openHotSaleWithOnceCoupon } from './support/hot-sale.js';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';

const HOUR = 3600_000;
/** What a checkout's claim alone names among its commands (the order's coupon hold), and its reservation (its bucket's accepted orders). */
const CLAIM = ':coupon-held:';
const RESERVATION = '}:accepted';

/**
 * A cart of a SKU split into buckets claims its Idempotency-Key, and takes its coupon use, in the
 * buyer's own group (claimCheckout-7+c.lua), then reserves in the buyer's bucket. The api's
 * connection sends a command again once it is back when the command's answer was lost with it,
 * and gives up on an answer after its command timeout while the command may still run: either
 * way Redis may have run it, and the buyer's retry under the key, through another api process,
 * may have gone through meanwhile. The coupon use goes with the one order accepted under the key.
 */
describe('a checkout of a SKU split into buckets whose answers are lost while the retry under its key goes through', () => {
  const prefix = testKeyPrefix('bucket_checkout_retried');
  const now = new Date();
  let redis: Redis;
  /** Another api process's inventory, on a connection nothing cuts: the buyer's retry goes through it. */
  let other: Inventory;
  let buyers = 0;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    other = new Inventory(redis, prefix, TEST_TIMEOUTS);
    await openHotSaleWithOnceCoupon(other, now, 1_000);
    await other.publishCoupon({ code: 'TWICE', perBuyerLimit: 2, startsAt: new Date(now.getTime() - HOUR), endsAt: new Date(now.getTime() + HOUR) });
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  /** A buyer whose cart runs outside {g0}, the requests of their checkout under one key (each its own order id, one body), and their uses of the coupon. */
  const buyerWithCoupon = () => {
    const buyer = buyerOutsideBucketZero(`retried-${++buyers}`, HOT_BUCKETS);
    const { keys } = other;
    const own = keys.groupOf(buyer);
    const cartGroup = keys.bucketGroup(keys.bucketOf(buyer, HOT_BUCKETS));
    return {
      requestOf: (): ReserveStockRequest =>
        reservationOf(buyer, [{ skuId: 'HOT', qty: 1 }], { now, idempotencyKey: 'retried', bodyHash: 'HOT-1-TWICE', payload: { address: buyerAddress, couponCode: 'TWICE' } }),
      /** a checkout without the coupon under another key: the connection then knows every script the next one runs */
      warmUp: (inventory: Inventory) => inventory.reserveStock(reservationOf(buyer, [{ skuId: 'HOT', qty: 1 }], { now, payload: { address: buyerAddress, couponCode: null } })),
      uses: () => redis.get(keys.couponUses(own, 'TWICE', buyer)),
      /** the coupon a request's hold of its use names, while it holds one */
      heldBy: (request: ReserveStockRequest) => redis.hget(keys.couponHeld(own, keys.orderIdInGroup(request.orderId, cartGroup)), 'c'),
    };
  };

  it('its claim sent again after the retry took the claim up: the use is taken once', async () => {
    const behind = await redisBehindLink('claim-behind-link', { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
    try {
      await behind.client.connect();
      const inventory = new Inventory(behind.client, prefix, TEST_TIMEOUTS);
      const { requestOf, warmUp, uses, heldBy } = buyerWithCoupon();
      await warmUp(inventory);
      const first = requestOf();

      behind.link.holdAnswers();
      const firstAnswer = inventory.reserveStock(first);
      await waitFor(async () => (await uses()) === '1' || null, { what: "Redis to run the first request's claim", intervalMs: 10 });
      const again = requestOf();
      const retry = await other.reserveStock(again);
      await behind.link.cut();
      await behind.link.restore();

      const { order } = await firstAnswer;
      expect(retry.created).toBe(true);
      expect(order.orderId).toBe(retry.order.orderId);
      expect(await uses()).toBe('1');
      expect(await heldBy(first)).toBeNull();
      expect(await heldBy(again)).toBe('TWICE');
    } finally {
      behind.client.disconnect();
      await behind.link.close();
    }
  });

  it('its reservation answered after the command timeout, as the retry of an order the retry accepted: the claim gives its use back', async () => {
    const target = new URL(TEST_REDIS_URL);
    const link: FailingRedisLink = await startFailingRedisLink({ host: target.hostname, port: Number(target.port || 6379) });
    // as the api opens its connection, with a command timeout of 2 s: the claim's answer, held for
    // 1.5 s within it, leaves a busy box the time to see the claim run, hold the reservation's
    // answer too, and send the retry before the first request sends its reservation
    const client = new Redis({ host: '127.0.0.1', port: link.port, maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true, commandTimeout: 2_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const inventory = new Inventory(client, prefix, TEST_TIMEOUTS);
      const { requestOf, warmUp, uses, heldBy } = buyerWithCoupon();
      await warmUp(inventory);
      const first = requestOf();

      // the claim answered late but within the timeout, the retry going through meanwhile; the reservation answered long after it
      const claimAnswered = link.delayAnswersAfter(CLAIM, 1_500);
      const firstAnswer = inventory.reserveStock(first);
      await waitFor(async () => (await uses()) === '1' || null, { what: "Redis to run the first request's claim", intervalMs: 10 });
      const reservationAnswered = link.delayAnswersAfter(RESERVATION, 4_000);
      const again = requestOf();
      const retry = await other.reserveStock(again);
      await claimAnswered;
      await expect(firstAnswer).rejects.toThrow(/timed out/);
      await reservationAnswered;

      expect(retry.created).toBe(true);
      await waitFor(async () => (await heldBy(first)) === null, { what: "the first request's use given back", timeoutMs: 10_000, intervalMs: 20 });
      expect(await uses()).toBe('1');
      expect(await heldBy(again)).toBe('TWICE');
    } finally {
      client.disconnect();
      await link.close();
    }
  });
});

import { CouponUsedUp } from '@orders/domain';
import { AbandonedClaims, Inventory, type CheckoutTimeouts, type ReserveStockRequest } from '@orders/stock';
import { buyerAddress, buyerOutsideBucketZero, reservationOf, startFailingRedisLink, testRunName, waitFor } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOT_BUCKETS, openHotSaleWithOnceCoupon } from './support/hot-sale.js';
import { TEST_REDIS_URL, removeKeys } from './support/test-keys.js';

const HOUR = 3600_000;
/**
 * A claim nobody took up for 2 s is gone (five command timeouts of 400 ms): longer than a busy box
 * may take from a killed checkout's claim to the stock check that must still find it under way.
 */
const ABANDONED_AFTER_MS = 2_000;
/** What a checkout's claim of its key alone names among the commands before its reservation: the order's coupon hold. */
const CLAIM = ':coupon-held:';

describe("the stock check's abandonment of the claims of checkouts killed between their claim and their reservation", () => {
  // a prefix with glob characters: the SCAN for claims must match it as it is
  const prefix = `t:${testRunName('abandoned_claims')}[1]:`;
  const now = new Date();
  const timeouts: CheckoutTimeouts = { standardPaymentTimeoutMs: 30 * 60_000, flashSalePaymentTimeoutMs: 10 * 60_000, idempotencyTtlMs: 24 * HOUR, claimAbandonedAfterMs: ABANDONED_AFTER_MS };
  let redis: Redis;
  let inventory: Inventory;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, timeouts);
    await openHotSaleWithOnceCoupon(inventory, now, 1_000);
    await inventory.publishCoupon({ code: 'TWICE', perBuyerLimit: 2, startsAt: new Date(now.getTime() - HOUR), endsAt: new Date(now.getTime() + HOUR) });
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  /** A buyer whose cart runs in a bucket other than {g0}: their key and coupon use are claimed in their own group first. */
  const buyerOutsideG0 = (name: string) => buyerOutsideBucketZero(name, HOT_BUCKETS);
  const requestOf = (buyer: string, key: string, couponCode = 'ONCE'): ReserveStockRequest =>
    reservationOf(buyer, [{ skuId: 'HOT', qty: 1 }], { now, idempotencyKey: key, bodyHash: `HOT-1-${couponCode}`, payload: { address: buyerAddress, couponCode } });
  const uses = (buyer: string, couponCode = 'ONCE') => redis.get(inventory.keys.couponUses(inventory.keys.groupOf(buyer), couponCode, buyer));
  const claimOf = (buyer: string, key: string) => inventory.keys.idempotency(inventory.keys.groupOf(buyer), buyer, key);
  /** The claims the stock check reads each run: those holding coupon uses, not yet judged for good. */
  const indexed = () => redis.zrange(inventory.keys.claimsHoldingCoupons(inventory.keys.groupOf('any buyer')), 0, -1);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  /** The stock check as a worker runs it, on a MySQL where no order of this file was ever persisted (apps/worker's abandoned-claims has one that is). */
  const stockCheck = (on = inventory) => new AbandonedClaims({ redis, inventory: on, redeemedAmong: async () => new Set() });

  /** A checkout under `key` whose process dies once its claim has run, before its reservation is sent: the claim holds the coupon's use. */
  async function killedAfterClaim(buyer: string, key: string, checkoutTimeouts = timeouts, couponCode = 'ONCE'): Promise<void> {
    const target = new URL(TEST_REDIS_URL);
    const link = await startFailingRedisLink({ host: target.hostname, port: Number(target.port || 6379) });
    const linked = new Redis(`redis://127.0.0.1:${link.port}`, { commandTimeout: ABANDONED_AFTER_MS / 5 });
    try {
      const claimed = link.dieAfter(CLAIM);
      const lost = new Inventory(linked, prefix, checkoutTimeouts).reserveStock(requestOf(buyer, key, couponCode)).catch(() => null);
      await claimed;
      await waitFor(async () => (await redis.hexists(claimOf(buyer, key), 'g')) === 1, { what: 'the claim' });
      linked.disconnect();
      await lost;
    } finally {
      linked.disconnect();
      await link.close();
    }
    expect(await uses(buyer, couponCode)).toBe('1');
  }

  it('gives back the use once, whatever the checks at once, and only after nobody took the claim up for the time a request takes to settle', async () => {
    const buyer = buyerOutsideG0('killed');
    // a key holding what its record's name escapes: the abandoned claim names it as the buyer sent it
    const first = 'first:try-100%';
    await killedAfterClaim(buyer, first);
    const check = stockCheck();

    // its request may still be under way
    expect(await check.abandonGone()).toEqual([]);
    expect(await redis.exists(claimOf(buyer, first))).toBe(1);

    await sleep(ABANDONED_AFTER_MS + 50);
    const [one, other] = await Promise.all([check.abandonGone(), check.abandonGone()]);
    expect([...one, ...other]).toEqual([{ userId: buyer, idempotencyKey: first, cartGroup: expect.stringMatching(/^\{g[1-3]\}$/), couponCode: 'ONCE', orderIds: [expect.stringMatching(/-g[1-3]$/)] }]);
    expect(await uses(buyer)).toBe('0');
    expect(await redis.exists(claimOf(buyer, first))).toBe(0);
    expect(await indexed()).not.toContain(claimOf(buyer, first));
    expect((await inventory.reserveStock(requestOf(buyer, 'second'))).created).toBe(true);
    expect(await uses(buyer)).toBe('1');
  });

  it("finds such a claim by the claims holding coupon uses alone, and an older api's claim, held nowhere but its key, once the buyers' group's hourly scan is due", async () => {
    const check = stockCheck();
    // the first check of the hour scans every idempotency key besides: the others within it, whichever process runs them, read the claims holding uses only
    await check.abandonGone();
    const buyer = buyerOutsideG0('indexed');
    await killedAfterClaim(buyer, 'indexed');
    const older = buyerOutsideG0('older-api');
    await killedAfterClaim(older, 'unindexed');
    // as an api from before the index claims: the key alone
    await redis.zrem(inventory.keys.claimsHoldingCoupons(inventory.keys.groupOf(older)), claimOf(older, 'unindexed'));
    await sleep(ABANDONED_AFTER_MS + 50);

    expect(await check.abandonGone()).toEqual([expect.objectContaining({ userId: buyer, idempotencyKey: 'indexed', couponCode: 'ONCE' })]);
    expect(await uses(buyer)).toBe('0');
    expect(await uses(older)).toBe('1');
    expect(await stockCheck().abandonGone()).toEqual([]);
    expect(await uses(older)).toBe('1');
    // the hour over
    await redis.del(inventory.keys.claimsScanned(inventory.keys.groupOf(older)));
    expect(await stockCheck().abandonGone()).toEqual([expect.objectContaining({ userId: older, idempotencyKey: 'unindexed', couponCode: 'ONCE' })]);
    expect(await uses(older)).toBe('0');
    expect(await indexed()).toEqual([]);
  });

  it("gives the killed request's use back once the buyer's retry under the same key is accepted with a use the coupon still had: the buyer keeps every use the coupon allows", async () => {
    const buyer = buyerOutsideG0('retried');
    await killedAfterClaim(buyer, 'first', timeouts, 'TWICE');

    expect((await inventory.reserveStock(requestOf(buyer, 'first', 'TWICE'))).created).toBe(true);
    expect(await uses(buyer, 'TWICE')).toBe('1');
    // the retry's answer again: nothing given back twice
    expect((await inventory.reserveStock(requestOf(buyer, 'first', 'TWICE'))).created).toBe(false);
    expect(await uses(buyer, 'TWICE')).toBe('1');
    expect((await inventory.reserveStock(requestOf(buyer, 'second', 'TWICE'))).created).toBe(true);
    await expect(inventory.reserveStock(requestOf(buyer, 'third', 'TWICE'))).rejects.toBeInstanceOf(CouponUsedUp);
    expect(await uses(buyer, 'TWICE')).toBe('2');
  });

  it('leaves alone the claim of a checkout whose reservation landed: the order holds its use', async () => {
    const buyer = buyerOutsideG0('accepted');
    const { order } = await inventory.reserveStock(requestOf(buyer, 'kept'));
    await sleep(ABANDONED_AFTER_MS + 50);

    expect(await indexed()).toContain(claimOf(buyer, 'kept'));
    expect(await stockCheck().abandonGone()).toEqual([]);
    expect(await redis.exists(claimOf(buyer, 'kept'))).toBe(1);
    expect(await uses(buyer)).toBe('1');
    expect(await redis.hget(inventory.keys.couponHeld(inventory.keys.groupOf(buyer), order.orderId), 'c')).toBe('ONCE');
    // judged for good: the next checks read it no more
    expect(await indexed()).not.toContain(claimOf(buyer, 'kept'));
  });

  it('leaves alone a claim made longer ago than an order accepted under it would be recorded', async () => {
    const buyer = buyerOutsideG0('record-expired');
    // the key's record kept 1 s: past it, no record does not mean no order (nor was it taken up for 300 ms: it would be gone else)
    const shortRecords = { ...timeouts, idempotencyTtlMs: 1_000, claimAbandonedAfterMs: 300 };
    await killedAfterClaim(buyer, 'old', shortRecords);
    await sleep(1_100);

    expect(await stockCheck(new Inventory(redis, prefix, shortRecords)).abandonGone()).toEqual([]);
    expect(await redis.exists(claimOf(buyer, 'old'))).toBe(1);
    expect(await uses(buyer)).toBe('1');
  });
});

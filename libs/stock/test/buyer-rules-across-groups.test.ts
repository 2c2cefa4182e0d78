import { CouponUsedUp, IdempotencyConflict, OutOfStock } from '@orders/domain';
import { Inventory, type Reservation, type ReserveStockRequest } from '@orders/stock';
import { buyerAddress, buyerOutsideBucketZero, reservationOf } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';

const HOUR = 3600_000;
// a SKU sold whole, whose carts run in {g0}, and three split into buckets, whose carts run in the buyer's bucket's group
const BUCKETS = { PLAIN: 1, HOT4: 4, HOT8: 8, HOT16: 16 };
const SKUS = Object.keys(BUCKETS) as Array<keyof typeof BUCKETS>;

describe("a buyer's coupon uses and Idempotency-Keys, whichever stock group their cart runs in", () => {
  const prefix = testKeyPrefix('buyer_rules');
  // the scripts expire keys at times derived from `now` on Redis's own clock, so `now` is today
  const now = new Date();
  let redis: Redis;
  let inventory: Inventory;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, TEST_TIMEOUTS);
    for (const skuId of SKUS) await inventory.initSku({ skuId, available: 10_000, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0, buckets: BUCKETS[skuId] });
    await inventory.publishCoupon({ code: 'ONCE', perBuyerLimit: 1, startsAt: new Date(now.getTime() - HOUR), endsAt: new Date(now.getTime() + HOUR) });
    await inventory.publishCoupon({ code: 'YEARLONG', perBuyerLimit: 1, startsAt: new Date(now.getTime() - HOUR), endsAt: new Date(now.getTime() + 365 * 24 * HOUR) });
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  /** One unit of `skuId`; the body's hash names the cart, so the same cart sent again is the same body. */
  const checkoutOf = (userId: string, skuId: string, extra: Partial<ReserveStockRequest> = {}) =>
    reservationOf(userId, [{ skuId, qty: 1 }], { now, bodyHash: `cart-${skuId}-${extra.payload?.couponCode ?? ''}`, ...extra });
  const withCoupon = { payload: { address: buyerAddress, couponCode: 'ONCE' } };
  const uses = (userId: string) => redis.get(inventory.keys.couponUses(inventory.keys.groupOf(userId), 'ONCE', userId));
  const reservedInAll = async () => {
    let reserved = 0;
    for (const skuId of SKUS) reserved += (await inventory.getSkuStock(skuId))!.reserved;
    return reserved;
  };
  /** The buyers' answers to their carts all sent at once, per buyer: accepted orders and refusals. */
  const race = async (buyers: string[], request: (buyer: string, skuId: string) => ReserveStockRequest) => {
    const answers = await Promise.allSettled(buyers.flatMap((buyer) => SKUS.map((skuId) => inventory.reserveStock(request(buyer, skuId)))));
    const accepted = answers.flatMap((answer) => (answer.status === 'fulfilled' && answer.value.created ? [answer.value] : []));
    const refusals = answers.flatMap((answer) => (answer.status === 'rejected' ? [answer.reason as Error] : []));
    return { accepted, refusals };
  };
  /** A buyer none of whose carts of split SKUs runs in {g0}. */
  const buyerOutsideG0 = (name: string) => buyerOutsideBucketZero(name, ...SKUS.map((skuId) => BUCKETS[skuId]!));

  it('applies a once-per-buyer coupon to one order of each of 100 buyers who send their four carts at once', async () => {
    const buyers = Array.from({ length: 100 }, (_, i) => `racer-${i}`);
    const before = await reservedInAll();
    const { accepted, refusals } = await race(buyers, (buyer, skuId) => checkoutOf(buyer, skuId, withCoupon));

    expect(refusals.filter((refusal) => !(refusal instanceof CouponUsedUp))).toEqual([]);
    expect(accepted.map((reservation) => reservation.order.userId).sort()).toEqual([...buyers].sort());
    expect(refusals).toHaveLength(300);
    expect(await Promise.all(buyers.map(uses))).toEqual(buyers.map(() => '1'));
    expect((await reservedInAll()) - before).toBe(100);
  });

  it("publishes a coupon once, in the buyers' group, whose copy the carts of every group use", async () => {
    await inventory.publishCoupon({ code: 'SPRING', perBuyerLimit: 1, startsAt: new Date(now.getTime() - HOUR), endsAt: new Date(now.getTime() + HOUR) });
    expect(await redis.keys(`${prefix}*:coupon:SPRING`)).toEqual([inventory.keys.coupon('{g0}', 'SPRING')]);

    const spring = { payload: { address: buyerAddress, couponCode: 'SPRING' } };
    for (const skuId of SKUS) {
      const { order } = await inventory.reserveStock(checkoutOf(buyerOutsideG0(`spring-${skuId}`), skuId, spring));
      expect(inventory.keys.groupOfOrder(order.orderId)).toBe(BUCKETS[skuId] === 1 ? '{g0}' : `{g${inventory.keys.bucketOf(order.userId, BUCKETS[skuId])}}`);
    }
  });

  it('gives back at once a use taken for a cart its bucket refused, and the use of an order of a bucket once', async () => {
    const buyer = buyerOutsideG0('giver');
    const tooMany = checkoutOf(buyer, 'HOT4', { ...withCoupon, items: [{ skuId: 'HOT4', qty: 100_000 }] });
    await expect(inventory.reserveStock(tooMany)).rejects.toBeInstanceOf(OutOfStock);
    expect(await uses(buyer)).toBe('0');

    const hot = checkoutOf(buyer, 'HOT4', withCoupon);
    const first = await inventory.reserveStock(hot);
    // the same cart again is its order again, not a second use
    expect(await inventory.reserveStock({ ...hot, orderId: checkoutOf(buyer, 'HOT4').orderId })).toEqual({ created: false, order: first.order });
    expect(await uses(buyer)).toBe('1');
    await expect(inventory.reserveStock(checkoutOf(buyer, 'PLAIN', withCoupon))).rejects.toBeInstanceOf(CouponUsedUp);
    await expect(inventory.reserveStock(checkoutOf(buyer, 'HOT8', withCoupon))).rejects.toBeInstanceOf(CouponUsedUp);

    // cancelled unpaid: the use goes back with the stock, once however often the release runs
    expect(await inventory.releaseStock(first.order.orderId, buyer, 'cancelled', 'ONCE')).toBe(true);
    expect(await inventory.releaseStock(first.order.orderId, buyer, 'cancelled', 'ONCE')).toBe(false);
    expect(await uses(buyer)).toBe('0');
    // the coupon did not apply when the order was priced: it goes back while the order lives on, once
    const second = await inventory.reserveStock(checkoutOf(buyer, 'HOT16', withCoupon));
    expect(await inventory.releaseCoupon(second.order)).toBe(true);
    expect(await inventory.releaseCoupon(second.order)).toBe(false);
    expect(await inventory.releaseStock(second.order.orderId, buyer, 'expired', 'ONCE')).toBe(true);
    expect(await uses(buyer)).toBe('0');
    expect((await inventory.reserveStock(checkoutOf(buyer, 'PLAIN', withCoupon))).created).toBe(true);
    expect(await uses(buyer)).toBe('1');
  });

  it("holds a bucket order's use no longer than its reservation record is kept, and gives it back once after both have expired", async () => {
    const buyer = buyerOutsideG0('payer');
    const yearLong = { payload: { address: buyerAddress, couponCode: 'YEARLONG' } };
    const { order } = await inventory.reserveStock(checkoutOf(buyer, 'HOT4', yearLong));
    const hold = inventory.keys.couponHeld(inventory.keys.groupOf(buyer), order.orderId);
    const record = inventory.keys.order(inventory.keys.groupOfOrder(order.orderId), order.orderId);
    expect(Math.abs((await redis.pttl(hold)) - (await redis.pttl(record)))).toBeLessThan(60_000);
    expect((await inventory.commitStock(order.orderId)).status).toBe('committed');
    // the paid order cancelled after its record and its hold have expired
    await redis.del(hold, record);
    expect(await inventory.releaseCoupon(order)).toBe(true);
    expect(await inventory.releaseCoupon(order)).toBe(false);
    expect(await redis.get(inventory.keys.couponUses(inventory.keys.groupOf(buyer), 'YEARLONG', buyer))).toBe('0');
  });

  it('answers one Idempotency-Key with one order whichever cart it comes with, and that order to its own cart again', async () => {
    const buyer = buyerOutsideG0('keeper');
    const send = (skuId: string, key: string): Promise<Reservation> => inventory.reserveStock(checkoutOf(buyer, skuId, { idempotencyKey: key }));

    const plain = await send('PLAIN', 'same-key');
    await expect(send('HOT4', 'same-key')).rejects.toBeInstanceOf(IdempotencyConflict);
    await expect(send('HOT8', 'same-key')).rejects.toBeInstanceOf(IdempotencyConflict);
    expect(await send('PLAIN', 'same-key')).toEqual({ created: false, order: plain.order });

    const hot = await send('HOT4', 'other-key');
    await expect(send('PLAIN', 'other-key')).rejects.toBeInstanceOf(IdempotencyConflict);
    await expect(send('HOT16', 'other-key')).rejects.toBeInstanceOf(IdempotencyConflict);
    expect(await send('HOT4', 'other-key')).toEqual({ created: false, order: hot.order });
    // the claim of the key in the buyer's own group outlives the order's record of it in its bucket
    const claimMs = await redis.pttl(inventory.keys.idempotency(inventory.keys.groupOf(buyer), buyer, 'other-key'));
    const recordMs = await redis.pttl(inventory.keys.idempotency(inventory.keys.groupOfOrder(hot.order.orderId), buyer, 'other-key'));
    expect(recordMs).toBeGreaterThan(23 * HOUR);
    expect(claimMs).toBeGreaterThanOrEqual(recordMs);
  });

  it('accepts one order of each of 100 buyers who send their four carts under one key at once', async () => {
    const buyers = Array.from({ length: 100 }, (_, i) => `keyed-${i}`);
    const before = await reservedInAll();
    const { accepted, refusals } = await race(buyers, (buyer, skuId) => checkoutOf(buyer, skuId, { idempotencyKey: 'one-key' }));

    expect(refusals.filter((refusal) => !(refusal instanceof IdempotencyConflict))).toEqual([]);
    expect(accepted.map((reservation) => reservation.order.userId).sort()).toEqual([...buyers].sort());
    expect(refusals).toHaveLength(300);
    expect((await reservedInAll()) - before).toBe(100);
  });

  it('frees a key whose cart its bucket refused, as after any refused checkout', async () => {
    const buyer = buyerOutsideG0('refused');
    const tooMany = checkoutOf(buyer, 'HOT8', { idempotencyKey: 'retry-key', items: [{ skuId: 'HOT8', qty: 100_000 }] });
    await expect(inventory.reserveStock(tooMany)).rejects.toBeInstanceOf(OutOfStock);
    expect(await inventory.checkoutRecorded(buyer, 'retry-key')).toBe(false);
    expect((await inventory.reserveStock(checkoutOf(buyer, 'PLAIN', { idempotencyKey: 'retry-key' }))).created).toBe(true);
  });

  it('lets a key that a cart of another group holds through the sold-out memory and the load shedding, to its 422', async () => {
    const buyer = buyerOutsideG0('remembered');
    const remembering = new Inventory(redis, prefix, TEST_TIMEOUTS, { soldOutMemoryMs: 60_000 });
    await remembering.reserveStock(checkoutOf(buyer, 'HOT4', { idempotencyKey: 'held-key' }));
    remembering.rememberSoldOut('PLAIN', now, remembering.soldOutReturnsHeard());

    expect(await remembering.checkoutRecorded(buyer, 'held-key')).toBe(true);
    await expect(remembering.refuseIfSoldOut(buyer, 'fresh-key', [{ skuId: 'PLAIN', qty: 1 }], now)).rejects.toBeInstanceOf(OutOfStock);
    await remembering.refuseIfSoldOut(buyer, 'held-key', [{ skuId: 'PLAIN', qty: 1 }], now);
    await expect(remembering.reserveStock(checkoutOf(buyer, 'PLAIN', { idempotencyKey: 'held-key' }))).rejects.toBeInstanceOf(IdempotencyConflict);
  });

  it("lists a buyer's orders still in the queue whatever group their carts ran in, newest first by id: not a cart its bucket refused after its claim, nor one persisted", async () => {
    const buyer = buyerOutsideG0('lister');
    const placed: string[] = [];
    for (const skuId of SKUS) placed.push((await inventory.reserveStock(checkoutOf(buyer, skuId))).order.orderId);
    await expect(inventory.reserveStock(checkoutOf(buyer, 'HOT8', { items: [{ skuId: 'HOT8', qty: 100_000 }], bodyHash: 'too-many' }))).rejects.toBeInstanceOf(OutOfStock);
    const listed = async (page: { before?: string; limit?: number }, userId = buyer) =>
      (await inventory.queuedOrdersOf(userId, { limit: 10, matching: () => true, ...page })).map((order) => order.orderId);
    const newestFirst = [...placed].sort().reverse();
    expect(new Set(placed.map((orderId) => inventory.keys.groupOfOrder(orderId))).size).toBe(SKUS.length);
    expect(await listed({})).toEqual(newestFirst);
    expect(await listed({ limit: 2 })).toEqual(newestFirst.slice(0, 2));
    expect(await listed({ before: newestFirst[1] })).toEqual(newestFirst.slice(2));
    expect(await listed({}, buyerOutsideG0('nobody'))).toEqual([]);

    await inventory.markPersisted([placed[0]!, placed[2]!].map((orderId) => ({ orderId, userId: buyer })));
    expect(await listed({})).toEqual(newestFirst.filter((orderId) => orderId !== placed[0] && orderId !== placed[2]));
  });
});

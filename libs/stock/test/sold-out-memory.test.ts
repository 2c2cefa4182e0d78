import { IdempotencyConflict, OutOfStock } from '@orders/domain';
import { Inventory, SoldOutSkus, StockRebalancer } from '@orders/stock';
import { reservationOf, waitFor } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisBehindLink } from './support/held-link.js';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';

const HOUR = 3600_000;
const MEMORY_MS = 2_000;

describe('a SKU found sold out is refused from memory for a moment', () => {
  const prefix = testKeyPrefix('soldout');
  const subscribers: Redis[] = [];
  let redis: Redis;
  /** The api process under test; it hears no announcements unless a test subscribes it. */
  let inventory: Inventory;
  /** Another process (a worker, another api) on the same Redis, that gives units back. */
  let elsewhere: Inventory;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, TEST_TIMEOUTS, { soldOutMemoryMs: MEMORY_MS });
    elsewhere = new Inventory(redis, prefix, TEST_TIMEOUTS);
  });

  afterAll(async () => {
    for (const subscriber of subscribers) subscriber.disconnect();
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  const initSku = (skuId: string, available: number) =>
    inventory.initSku({ skuId, available, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });

  /** What the intake does: the memory first, then the reservation script. */
  const checkoutAt = async (at: Inventory, userId: string, items: Array<{ skuId: string; qty: number }>, key?: string, bodyHash?: string) => {
    const request = reservationOf(userId, items, key ? { idempotencyKey: key, bodyHash: bodyHash ?? `h-${key}` } : {});
    await at.refuseIfSoldOut(userId, request.idempotencyKey, items, request.now);
    return at.reserveStock(request);
  };
  const checkout = (userId: string, items: Array<{ skuId: string; qty: number }>, key?: string, bodyHash?: string) => checkoutAt(inventory, userId, items, key, bodyHash);

  it('sells a unit that comes back unannounced only once the memory has passed, and never twice', async () => {
    await initSku('LAST', 1);
    const first = await checkout('ann', [{ skuId: 'LAST', qty: 1 }]);
    await expect(checkout('bob', [{ skuId: 'LAST', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    // ann's order is cancelled in another process whose announcement this one does not hear
    // (its subscriber was away): her unit is back in Redis, but this process still remembers the SKU sold out
    expect(await elsewhere.releaseStock(first.order.orderId, 'ann', 'cancel')).toBe(true);
    expect(await inventory.getSkuStock('LAST')).toMatchObject({ available: 1 });
    await expect(checkout('cy', [{ skuId: 'LAST', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    const sold = await waitFor(async () => checkout('dee', [{ skuId: 'LAST', qty: 1 }]).catch(() => null), { what: 'the returned unit on sale again', timeoutMs: 3 * MEMORY_MS });
    expect(sold.created).toBe(true);
    await expect(checkout('eve', [{ skuId: 'LAST', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    expect(await inventory.getSkuStock('LAST')).toEqual({ available: 0, reserved: 1, sold: 0 });
  });

  it("answers a buyer's retry of an accepted checkout with the same order, and a reused key with a conflict, while the SKU is remembered sold out", async () => {
    await initSku('PAIR', 2);
    const accepted = await Promise.all(['fay', 'gus'].map((buyer) => checkout(buyer, [{ skuId: 'PAIR', qty: 1 }], `${buyer}-key`)));
    await expect(checkout('hal', [{ skuId: 'PAIR', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    const retries = await Promise.all(['fay', 'gus'].map((buyer) => checkout(buyer, [{ skuId: 'PAIR', qty: 1 }], `${buyer}-key`)));
    expect(retries.map((r) => [r.created, r.order.orderId])).toEqual(accepted.map((a) => [false, a.order.orderId]));
    await expect(checkout('fay', [{ skuId: 'PAIR', qty: 1 }], 'fay-key', 'another body')).rejects.toBeInstanceOf(IdempotencyConflict);
    // the same key from another buyer is another checkout, refused
    await expect(checkout('hal', [{ skuId: 'PAIR', qty: 1 }], 'fay-key')).rejects.toBeInstanceOf(OutOfStock);
    expect(await inventory.getSkuStock('PAIR')).toEqual({ available: 0, reserved: 2, sold: 0 });
  });

  it('answers OUT_OF_STOCK before the per-buyer limit once a SKU is sold out, from memory and from the script alike', async () => {
    await inventory.initSku({ skuId: 'ONE-EACH', available: 1, deduction: 'placement', saleStartsAt: new Date(Date.now() - HOUR), saleEndsAt: new Date(Date.now() + HOUR), perUserLimit: 1 });
    await checkout('nia', [{ skuId: 'ONE-EACH', qty: 1 }]);
    const withoutMemory = new Inventory(redis, prefix, TEST_TIMEOUTS);
    const again = (from: Inventory) =>
      from.reserveStock(reservationOf('nia', [{ skuId: 'ONE-EACH', qty: 1 }]));
    await expect(again(withoutMemory)).rejects.toBeInstanceOf(OutOfStock);
    await expect(checkout('nia', [{ skuId: 'ONE-EACH', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
  });

  it('forgets a sold-out SKU at once when units come back in this process, or in another one it hears (a release, a stock set, a repair)', async () => {
    await initSku('BACK', 1);
    const first = await checkout('ian', [{ skuId: 'BACK', qty: 1 }]);
    await expect(checkout('jay', [{ skuId: 'BACK', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    expect(await inventory.releaseStock(first.order.orderId, 'ian', 'cancel')).toBe(true);
    const second = await checkout('jay', [{ skuId: 'BACK', qty: 1 }]);

    // a process that remembers for a minute, and hears what the others give back
    const listening = new Inventory(redis, prefix, TEST_TIMEOUTS, { soldOutMemoryMs: 60_000 });
    const subscriber = new Redis(TEST_REDIS_URL);
    subscribers.push(subscriber);
    await listening.followReturnedStock(subscriber);
    await expect(checkoutAt(listening, 'kai', [{ skuId: 'BACK', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    expect(await elsewhere.releaseStock(second.order.orderId, 'jay', 'cancel')).toBe(true);
    const third = await waitFor(async () => checkoutAt(listening, 'kai', [{ skuId: 'BACK', qty: 1 }]).catch(() => null), { what: 'the unit on sale again in the listening process', timeoutMs: 5_000 });
    expect(third.created).toBe(true);
    // a merchant's stock set is announced too
    await expect(checkoutAt(listening, 'lou', [{ skuId: 'BACK', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    await elsewhere.setAvailable('BACK', 1, { ref: 'set-back', now: new Date() });
    const fourth = await waitFor(async () => checkoutAt(listening, 'lou', [{ skuId: 'BACK', qty: 1 }]).catch(() => null), { what: 'the new stock on sale in the listening process', timeoutMs: 5_000 });
    expect(fourth.created).toBe(true);
    // and so is a repair that puts units back on sale (the stock reconciler's, to the ledger)
    await expect(checkoutAt(listening, 'mia', [{ skuId: 'BACK', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    await elsewhere.correctCounters('BACK', { available: 1, reserved: 0, sold: 0 });
    const fifth = await waitFor(async () => checkoutAt(listening, 'mia', [{ skuId: 'BACK', qty: 1 }]).catch(() => null), { what: 'the repaired unit on sale in the listening process', timeoutMs: 5_000 });
    expect(fifth.created).toBe(true);
    expect(await inventory.getSkuStock('BACK')).toEqual({ available: 0, reserved: 3, sold: 0 });
  });

  it('does not remember a SKU as sold out from an answer that arrives after units came back', async () => {
    await initSku('LATE', 1);
    // a process whose commands go through a link that can hold Redis's answers back, and that hears announcements directly
    const { link, client: behindLink, idle, ranBehind } = await redisBehindLink('sold-out-behind-link');
    const subscriber = new Redis(TEST_REDIS_URL);
    subscribers.push(behindLink, subscriber);
    try {
      const listening = new Inventory(behindLink, prefix, TEST_TIMEOUTS, { soldOutMemoryMs: 60_000 });
      await listening.followReturnedStock(subscriber);
      // nat buys the last unit through this process: it knows the SKU and its scripts are loaded, so the next checkout goes out at once
      const first = await checkoutAt(listening, 'nat', [{ skuId: 'LATE', qty: 1 }]);
      await idle();
      link.holdAnswers();
      const late = checkoutAt(listening, 'oli', [{ skuId: 'LATE', qty: 1 }]).then(
        () => 'sold',
        (error: unknown) => (error instanceof OutOfStock ? 'out of stock' : error),
      );
      // the script has run and found nothing left; its answer waits on the link
      await ranBehind('eval', redis);
      // then nat cancels in another process, and this one hears that her unit is back
      const heard = new Promise<void>((resolve) => subscriber.once('message', () => resolve()));
      expect(await elsewhere.releaseStock(first.order.orderId, 'nat', 'cancel')).toBe(true);
      await heard;
      link.thaw();
      expect(await late).toBe('out of stock');
      // the answer was true when Redis gave it, and is not remembered: the unit is on sale now
      const next = await checkoutAt(listening, 'pam', [{ skuId: 'LATE', qty: 1 }]);
      expect(next.created).toBe(true);
      expect(await inventory.getSkuStock('LATE')).toEqual({ available: 0, reserved: 1, sold: 0 });
    } finally {
      await link.close();
    }
  });

  it('remembers a SKU split into buckets only once its rebalancer finds every bucket empty', async () => {
    await inventory.initSku({ skuId: 'SPLIT', available: 2, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0, buckets: 2 });
    const buyersOf = (bucket: number) => Array.from({ length: 200 }, (_, i) => `split-${i}`).filter((buyer) => inventory.keys.bucketOf(buyer, 2) === bucket);
    const [first0, second0, third0, fourth0] = buyersOf(0);
    const rebalancer = new StockRebalancer({ inventory, recordTransfer: async () => undefined, clock: () => new Date(), onError: (error) => { throw error; } });
    await checkout(first0!, [{ skuId: 'SPLIT', qty: 1 }]);
    // bucket 0 is empty, bucket 1 is not: that OUT_OF_STOCK is not remembered, the rebalancer moves the unit over
    await expect(checkout(second0!, [{ skuId: 'SPLIT', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    expect(await rebalancer.rebalance('SPLIT', new Map([[0, 1]]))).toBe(1);
    const last = await checkout(second0!, [{ skuId: 'SPLIT', qty: 1 }]);
    await expect(checkout(third0!, [{ skuId: 'SPLIT', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    expect(await rebalancer.rebalance('SPLIT', new Map([[0, 1]]))).toBe(0);
    // every bucket empty: sold out; a unit coming back to bucket 0 unannounced waits for the memory to pass
    expect(await elsewhere.releaseStock(last.order.orderId, second0!, 'cancel')).toBe(true);
    await expect(checkout(third0!, [{ skuId: 'SPLIT', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    const sold = await waitFor(async () => checkout(fourth0!, [{ skuId: 'SPLIT', qty: 1 }]).catch(() => null), { what: 'the returned unit on sale again', timeoutMs: 3 * MEMORY_MS });
    expect(sold.created).toBe(true);
    expect(await inventory.getSkuStock('SPLIT')).toEqual({ available: 0, reserved: 2, sold: 0 });
  });

  it('does not take too few units for one order for a sold-out SKU', async () => {
    await initSku('FEW', 1);
    await expect(checkout('ivy', [{ skuId: 'FEW', qty: 2 }])).rejects.toBeInstanceOf(OutOfStock);
    expect((await checkout('jon', [{ skuId: 'FEW', qty: 1 }])).created).toBe(true);
  });

  it('refuses an order with a remembered SKU on any of its lines', async () => {
    await initSku('GONE', 1);
    await initSku('PLENTY', 10);
    await checkout('kim', [{ skuId: 'GONE', qty: 1 }]);
    await expect(checkout('lee', [{ skuId: 'GONE', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    await expect(checkout('max', [{ skuId: 'PLENTY', qty: 1 }, { skuId: 'GONE', qty: 1 }])).rejects.toMatchObject({ skuId: 'GONE' });
    expect(await inventory.getSkuStock('PLENTY')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });
});

describe('SoldOutSkus', () => {
  it('forgets a SKU after its time, and remembers nothing when that time is 0', () => {
    const memory = new SoldOutSkus(250);
    memory.remember('A', 1_000, memory.returnsHeard());
    const lines = (...skuIds: string[]) => skuIds.map((skuId) => ({ skuId }));
    expect(memory.firstSoldOut(lines('B', 'A'), 1_249)).toBe('A');
    expect(memory.firstSoldOut(lines('A'), 1_250)).toBeUndefined();
    expect(memory.firstSoldOut(lines('A'), 1_100)).toBeUndefined();
    const off = new SoldOutSkus(0);
    off.remember('A', 1_000, off.returnsHeard());
    expect(off.firstSoldOut(lines('A'), 1_000)).toBeUndefined();
  });

  it('does not remember a finding read before units came back', () => {
    const memory = new SoldOutSkus(250);
    const lines = [{ skuId: 'A' }];
    const beforeReturn = memory.returnsHeard();
    memory.forget(['A']);
    memory.remember('A', 1_000, beforeReturn);
    expect(memory.firstSoldOut(lines, 1_000)).toBeUndefined();
    memory.remember('A', 1_000, memory.returnsHeard());
    expect(memory.firstSoldOut(lines, 1_000)).toBe('A');
  });
});

import { SALE_CHANGE_CUTOFF_MS, SaleAlreadyOpen, SaleEndTooClose, SaleNotActive } from '@orders/domain';
import { Inventory, StockBucketLost } from '@orders/stock';
import { reservationOf, waitFor } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';

const HOUR = 3600_000;
const BUCKETS = 4;

describe('changing a flash sale before it opens', () => {
  const prefix = testKeyPrefix('sale_changes');
  let redis: Redis;
  let inventory: Inventory;
  const now = Date.now();
  const soon = { startsAt: new Date(now + HOUR), endsAt: new Date(now + 2 * HOUR), perUserLimit: 2 };

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, TEST_TIMEOUTS);
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  const createSku = (skuId: string, sale: typeof soon | null) =>
    inventory.initSku({ skuId, available: 40, deduction: 'placement', saleStartsAt: sale?.startsAt ?? null, saleEndsAt: sale?.endsAt ?? null, perUserLimit: sale?.perUserLimit ?? 0, buckets: BUCKETS });

  /** Each bucket's sale as Redis sells by it. */
  const bucketSales = (skuId: string) =>
    Promise.all(Array.from({ length: BUCKETS }, (_, bucket) => redis.hmget(inventory.keys.sku(inventory.keys.bucketGroup(bucket), skuId), 'saleStartsAt', 'saleEndsAt', 'perUserLimit')));
  const asStored = (sale: typeof soon | null) => (sale ? [String(sale.startsAt.getTime()), String(sale.endsAt.getTime()), String(sale.perUserLimit)] : ['0', '0', '0']);

  /** Buyers whose carts run in every bucket of the SKU. */
  const buyersOfEveryBucket = () => {
    const found = new Map<number, string>();
    for (let i = 0; found.size < BUCKETS; i += 1) found.set(inventory.keys.bucketOf(`buyer-${i}`, BUCKETS), `buyer-${i}`);
    return [...found.values()];
  };

  it('postpones a sale in every bucket: checkouts are refused until the new opening, which they name', async () => {
    await createSku('POSTPONED', soon);
    const later = { startsAt: new Date(now + 3 * HOUR), endsAt: new Date(now + 4 * HOUR), perUserLimit: 1 };
    await inventory.changeSale({ skuId: 'POSTPONED', stockBuckets: BUCKETS }, later, soon);
    expect(await bucketSales('POSTPONED')).toEqual(Array(BUCKETS).fill(asStored(later)));
    for (const buyer of buyersOfEveryBucket()) {
      const refused = await inventory.reserveStock(reservationOf(buyer, [{ skuId: 'POSTPONED', qty: 1 }])).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(SaleNotActive);
      expect(refused).toMatchObject({ opensAt: later.startsAt });
    }
    // sent again (its answer lost): the same change, nothing refused
    await inventory.changeSale({ skuId: 'POSTPONED', stockBuckets: BUCKETS }, later, soon);
    expect(await inventory.getSkuStock('POSTPONED')).toEqual({ available: 40, reserved: 0, sold: 0 });
  });

  it('withdraws a sale not open yet: the SKU sells at once as a standard order, in every bucket', async () => {
    await createSku('WITHDRAWN', soon);
    await inventory.changeSale({ skuId: 'WITHDRAWN', stockBuckets: BUCKETS }, null, soon);
    expect(await bucketSales('WITHDRAWN')).toEqual(Array(BUCKETS).fill(asStored(null)));
    for (const buyer of buyersOfEveryBucket()) {
      const { order } = await inventory.reserveStock(reservationOf(buyer, [{ skuId: 'WITHDRAWN', qty: 3 }]));
      expect(order.type).toBe('standard');
    }
  });

  it('adds a sale to a SKU without one, and refuses one that would open within the cutoff', async () => {
    await createSku('PLAIN', null);
    await expect(inventory.changeSale({ skuId: 'PLAIN', stockBuckets: BUCKETS }, { ...soon, startsAt: new Date(now + 1000) }, null)).rejects.toBeInstanceOf(SaleAlreadyOpen);
    expect(await bucketSales('PLAIN')).toEqual(Array(BUCKETS).fill(asStored(null)));
    await inventory.changeSale({ skuId: 'PLAIN', stockBuckets: BUCKETS }, soon, null);
    expect(await bucketSales('PLAIN')).toEqual(Array(BUCKETS).fill(asStored(soon)));
  });

  it('never changes a sale that has opened, nor one that opens within the cutoff', async () => {
    const running = { startsAt: new Date(now - HOUR), endsAt: new Date(now + HOUR), perUserLimit: 2 };
    await createSku('RUNNING', running);
    const refused = await inventory.changeSale({ skuId: 'RUNNING', stockBuckets: BUCKETS }, soon, running).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SaleAlreadyOpen);
    expect(refused).toMatchObject({ skuId: 'RUNNING', opensAt: running.startsAt });
    await expect(inventory.changeSale({ skuId: 'RUNNING', stockBuckets: BUCKETS }, null, running)).rejects.toBeInstanceOf(SaleAlreadyOpen);
    expect(await bucketSales('RUNNING')).toEqual(Array(BUCKETS).fill(asStored(running)));

    const imminent = { startsAt: new Date(now + 2000), endsAt: new Date(now + HOUR), perUserLimit: 2 };
    await createSku('IMMINENT', imminent);
    await expect(inventory.changeSale({ skuId: 'IMMINENT', stockBuckets: BUCKETS }, soon, imminent)).rejects.toBeInstanceOf(SaleAlreadyOpen);
    expect(await bucketSales('IMMINENT')).toEqual(Array(BUCKETS).fill(asStored(imminent)));
  });

  it('replaces a sale once it has ended, its buyers\' counts gone with it; one a bucket had before they went with it, a day later', async () => {
    const endedAnHourAgo = { startsAt: new Date(now - 2 * HOUR), endsAt: new Date(now - HOUR), perUserLimit: 2 };
    await createSku('YESTERDAY', endedAnHourAgo);
    await inventory.changeSale({ skuId: 'YESTERDAY', stockBuckets: BUCKETS }, soon, endedAnHourAgo);
    expect(await bucketSales('YESTERDAY')).toEqual(Array(BUCKETS).fill(asStored(soon)));

    // a sale set before the counts went with their sale (no countsEndWithSale, nor countsBySale): they live a day past its end
    await createSku('OLDER', endedAnHourAgo);
    const olderBucket = inventory.keys.sku(inventory.keys.bucketGroup(2), 'OLDER');
    await redis.hdel(olderBucket, 'countsEndWithSale', 'countsBySale');
    await expect(inventory.changeSale({ skuId: 'OLDER', stockBuckets: BUCKETS }, soon, endedAnHourAgo)).rejects.toMatchObject({
      code: 'SALE_ALREADY_OPEN',
      opensAt: endedAnHourAgo.startsAt,
      changeableAt: new Date(endedAnHourAgo.endsAt.getTime() + 24 * HOUR),
    });
    expect(await bucketSales('OLDER')).toEqual(Array(BUCKETS).fill(asStored(endedAnHourAgo)));
    const lastWeek = { startsAt: new Date(now - 8 * 24 * HOUR), endsAt: new Date(now - 7 * 24 * HOUR), perUserLimit: 2 };
    await redis.hset(olderBucket, 'saleStartsAt', lastWeek.startsAt.getTime(), 'saleEndsAt', lastWeek.endsAt.getTime());
    await inventory.changeSale({ skuId: 'OLDER', stockBuckets: BUCKETS }, soon, lastWeek);
    expect(await redis.hmget(olderBucket, 'saleStartsAt', 'countsEndWithSale', 'countsBySale')).toEqual([String(soon.startsAt.getTime()), '1', '1']);
  });

  it('starts the next sale\'s counts from none, and gives a late release or cancellation of the last sale\'s orders back to no count of the next', async () => {
    const sku = { skuId: 'DAILY', stockBuckets: 1 };
    const today = { startsAt: new Date(Date.now() - HOUR), endsAt: new Date(Date.now() + 3000), perUserLimit: 3 };
    await inventory.initSku({ skuId: 'DAILY', available: 40, deduction: 'placement', saleStartsAt: today.startsAt, saleEndsAt: today.endsAt, perUserLimit: 3, buckets: 1 });
    const unpaid = await inventory.reserveStock(reservationOf('dora', [{ skuId: 'DAILY', qty: 2 }]));
    expect(unpaid.order.type).toBe('flash_sale');
    const paid = await inventory.reserveStock(reservationOf('dora', [{ skuId: 'DAILY', qty: 1 }]));
    expect(await inventory.commitStock(paid.order.orderId)).toMatchObject({ status: 'committed' });
    await expect(inventory.reserveStock(reservationOf('dora', [{ skuId: 'DAILY', qty: 1 }]))).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });

    await waitFor(async () => Date.now() > today.endsAt.getTime() + 100, { what: 'the end of today\'s sale', timeoutMs: 5_000 });
    // the stock repair, reading MySQL just before the end, puts back no count once it has passed
    const boughtKey = inventory.keys.bought(inventory.keys.groupOfOrder(paid.order.orderId), 'DAILY', 'dora');
    expect(await redis.exists(boughtKey)).toBe(0);
    expect(await inventory.restoreBoughtCounts({ skuId: 'DAILY', startsAt: today.startsAt, endsAt: today.endsAt }, [{ orderId: paid.order.orderId, userId: 'dora', qty: 1 }])).toEqual([]);
    expect(await redis.exists(boughtKey)).toBe(0);
    const tomorrow = { startsAt: new Date(Date.now() + SALE_CHANGE_CUTOFF_MS + 500), endsAt: new Date(Date.now() + HOUR), perUserLimit: 3 };
    await inventory.changeSale(sku, tomorrow, today);
    await waitFor(async () => Date.now() > tomorrow.startsAt.getTime() + 100, { what: 'the opening of the next sale', timeoutMs: 10_000 });
    // today's count went with today's sale: the buyer buys their limit again
    expect((await inventory.reserveStock(reservationOf('dora', [{ skuId: 'DAILY', qty: 3 }]))).order.type).toBe('flash_sale');
    // today's unpaid order expires late, in the next sale: its units go back on sale, not to the buyer's count in it
    expect(await inventory.releaseStock(unpaid.order.orderId, 'dora', 'expired')).toBe(true);
    // today's paid order is cancelled, its catalog read (whose limit it gives back) made before the next sale was set
    const cancelling = new Inventory(redis, prefix, TEST_TIMEOUTS, { limitGivenBackBy: async () => ({ userId: 'dora', skuIds: ['DAILY'], acceptedAt: new Date(today.endsAt.getTime() - 1000) }) });
    expect(await cancelling.restockStock(paid.order.orderId, 'cancel-paid', [{ skuId: 'DAILY', qty: 1 }])).toBe(true);
    await expect(inventory.reserveStock(reservationOf('dora', [{ skuId: 'DAILY', qty: 1 }]))).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    expect(await inventory.getSkuStock('DAILY')).toEqual({ available: 37, reserved: 3, sold: 0 });
  });

  it('ends a running sale early in every bucket; the next sale may follow at once, its buyers\' counts from none', async () => {
    const running = { startsAt: new Date(Date.now() - HOUR), endsAt: new Date(Date.now() + 2 * HOUR), perUserLimit: 2 };
    await createSku('ENDED-EARLY', running);
    const buyers = buyersOfEveryBucket();
    const first = await Promise.all(buyers.map((buyer) => inventory.reserveStock(reservationOf(buyer, [{ skuId: 'ENDED-EARLY', qty: 2 }]))));
    expect(first.map(({ order }) => order.type)).toEqual(Array(BUCKETS).fill('flash_sale'));
    const endsAt = new Date(Date.now() + 500 + SALE_CHANGE_CUTOFF_MS);
    await inventory.endSale({ skuId: 'ENDED-EARLY', stockBuckets: BUCKETS }, endsAt, running);
    const ended = { ...running, endsAt };
    expect(await bucketSales('ENDED-EARLY')).toEqual(Array(BUCKETS).fill(asStored(ended)));
    // sent again (its answer lost): the same end, nothing refused
    await inventory.endSale({ skuId: 'ENDED-EARLY', stockBuckets: BUCKETS }, endsAt, running);
    // the former end is kept, for the counts written from now on (below: it holds no next sale up)
    const counted = await Promise.all(Array.from({ length: BUCKETS }, (_, bucket) => redis.hget(inventory.keys.sku(inventory.keys.bucketGroup(bucket), 'ENDED-EARLY'), 'countedUntil')));
    expect(counted).toEqual(Array(BUCKETS).fill(String(running.endsAt.getTime())));
    // still running until the new end: the limit holds
    for (const buyer of buyers) await expect(inventory.reserveStock(reservationOf(buyer, [{ skuId: 'ENDED-EARLY', qty: 1 }]))).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    // not over before the new end
    await expect(inventory.changeSale({ skuId: 'ENDED-EARLY', stockBuckets: BUCKETS }, soon, ended)).rejects.toMatchObject({ code: 'SALE_ALREADY_OPEN', changeableAt: endsAt });

    // over at the new end: the buyers' counts, which live to the former end their checkouts saw, are none of the next sale's
    await waitFor(async () => Date.now() > endsAt.getTime() + 100, { what: 'the early end', timeoutMs: 10_000 });
    const next = { startsAt: new Date(Date.now() + SALE_CHANGE_CUTOFF_MS + 500), endsAt: new Date(Date.now() + HOUR), perUserLimit: 2 };
    await inventory.changeSale({ skuId: 'ENDED-EARLY', stockBuckets: BUCKETS }, next, ended);
    expect(await bucketSales('ENDED-EARLY')).toEqual(Array(BUCKETS).fill(asStored(next)));
    await waitFor(async () => Date.now() > next.startsAt.getTime() + 100, { what: 'the opening of the next sale', timeoutMs: 10_000 });
    const again = await Promise.all(buyers.map((buyer) => inventory.reserveStock(reservationOf(buyer, [{ skuId: 'ENDED-EARLY', qty: 2 }]))));
    expect(again.map(({ order }) => order.type)).toEqual(Array(BUCKETS).fill('flash_sale'));
    // the ended sale's orders, expired or cancelled now, give nothing to the next sale's counts
    for (const [i, buyer] of buyers.entries()) expect(await inventory.releaseStock(first[i]!.order.orderId, buyer, 'expired')).toBe(true);
    for (const buyer of buyers) await expect(inventory.reserveStock(reservationOf(buyer, [{ skuId: 'ENDED-EARLY', qty: 1 }]))).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    // the next sale's own orders do: one expires, and its buyer buys again
    expect(await inventory.releaseStock(again[0]!.order.orderId, buyers[0]!, 'expired')).toBe(true);
    expect((await inventory.reserveStock(reservationOf(buyers[0]!, [{ skuId: 'ENDED-EARLY', qty: 2 }]))).order.type).toBe('flash_sale');
  });

  it('keeps the limit of a sale whose early end is undone (the catalog\'s sale put back): counts written meanwhile live to its end', async () => {
    const running = { startsAt: new Date(Date.now() - HOUR), endsAt: new Date(Date.now() + 2 * HOUR), perUserLimit: 1 };
    await inventory.initSku({ skuId: 'UNDONE', available: 40, deduction: 'placement', saleStartsAt: running.startsAt, saleEndsAt: running.endsAt, perUserLimit: 1, buckets: 1 });
    const earlyEnd = new Date(Date.now() + HOUR);
    await inventory.endSale({ skuId: 'UNDONE', stockBuckets: 1 }, earlyEnd, running);
    // a buyer checks out in the sale that ends early now
    expect((await inventory.reserveStock(reservationOf('uma', [{ skuId: 'UNDONE', qty: 1 }]))).order.type).toBe('flash_sale');
    // the end is undone (its catalog commit failed, and the stock check puts the catalog's sale back): the sale runs to its end
    await inventory.putCatalogSale({ skuId: 'UNDONE', stockBuckets: 1 }, running);
    const count = inventory.keys.bought(inventory.keys.bucketGroup(0), 'UNDONE', 'uma');
    // the buyer's count lives as long as the sale, not to the end undone: past it, the limit still holds
    expect(Date.now() + (await redis.pttl(count))).toBeGreaterThan(running.endsAt.getTime() - 60_000);
    await expect(inventory.reserveStock(reservationOf('uma', [{ skuId: 'UNDONE', qty: 1 }]))).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
  });

  it('takes a bare count (an earlier release\'s) as the running sale\'s, writes bare counts where the sale was set before counts named it, and has the repair replace a count of an earlier sale', async () => {
    const running = { startsAt: new Date(now - HOUR), endsAt: new Date(now + HOUR), perUserLimit: 2 };
    await inventory.initSku({ skuId: 'BARE', available: 40, deduction: 'placement', saleStartsAt: running.startsAt, saleEndsAt: running.endsAt, perUserLimit: 2, buckets: 1 });
    const group = inventory.keys.bucketGroup(0);
    const counted = (buyer: string) => redis.get(inventory.keys.bought(group, 'BARE', buyer));
    // a checkout of the earlier release counted one unit, as a bare number
    await redis.set(inventory.keys.bought(group, 'BARE', 'bo'), '1', 'PXAT', running.endsAt.getTime());
    await inventory.reserveStock(reservationOf('bo', [{ skuId: 'BARE', qty: 1 }]));
    expect(await counted('bo')).toBe(`${running.startsAt.getTime()}:2`);
    await expect(inventory.reserveStock(reservationOf('bo', [{ skuId: 'BARE', qty: 1 }]))).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });

    // a sale set by the earlier release: its counts stay bare numbers, which that release's checkouts read, and go back as such
    await redis.hdel(inventory.keys.sku(group, 'BARE'), 'countsBySale');
    const unpaid = await inventory.reserveStock(reservationOf('cy', [{ skuId: 'BARE', qty: 2 }]));
    expect(await counted('cy')).toBe('2');
    expect(await inventory.releaseStock(unpaid.order.orderId, 'cy', 'expired')).toBe(true);
    expect(await counted('cy')).toBe('0');

    // the stock repair: a count of an earlier sale (ended early, living to its former end) is none of this one's
    const paid = await inventory.reserveStock(reservationOf('di', [{ skuId: 'BARE', qty: 1 }]));
    const earlier = running.startsAt.getTime() - 24 * HOUR;
    await redis.set(inventory.keys.bought(group, 'BARE', 'di'), `${earlier}:2`, 'PXAT', running.endsAt.getTime());
    const held = [{ orderId: paid.order.orderId, userId: 'di', qty: 1 }];
    expect(await inventory.restoreBoughtCounts({ skuId: 'BARE', ...running }, held)).toHaveLength(1);
    expect(await counted('di')).toBe(`${running.startsAt.getTime()}:1`);
    expect(await inventory.restoreBoughtCounts({ skuId: 'BARE', ...running }, held)).toEqual([]);
  });

  it('keeps a sale set before counts named their sale until its former end when ended early: its buyers\' counts live to then', async () => {
    // ended early, its former end kept where the counts are bare numbers
    const running = { startsAt: new Date(now - HOUR), endsAt: new Date(now + 2 * HOUR), perUserLimit: 2 };
    await createSku('BARE-ENDED-EARLY', running);
    const bareBucket = inventory.keys.sku(inventory.keys.bucketGroup(0), 'BARE-ENDED-EARLY');
    await redis.hdel(bareBucket, 'countsBySale');
    await inventory.endSale({ skuId: 'BARE-ENDED-EARLY', stockBuckets: BUCKETS }, new Date(Date.now() + HOUR), running);
    expect(await redis.hget(bareBucket, 'countedUntil')).toBe(String(running.endsAt.getTime()));
    // every bucket keeps it for the counts written from now on; only where they are bare numbers does it hold the next sale up (below)
    expect(await redis.hget(inventory.keys.sku(inventory.keys.bucketGroup(1), 'BARE-ENDED-EARLY'), 'countedUntil')).toBe(String(running.endsAt.getTime()));

    const lastSale = { startsAt: new Date(now - 30 * HOUR), endsAt: new Date(now - 25 * HOUR), perUserLimit: 2 };
    await createSku('ENDED-EARLY-OLDER', lastSale);
    const key = inventory.keys.sku(inventory.keys.bucketGroup(0), 'ENDED-EARLY-OLDER');
    // ended early an hour ago, its counts (bare numbers) going at its former end, 2 hours from now
    await redis.hdel(key, 'countsBySale');
    await redis.hset(key, 'countedUntil', now + 2 * HOUR);
    await expect(inventory.changeSale({ skuId: 'ENDED-EARLY-OLDER', stockBuckets: 1 }, soon, lastSale)).rejects.toMatchObject({ code: 'SALE_ALREADY_OPEN', changeableAt: new Date(now + 2 * HOUR) });
    await redis.hset(key, 'countedUntil', now - 25 * HOUR);
    await inventory.changeSale({ skuId: 'ENDED-EARLY-OLDER', stockBuckets: 1 }, soon, lastSale);
    expect(await redis.hmget(key, 'saleStartsAt', 'saleEndsAt', 'perUserLimit', 'countedUntil', 'countsBySale')).toEqual([...asStored(soon), null, '1']);
  });

  it('never moves an end within the cutoff, nor to one, and puts the old end back on the buckets it changed', async () => {
    const closing = { startsAt: new Date(now - HOUR), endsAt: new Date(Date.now() + 2000), perUserLimit: 1 };
    await createSku('CLOSING', closing);
    await expect(inventory.endSale({ skuId: 'CLOSING', stockBuckets: BUCKETS }, new Date(Date.now() + 1000), closing)).rejects.toBeInstanceOf(SaleEndTooClose);
    expect(await bucketSales('CLOSING')).toEqual(Array(BUCKETS).fill(asStored(closing)));

    const running = { startsAt: new Date(now - HOUR), endsAt: new Date(now + HOUR), perUserLimit: 1 };
    await createSku('ENDS-SOON', running);
    await expect(inventory.endSale({ skuId: 'ENDS-SOON', stockBuckets: BUCKETS }, new Date(Date.now() + 1000), running)).rejects.toBeInstanceOf(SaleEndTooClose);
    // one bucket's end is close (its node's clock ahead, or written so by hand): the end is refused there, and undone elsewhere
    await redis.hset(inventory.keys.sku(inventory.keys.bucketGroup(3), 'ENDS-SOON'), 'saleEndsAt', Date.now() + 1000);
    const refused = await inventory.endSale({ skuId: 'ENDS-SOON', stockBuckets: BUCKETS }, new Date(Date.now() + HOUR / 2), running).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'SALE_END_TOO_CLOSE', skuId: 'ENDS-SOON' });
    const sales = await bucketSales('ENDS-SOON');
    expect(sales.filter((_, bucket) => bucket !== 3)).toEqual(Array(BUCKETS - 1).fill(asStored(running)));
    const counted = await Promise.all(Array.from({ length: BUCKETS - 1 }, (_, bucket) => redis.hget(inventory.keys.sku(inventory.keys.bucketGroup(bucket), 'ENDS-SOON'), 'countedUntil')));
    expect(counted).toEqual(Array(BUCKETS - 1).fill(null));
  });

  it('puts the old sale back on the buckets it changed when another refuses: no bucket sells by a sale the catalog does not have', async () => {
    await createSku('SPLIT', soon);
    // one bucket's sale opened (its node's clock ahead, or written so by hand): the change is refused there
    const opened = new Date(now - 1000);
    await redis.hset(inventory.keys.sku(inventory.keys.bucketGroup(2), 'SPLIT'), 'saleStartsAt', opened.getTime());
    const later = { startsAt: new Date(now + 3 * HOUR), endsAt: new Date(now + 4 * HOUR), perUserLimit: 1 };
    const refused = await inventory.changeSale({ skuId: 'SPLIT', stockBuckets: BUCKETS }, later, soon).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'SALE_ALREADY_OPEN', opensAt: opened });
    const sales = await bucketSales('SPLIT');
    expect(sales.filter((_, bucket) => bucket !== 2)).toEqual(Array(BUCKETS - 1).fill(asStored(soon)));
  });

  it('waits for the stock repair while Redis has lost a bucket, changing none', async () => {
    await createSku('LOST', soon);
    await redis.del(inventory.keys.sku(inventory.keys.bucketGroup(1), 'LOST'));
    const later = { startsAt: new Date(now + 3 * HOUR), endsAt: new Date(now + 4 * HOUR), perUserLimit: 1 };
    const refused = await inventory.changeSale({ skuId: 'LOST', stockBuckets: BUCKETS }, later, soon).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StockBucketLost);
    expect(refused).toMatchObject({ buckets: [1] });
    const sales = await bucketSales('LOST');
    expect(sales.filter((_, bucket) => bucket !== 1)).toEqual(Array(BUCKETS - 1).fill(asStored(soon)));
    expect(await redis.exists(inventory.keys.sku(inventory.keys.bucketGroup(1), 'LOST'))).toBe(0);
  });
});

import { BucketedSkuSoldAlone, OutOfStock } from '@orders/domain';
import { Inventory, StockKeys, StockRebalancer, splitStock, type StockTransfer } from '@orders/stock';
import { buyerAddress } from '@orders/testing';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HOUR = 3600_000;

describe('stock buckets and the transfers between them', () => {
  const prefix = `t:buckets_${randomBytes(4).toString('hex')}:`;
  // the scripts expire keys at times derived from `now` on Redis's own clock, so `now` is today
  const now = new Date();
  let redis: Redis;
  let inventory: Inventory;
  const recorded: StockTransfer[] = [];
  let rebalancer: StockRebalancer;
  let n = 0;

  beforeAll(async () => {
    redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
    inventory = new Inventory(redis, prefix, { standardPaymentTimeoutMs: 30 * 60_000, flashSalePaymentTimeoutMs: 10 * 60_000, idempotencyTtlMs: 24 * HOUR });
    rebalancer = new StockRebalancer({
      inventory,
      recordTransfer: async (transfer) => void recorded.push(transfer),
      clock: () => now,
      onError: (error) => {
        throw error;
      },
    });
    const sale = { deduction: 'placement' as const, saleStartsAt: new Date(now.getTime() - HOUR), saleEndsAt: new Date(now.getTime() + HOUR), perUserLimit: 1 };
    await inventory.initSku({ skuId: 'HOT', available: 10, buckets: 4, ...sale });
    await inventory.initSku({ skuId: 'SPLIT', available: 10, buckets: 4, ...sale });
    await inventory.initSku({ skuId: 'MOVE', available: 9, buckets: 3, ...sale });
    await inventory.initSku({ skuId: 'PLAIN', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const reserve = (userId: string, items: Array<{ skuId: string; qty: number }>) =>
    inventory.reserveStock({
      orderId: `ORDER${String(++n).padStart(21, '0')}`,
      userId,
      idempotencyKey: `k${n}`,
      bodyHash: `h${n}`,
      requestedType: null,
      items,
      payload: { address: buyerAddress, couponCode: null },
      now,
    });
  const available = async (skuId: string) => (await inventory.bucketStock(skuId))!.map((bucket) => bucket.available);

  it('splits 10 units over 4 buckets as 3, 3, 2, 2', async () => {
    expect(splitStock(10, 4)).toEqual([3, 3, 2, 2]);
    expect(await available('HOT')).toEqual([3, 3, 2, 2]);
    expect(await inventory.getSkuStock('HOT')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  it("reserves from the buyer's own bucket and names the bucket in the order id", async () => {
    const keys = new StockKeys(prefix);
    const buyer = Array.from({ length: 50 }, (_, i) => `buyer-${i}`).find((id) => keys.bucketOf(id, 4) === 2)!;
    const { order } = await reserve(buyer, [{ skuId: 'HOT', qty: 1 }]);
    expect(order.orderId).toMatch(/^ORDER0+\d+-g2$/);
    expect(keys.groupOfOrder(order.orderId)).toBe('{g2}');
    expect(await available('HOT')).toEqual([3, 3, 1, 2]);
    expect(await inventory.findAcceptedOrder(order.orderId)).toMatchObject({ orderId: order.orderId });
    expect(await inventory.releaseStock(order.orderId, buyer, 'expired')).toBe(true);
    expect(await available('HOT')).toEqual([3, 3, 2, 2]);
    // an order of a SKU that is not split keeps a plain id, as every order did before buckets
    expect((await reserve(buyer, [{ skuId: 'PLAIN', qty: 1 }])).order.orderId).toMatch(/^ORDER0+\d+$/);
  });

  it('refuses an order that mixes a SKU sold in buckets with one that is not', async () => {
    await expect(reserve('mixer', [{ skuId: 'HOT', qty: 1 }, { skuId: 'PLAIN', qty: 1 }])).rejects.toBeInstanceOf(BucketedSkuSoldAlone);
    await expect(reserve('mixer', [{ skuId: 'HOT', qty: 1 }, { skuId: 'MOVE', qty: 1 }])).rejects.toBeInstanceOf(BucketedSkuSoldAlone);
  });

  it('takes and gives once per transfer id, however often either side runs', async () => {
    const transfer = { transferId: 'tr-1', skuId: 'SPLIT', from: 0, to: 3, qty: 2 };
    expect(await inventory.takeForTransfer(transfer, now)).toBe(2);
    expect(await inventory.takeForTransfer(transfer, now)).toBe(2);
    expect(await available('SPLIT')).toEqual([1, 3, 2, 2]);
    // taken and not yet given: open, so a crash here is finished later
    expect(await inventory.openTransfers(now)).toEqual([{ ...transfer, given: false }]);
    expect(await inventory.giveForTransfer(transfer)).toBe(true);
    expect(await inventory.giveForTransfer(transfer)).toBe(false);
    expect(await available('SPLIT')).toEqual([1, 3, 2, 4]);
    expect(await inventory.openTransfers(now)).toEqual([{ ...transfer, given: true }]);
    await inventory.closeTransfer(transfer);
    expect(await inventory.openTransfers(now)).toEqual([]);
    // a repeat after closing changes nothing either
    expect(await inventory.takeForTransfer(transfer, now)).toBe(2);
    expect(await inventory.giveForTransfer(transfer)).toBe(false);
    expect(await inventory.getSkuStock('SPLIT')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  it('never takes more than the bucket has available', async () => {
    const transfer = { transferId: 'tr-2', skuId: 'SPLIT', from: 0, to: 1, qty: 5 };
    expect(await inventory.takeForTransfer(transfer, now)).toBe(1);
    expect(await inventory.takeForTransfer({ transferId: 'tr-3', skuId: 'SPLIT', from: 0, to: 1, qty: 5 }, now)).toBe(0);
    await rebalancer.completeOpenTransfers(0);
    expect(await available('SPLIT')).toEqual([0, 4, 2, 4]);
    expect(await inventory.openTransfers(now)).toEqual([]);
    expect(recorded.filter((transfer) => transfer.transferId === 'tr-2')).toEqual([{ ...transfer, qty: 1 }]);
  });

  it('finishes a transfer cut short between its two sides exactly once', async () => {
    const transfer = { transferId: 'tr-4', skuId: 'SPLIT', from: 1, to: 0, qty: 2 };
    await inventory.takeForTransfer(transfer, now);
    expect(await inventory.getSkuStock('SPLIT')).toEqual({ available: 8, reserved: 0, sold: 0 });
    expect(await rebalancer.completeOpenTransfers(0)).toBe(2);
    expect(await rebalancer.completeOpenTransfers(0)).toBe(0);
    expect(await available('SPLIT')).toEqual([2, 2, 2, 4]);
  });

  it('refills an empty bucket from the fullest so every unit can be sold', async () => {
    const keys = new StockKeys(prefix);
    const buyers = Array.from({ length: 200 }, (_, i) => `move-${i}`);
    const inBucket0 = buyers.filter((id) => keys.bucketOf(id, 3) === 0);
    // bucket 0's buyers empty it: the 4th hears OUT_OF_STOCK while buckets 1 and 2 still hold 6 units
    for (const buyer of inBucket0.slice(0, 3)) await reserve(buyer, [{ skuId: 'MOVE', qty: 1 }]);
    await expect(reserve(inBucket0[3]!, [{ skuId: 'MOVE', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    expect(await available('MOVE')).toEqual([0, 3, 3]);
    // the reconciler's pass, which knows of no buyer, leaves each bucket a unit
    expect(await rebalancer.rebalance('MOVE')).toBe(1);
    expect(await available('MOVE')).toEqual([1, 2, 3]);
    // each OUT_OF_STOCK in bucket 0 asks for units there, down to the last one of the others
    for (const buyer of inBucket0.slice(3)) {
      const sold = await reserve(buyer, [{ skuId: 'MOVE', qty: 1 }]).catch(() => null);
      if (!sold) await rebalancer.rebalance('MOVE', [0]);
    }
    expect(await available('MOVE')).toEqual([0, 0, 0]);
    expect(await inventory.getSkuStock('MOVE')).toEqual({ available: 0, reserved: 9, sold: 0 });
    expect(await inventory.openTransfers(now)).toEqual([]);
  });
});

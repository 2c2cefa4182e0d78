import { Inventory, StockBucketLost, StockRebalancer, StockScriptCall, StockSets, type FinishedTransfer } from '@orders/stock';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';
import { interceptingScript } from './support/intercepted-script.js';

describe("a merchant's stock set whose Redis answer never came", () => {
  const prefix = testKeyPrefix('stock_sets');
  const rules = { deduction: 'placement' as const, saleStartsAt: null, saleEndsAt: null, perUserLimit: 0, buckets: 4 };
  let redis: Redis;
  let inventory: Inventory;
  /** The ledger's set rows, by reference: what the catalog writes in MySQL, once per ref. */
  const ledger = new Map<string, number>();
  const record = async (_skuId: string, stock: number, ref: string, side: { set: () => Promise<number | null> }) => {
    if (ledger.has(ref)) return true;
    const previous = await side.set();
    if (previous === null) return false;
    ledger.set(ref, stock - previous);
    return true;
  };
  const stockSetsOn = (on: Inventory) => new StockSets({ inventory: on, record, clock: () => new Date() });
  const noTakeBack = () => {
    throw new Error('nothing was to be taken back');
  };

  /**
   * An Inventory on the same connection whose `script` call on one bucket of a SKU goes
   * unanswered: it fails as ioredis fails a command past its commandTimeout, and Redis gets it
   * only when the test calls `sendLate`.
   */
  const unanswered = (script: 'startStockSet' | 'setStock', skuId: string, bucket: number) => {
    const held: StockScriptCall[] = [];
    const connection = interceptingScript(redis, prefix, { script, skuId, bucket }, (command) => {
      held.push(command);
      command.reject(new Error('Command timed out'));
    });
    return {
      inventory: new Inventory(connection, prefix, TEST_TIMEOUTS),
      sendLate: async () => {
        for (const command of held.splice(0)) {
          const [, count, ...rest] = command.args.map(String);
          const again = new StockScriptCall(command.scriptName, rest.slice(0, Number(count)), rest.slice(Number(count)));
          void redis.sendCommand(again);
          await again.promise;
        }
      },
    };
  };
  const available = async (skuId: string) => (await inventory.bucketStock(skuId))!.map((bucket) => bucket.available);
  /** Stock sets whose ledger row MySQL refuses: each set is taken back in Redis, then fails. */
  const refusedByMySql = () =>
    new StockSets({
      inventory,
      record: async (_skuId, _stock, _ref, side) => {
        await side.takeBack!((await side.set())!);
        throw new Error('MySQL refused the ledger row');
      },
      clock: () => new Date(),
    });

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, TEST_TIMEOUTS);
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  it('finishes a set that reached 3 of 4 buckets from what bucket 0 recorded, and then gives the units a transfer took from bucket 0 meanwhile', async () => {
    await inventory.initSku({ skuId: 'HALF', available: 40, ...rules });
    const lost = unanswered('setStock', 'HALF', 2);
    await expect(stockSetsOn(lost.inventory).set('HALF', 20, 'half-1', noTakeBack)).rejects.toThrow('Command timed out');
    expect(await available('HALF')).toEqual([5, 5, 10, 5]);
    expect(ledger.has('half-1')).toBe(false);

    // the rebalancer takes 2 units off bucket 0, in the set's generation, for bucket 2, still in the one before
    const recorded: FinishedTransfer[] = [];
    const rebalancer = new StockRebalancer({ inventory, recordTransfer: async (transfer) => void recorded.push(transfer), clock: () => new Date(), onError: () => undefined });
    const taken = await inventory.takeForTransfer({ transferId: 'half-move', skuId: 'HALF', from: 0, to: 2, qty: 2 }, new Date());
    expect(await inventory.giveForTransfer(taken)).toBe('waiting');

    // the stock check's run: the set is finished, and the transfer given
    expect(await stockSetsOn(inventory).finishOpen(0, (error) => { throw error; })).toBe(1);
    expect(ledger.get('half-1')).toBe(20 - 40);
    expect(await inventory.openStockSet('HALF')).toBeNull();
    expect(await rebalancer.completeOpenTransfers(0)).toBe(2);
    expect(await available('HALF')).toEqual([3, 5, 7, 5]);
    expect(recorded).toEqual([{ transferId: 'half-move', skuId: 'HALF', from: 0, to: 2, qty: 2, voided: false }]);

    // the lost command reaching Redis at last changes nothing: bucket 2 is in its generation already
    await lost.sendLate();
    expect(await inventory.getSkuStock('HALF')).toEqual({ available: 20, reserved: 0, sold: 0 });
    expect(await stockSetsOn(inventory).finishOpen(0, (error) => { throw error; })).toBe(0);
  });

  it('refuses a set while Redis has lost a bucket other than 0, or left it counters without their rules: measured without it, its units would go back on sale on top of the set', async () => {
    await inventory.initSku({ skuId: 'GONE', available: 40, ...rules });
    await redis.del(inventory.keys.sku(inventory.keys.bucketGroup(2), 'GONE'));
    await expect(stockSetsOn(inventory).set('GONE', 20, 'gone-1', noTakeBack)).rejects.toBeInstanceOf(StockBucketLost);
    await inventory.initSku({ skuId: 'BARE', available: 40, ...rules });
    await redis.hdel(inventory.keys.sku(inventory.keys.bucketGroup(3), 'BARE'), 'deduction');
    await expect(stockSetsOn(inventory).set('BARE', 20, 'bare-1', noTakeBack)).rejects.toMatchObject({ skuId: 'BARE', buckets: [3] });
    expect([ledger.has('gone-1'), ledger.has('bare-1'), await inventory.openStockSet('GONE'), await inventory.openStockSet('BARE')]).toEqual([false, false, null, null]);
    expect(await available('BARE')).toEqual([10, 10, 10, 10]);

    // the repair recreates bucket 2 and puts back what the ledger counts in it; the set then goes through
    expect(await inventory.recreateLostBuckets({ skuId: 'GONE', ...rules })).toEqual([2]);
    await inventory.correctCounters('GONE', { available: 10, reserved: 0, sold: 0 }, { into: 2 });
    expect(await stockSetsOn(inventory).set('GONE', 20, 'gone-2', noTakeBack)).toBe('set');
    expect([await available('GONE'), ledger.get('gone-2')]).toEqual([[5, 5, 5, 5], 20 - 40]);
  });

  it('leaves open a set whose bucket Redis lost before the set reached it, until the repair has recreated the bucket in the generation before the set; finished then, it counts what the bucket held', async () => {
    await inventory.initSku({ skuId: 'WAIT', available: 40, ...rules });
    const lost = unanswered('setStock', 'WAIT', 2);
    await expect(stockSetsOn(lost.inventory).set('WAIT', 20, 'wait-1', noTakeBack)).rejects.toThrow('Command timed out');
    await redis.del(inventory.keys.sku(inventory.keys.bucketGroup(2), 'WAIT'));

    const failed: unknown[] = [];
    expect(await stockSetsOn(inventory).finishOpen(0, (error) => failed.push(error))).toBe(0);
    expect(failed).toEqual([expect.any(StockBucketLost)]);
    expect([ledger.has('wait-1'), (await inventory.openStockSet('WAIT'))?.ref]).toEqual([false, 'wait-1']);
    // the merchant's next set waits for it too
    await expect(stockSetsOn(inventory).set('WAIT', 30, 'wait-2', noTakeBack)).rejects.toBeInstanceOf(StockBucketLost);

    // the repair: bucket 2 back in generation 0, the set's 1 still to reach it, with the 10 the ledger counts in it
    expect(await inventory.recreateLostBuckets({ skuId: 'WAIT', ...rules })).toEqual([2]);
    await inventory.correctCounters('WAIT', { available: 10, reserved: 0, sold: 0 }, { into: 2 });
    expect(await stockSetsOn(inventory).finishOpen(0, (error) => { throw error; })).toBe(1);
    expect([await available('WAIT'), ledger.get('wait-1'), await inventory.openStockSet('WAIT')]).toEqual([[5, 5, 5, 5], 20 - 40, null]);
    await lost.sendLate();
    expect(await inventory.getSkuStock('WAIT')).toEqual({ available: 20, reserved: 0, sold: 0 });
  });

  it('refuses a set that reaches Redis after a later set of the SKU: the later one is what sells', async () => {
    await inventory.initSku({ skuId: 'LATE', available: 40, ...rules });
    const late = unanswered('startStockSet', 'LATE', 0);
    await expect(stockSetsOn(late.inventory).set('LATE', 20, 'late-1', noTakeBack)).rejects.toThrow('Command timed out');
    expect(await stockSetsOn(inventory).set('LATE', 30, 'late-2', noTakeBack)).toBe('set');

    await late.sendLate();
    expect(await available('LATE')).toEqual([8, 8, 7, 7]);
    expect(await inventory.openStockSet('LATE')).toBeNull();
    expect([ledger.has('late-1'), ledger.get('late-2')]).toEqual([false, 30 - 40]);
  });

  it('sets again a set MySQL refused and Redis took back, when the merchant sends it again under its Idempotency-Key (the same ref)', async () => {
    await inventory.initSku({ skuId: 'BACK', available: 40, ...rules });
    const refused = refusedByMySql();
    await expect(refused.set('BACK', 20, 'back-keyed', () => undefined)).rejects.toThrow('MySQL refused the ledger row');
    expect([await inventory.getSkuStock('BACK'), await inventory.openStockSet('BACK')]).toEqual([{ available: 40, reserved: 0, sold: 0 }, null]);

    expect(await stockSetsOn(inventory).set('BACK', 20, 'back-keyed', noTakeBack)).toBe('set');
    expect([await available('BACK'), ledger.get('back-keyed')]).toEqual([[5, 5, 5, 5], 20 - 40]);
    expect(await stockSetsOn(inventory).set('BACK', 20, 'back-keyed', noTakeBack)).toBe('recorded');
  });

  it('keeps on sale the units transfers carried across a set MySQL refused and Redis took back, given before the take-back or after it: none voided', async () => {
    await inventory.initSku({ skuId: 'CARRY', available: 40, ...rules });
    const recorded: FinishedTransfer[] = [];
    const rebalancer = new StockRebalancer({ inventory, recordTransfer: async (transfer) => void recorded.push(transfer), clock: () => new Date(), onError: () => undefined });
    // two transfers on their way as the merchant sets 20: the set counts 34 before it, without their 6 units
    const after = await inventory.takeForTransfer({ transferId: 'carry-after', skuId: 'CARRY', from: 1, to: 2, qty: 4 }, new Date());
    const between = await inventory.takeForTransfer({ transferId: 'carry-between', skuId: 'CARRY', from: 3, to: 0, qty: 2 }, new Date());
    let givenBetween: unknown;
    const refused = new StockSets({
      inventory,
      record: async (_skuId, _stock, _ref, side) => {
        const previous = (await side.set())!;
        givenBetween = await inventory.giveForTransfer(between);
        await side.takeBack!(previous);
        throw new Error('MySQL refused the ledger row');
      },
      clock: () => new Date(),
    });
    await expect(refused.set('CARRY', 20, 'carry-1', () => undefined)).rejects.toThrow('MySQL refused the ledger row');
    expect([givenBetween, await inventory.openStockSet('CARRY')]).toEqual(['waiting', null]);

    // the set never was: both transfers' units go where they were going, nothing lost from sale
    expect(await inventory.giveForTransfer(after)).toBe('given');
    expect(await rebalancer.completeOpenTransfers(0)).toBe(2);
    expect(recorded.map(({ transferId, voided }) => [transferId, voided]).sort()).toEqual([['carry-after', false], ['carry-between', false]]);
    expect(await inventory.getSkuStock('CARRY')).toEqual({ available: 40, reserved: 0, sold: 0 });

    // a set MySQL keeps voids what it overrode, as before
    const later = await inventory.takeForTransfer({ transferId: 'carry-later', skuId: 'CARRY', from: 2, to: 3, qty: 5 }, new Date());
    expect(await stockSetsOn(inventory).set('CARRY', 20, 'carry-2', noTakeBack)).toBe('set');
    expect(await inventory.giveForTransfer(later)).toBe('voided');
    expect(await inventory.getSkuStock('CARRY')).toEqual({ available: 20, reserved: 0, sold: 0 });
  });

  it('gives, after a set MySQL refused and Redis took back, the transfer carried across it into a bucket Redis lost since and the repair recreated', async () => {
    await inventory.initSku({ skuId: 'CARRY-LOST', available: 40, ...rules });
    const taken = await inventory.takeForTransfer({ transferId: 'carry-lost', skuId: 'CARRY-LOST', from: 1, to: 2, qty: 4 }, new Date());
    const refused = refusedByMySql();
    await expect(refused.set('CARRY-LOST', 20, 'carry-lost-1', () => undefined)).rejects.toThrow('MySQL refused the ledger row');
    // taken back to the 36 the buckets held, the transfer's 4 units on their way
    expect(await available('CARRY-LOST')).toEqual([21, 5, 5, 5]);

    // Redis loses bucket 2; the repair recreates it and puts back the 5 it held
    await redis.del(inventory.keys.sku(inventory.keys.bucketGroup(2), 'CARRY-LOST'));
    expect(await inventory.recreateLostBuckets({ skuId: 'CARRY-LOST', ...rules })).toEqual([2]);
    await inventory.correctCounters('CARRY-LOST', { available: 5, reserved: 0, sold: 0 }, { into: 2 });

    // the set never was: the transfer's 4 units reach bucket 2, none lost from sale
    expect(await inventory.giveForTransfer(taken)).toBe('given');
    expect(await inventory.getSkuStock('CARRY-LOST')).toEqual({ available: 40, reserved: 0, sold: 0 });
  });

  it('finishes a set that reached bucket 0 alone before the next set of the SKU starts, so both are in the ledger', async () => {
    await inventory.initSku({ skuId: 'NEXT', available: 40, ...rules });
    const late = unanswered('startStockSet', 'NEXT', 0);
    await expect(stockSetsOn(late.inventory).set('NEXT', 20, 'next-1', noTakeBack)).rejects.toThrow('Command timed out');
    await late.sendLate();
    expect(await available('NEXT')).toEqual([5, 10, 10, 10]);

    expect(await stockSetsOn(inventory).set('NEXT', 24, 'next-2', noTakeBack)).toBe('set');
    expect(await available('NEXT')).toEqual([6, 6, 6, 6]);
    expect([ledger.get('next-1'), ledger.get('next-2')]).toEqual([20 - 40, 24 - 20]);
    expect(await inventory.openStockSet('NEXT')).toBeNull();
  });
});

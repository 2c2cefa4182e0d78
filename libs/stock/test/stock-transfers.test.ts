import { BucketedSkuSoldAlone, OutOfStock } from '@orders/domain';
import { Inventory, StockKeys, StockRebalancer, splitStock, type FinishedTransfer } from '@orders/stock';
import { reservationOf } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';
import { interceptingScript } from './support/intercepted-script.js';

const HOUR = 3600_000;

describe('stock buckets and the transfers between them', () => {
  const prefix = testKeyPrefix('buckets');
  // the scripts expire keys at times derived from `now` on Redis's own clock, so `now` is today
  const now = new Date();
  const sale = { deduction: 'placement' as const, saleStartsAt: new Date(now.getTime() - HOUR), saleEndsAt: new Date(now.getTime() + HOUR), perUserLimit: 1 };
  let redis: Redis;
  let inventory: Inventory;
  const recorded: FinishedTransfer[] = [];
  let rebalancer: StockRebalancer;

  const rebalancerOn = (on: Inventory) =>
    new StockRebalancer({
      inventory: on,
      recordTransfer: async (transfer) => void recorded.push(transfer),
      clock: () => now,
      onError: (error) => {
        throw error;
      },
    });

  /**
   * An Inventory on the same Redis connection whose `script` call on one bucket of a SKU
   * first waits for `meanwhile`: what another process does in that instant (a merchant's
   * stock set between a transfer's two sides, a transfer between two buckets' sets).
   */
  const pausingBefore = (script: 'setStock' | 'giveStock', skuId: string, bucket: number, meanwhile: () => Promise<unknown>) => {
    const connection = interceptingScript(redis, prefix, { script, skuId, bucket }, (command, send) =>
      // its reply is the command's promise, whenever it is sent
      meanwhile().then(send, (error: Error) => command.reject(error)),
    );
    return new Inventory(connection, prefix, TEST_TIMEOUTS);
  };

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, TEST_TIMEOUTS);
    rebalancer = rebalancerOn(inventory);
    await inventory.initSku({ skuId: 'HOT', available: 10, buckets: 4, ...sale });
    await inventory.initSku({ skuId: 'SPLIT', available: 10, buckets: 4, ...sale });
    await inventory.initSku({ skuId: 'MOVE', available: 9, buckets: 3, ...sale });
    await inventory.initSku({ skuId: 'PLAIN', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  const reserve = (userId: string, items: Array<{ skuId: string; qty: number }>) =>
    inventory.reserveStock(reservationOf(userId, items, { now }));
  const available = async (skuId: string) => (await inventory.bucketStock(skuId))!.map((bucket) => bucket.available);
  /** `buyers` buyers of one unit each, all at once; returns how many got one (the others heard OUT_OF_STOCK). */
  const race = async (skuId: string, buyers: number) => {
    const answers = await Promise.allSettled(Array.from({ length: buyers }, (_, i) => reserve(`${skuId}-buyer-${i}`, [{ skuId, qty: 1 }])));
    const refusals = answers.flatMap((answer) => (answer.status === 'rejected' ? [answer.reason as unknown] : []));
    expect(refusals.filter((reason) => !(reason instanceof OutOfStock))).toEqual([]);
    return answers.length - refusals.length;
  };

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
    // generation 0: the merchant has not set the stock since the SKU was created
    const taken = { ...transfer, generation: 0 };
    expect(await inventory.takeForTransfer(transfer, now)).toEqual(taken);
    expect(await inventory.takeForTransfer(transfer, now)).toEqual(taken);
    expect(await available('SPLIT')).toEqual([1, 3, 2, 2]);
    // taken and not yet given: open, so a crash here is finished later
    expect(await inventory.openTransfers(now)).toEqual([{ ...taken, state: 'taken' }]);
    expect(await inventory.giveForTransfer(taken)).toBe('given');
    expect(await inventory.giveForTransfer(taken)).toBe('given-before');
    expect(await available('SPLIT')).toEqual([1, 3, 2, 4]);
    expect(await inventory.openTransfers(now)).toEqual([{ ...taken, state: 'given' }]);
    await inventory.closeTransfer(transfer);
    expect(await inventory.openTransfers(now)).toEqual([]);
    // a repeat after closing changes nothing either
    expect(await inventory.takeForTransfer(transfer, now)).toEqual(taken);
    expect(await inventory.giveForTransfer(taken)).toBe('given-before');
    expect(await inventory.getSkuStock('SPLIT')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  it('remembers a give for as long as its transfer stays open, so a stock check a week later does not give it again', async () => {
    await inventory.initSku({ skuId: 'LONG', available: 10, buckets: 4, ...sale });
    const transfer = { transferId: 'tr-long', skuId: 'LONG', from: 1, to: 2, qty: 1 };
    const taken = await inventory.takeForTransfer(transfer, now);
    expect(await inventory.giveForTransfer(taken)).toBe('given');
    // left open (its recording failed through a MySQL outage, its process died): the marker has no expiry
    const marker = inventory.keys.transfer(inventory.keys.bucketGroup(2), 'tr-long');
    expect(await redis.pttl(marker)).toBe(-1);
    await inventory.closeTransfer(transfer);
    expect(await redis.pttl(marker)).toBeGreaterThan(6 * 24 * 3600 * 1000);
    expect(await inventory.getSkuStock('LONG')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  it('never takes more than the bucket has available', async () => {
    const transfer = { transferId: 'tr-2', skuId: 'SPLIT', from: 0, to: 1, qty: 5 };
    expect((await inventory.takeForTransfer(transfer, now)).qty).toBe(1);
    expect((await inventory.takeForTransfer({ transferId: 'tr-3', skuId: 'SPLIT', from: 0, to: 1, qty: 5 }, now)).qty).toBe(0);
    await rebalancer.completeOpenTransfers(0);
    expect(await available('SPLIT')).toEqual([0, 4, 2, 4]);
    expect(await inventory.openTransfers(now)).toEqual([]);
    expect(recorded.filter((transfer) => transfer.transferId === 'tr-2')).toEqual([{ ...transfer, qty: 1, voided: false }]);
  });

  it('takes a correction of the whole SKU out of each bucket in turn, none below zero (a stock set undone, a repair)', async () => {
    await inventory.initSku({ skuId: 'UNDONE', available: 0, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0, buckets: 4 });
    const previous = await inventory.setAvailable('UNDONE', 100, { ref: 'set-undone', now });
    expect(await available('UNDONE')).toEqual([25, 25, 25, 25]);
    // a buyer of bucket 3 reserves 5 before MySQL refuses the set, which is then taken back
    const keys = new StockKeys(prefix);
    const buyer = Array.from({ length: 50 }, (_, i) => `undo-${i}`).find((id) => keys.bucketOf(id, 4) === 3)!;
    await reserve(buyer, [{ skuId: 'UNDONE', qty: 5 }]);
    expect(await inventory.correctCounters('UNDONE', { available: previous! - 100, reserved: 0, sold: 0 })).toBe(5);
    // taken from bucket 0 alone it was [-75, 25, 25, 20]: 70 units to sell that no longer exist
    expect(await available('UNDONE')).toEqual([0, 0, 0, 0]);
    await expect(reserve(buyer, [{ skuId: 'UNDONE', qty: 1 }])).rejects.toBeInstanceOf(OutOfStock);
    expect(await inventory.getSkuStock('UNDONE')).toEqual({ available: 0, reserved: 5, sold: 0 });
  });

  it('finishes a transfer cut short between its two sides exactly once', async () => {
    const transfer = { transferId: 'tr-4', skuId: 'SPLIT', from: 1, to: 0, qty: 2 };
    await inventory.takeForTransfer(transfer, now);
    expect(await inventory.getSkuStock('SPLIT')).toEqual({ available: 8, reserved: 0, sold: 0 });
    expect(await rebalancer.completeOpenTransfers(0)).toBe(2);
    expect(await rebalancer.completeOpenTransfers(0)).toBe(0);
    expect(await available('SPLIT')).toEqual([2, 2, 2, 4]);
  });

  it('gives units whose give failed once (its command timed out in a rush) on its own, not leaving them on sale nowhere until the stock check', async () => {
    // 3 units over 4 buckets: bucket 3 is empty, its buyer asks for 1
    await inventory.initSku({ skuId: 'BLIP', available: 3, buckets: 4, ...sale });
    let gives = 0;
    const blipping = interceptingScript(redis, prefix, { script: 'giveStock', skuId: 'BLIP', bucket: 3 }, (command, send) =>
      gives++ === 0 ? command.reject(new Error('Command timed out')) : send(),
    );
    expect(await rebalancerOn(new Inventory(blipping, prefix, TEST_TIMEOUTS)).rebalance('BLIP', new Map([[3, 1]]))).toBe(1);
    expect(gives).toBe(2);
    expect(await available('BLIP')).toEqual([0, 1, 1, 1]);
    expect(recorded.filter((t) => t.skuId === 'BLIP')).toEqual([{ transferId: expect.any(String), skuId: 'BLIP', from: 0, to: 3, qty: 1, voided: false }]);
    expect(await inventory.openTransfers(now)).toEqual([]);
  });

  it('gives units whose take Redis ran but answered too late (its command timed out in a rush) on its own, not leaving them on sale nowhere until the stock check', async () => {
    // 3 units over 4 buckets: bucket 3 is empty, its buyer asks for 1; bucket 0 gives
    await inventory.initSku({ skuId: 'LATE', available: 3, buckets: 4, ...sale });
    let takes = 0;
    const late = interceptingScript(redis, prefix, { script: 'takeStock', skuId: 'LATE', bucket: 0 }, (command, send) => {
      send();
      // ioredis' commandTimeout: the command stays sent, its answer is dropped when it comes
      if (takes++ === 0) command.reject(new Error('Command timed out'));
    });
    expect(await rebalancerOn(new Inventory(late, prefix, TEST_TIMEOUTS)).rebalance('LATE', new Map([[3, 1]]))).toBe(1);
    expect(takes).toBe(2);
    expect(await available('LATE')).toEqual([0, 1, 1, 1]);
    expect(recorded.filter((t) => t.skuId === 'LATE')).toEqual([{ transferId: expect.any(String), skuId: 'LATE', from: 0, to: 3, qty: 1, voided: false }]);
    expect(await inventory.openTransfers(now)).toEqual([]);
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
      if (!sold) await rebalancer.rebalance('MOVE', new Map([[0, 1]]));
    }
    expect(await available('MOVE')).toEqual([0, 0, 0]);
    expect(await inventory.getSkuStock('MOVE')).toEqual({ available: 0, reserved: 9, sold: 0 });
    expect(await inventory.openTransfers(now)).toEqual([]);
  });

  it('tops up a bucket holding fewer units than its buyer asks for, from the fullest other bucket', async () => {
    await inventory.initSku({ skuId: 'FEW-LEFT', available: 400, buckets: 4, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    const keys = new StockKeys(prefix);
    const [taker, asker, bigAsker] = Array.from({ length: 200 }, (_, i) => `few-${i}`).filter((id) => keys.bucketOf(id, 4) === 2);
    await reserve(taker!, [{ skuId: 'FEW-LEFT', qty: 97 }]);
    expect(await available('FEW-LEFT')).toEqual([100, 100, 3, 100]);
    // 3 units in the buyer's bucket, hundreds in the others: the OUT_OF_STOCK asks for the 5 they want
    await expect(reserve(asker!, [{ skuId: 'FEW-LEFT', qty: 5 }])).rejects.toBeInstanceOf(OutOfStock);
    rebalancer.request('FEW-LEFT', asker!, 5);
    await rebalancer.settled();
    expect(await available('FEW-LEFT')).toEqual([50, 100, 53, 100]);
    expect((await reserve(asker!, [{ skuId: 'FEW-LEFT', qty: 5 }])).created).toBe(true);
    // a buyer lacking more than half the fullest bucket holds gets what they lack
    await expect(reserve(bigAsker!, [{ skuId: 'FEW-LEFT', qty: 120 }])).rejects.toBeInstanceOf(OutOfStock);
    rebalancer.request('FEW-LEFT', bigAsker!, 120);
    await rebalancer.settled();
    expect(await available('FEW-LEFT')).toEqual([50, 28, 120, 100]);
    expect((await reserve(bigAsker!, [{ skuId: 'FEW-LEFT', qty: 120 }])).created).toBe(true);
    expect(await inventory.getSkuStock('FEW-LEFT')).toEqual({ available: 178, reserved: 222, sold: 0 });
    expect(await inventory.openTransfers(now)).toEqual([]);
  });

  it('sends no units to a bucket Redis lost, keeps a transfer into it open, and gives it once the repair has recreated the bucket in the stock generation of the others', async () => {
    await inventory.initSku({ skuId: 'LOST', available: 20, buckets: 4, ...sale });
    // the merchant's set: every bucket holds 10 in the SKU's stock generation 1
    expect(await inventory.setAvailable('LOST', 40, { ref: 'set-lost', now })).toBe(20);
    await inventory.closeStockSet({ skuId: 'LOST', ref: 'set-lost' });
    const transfer = { transferId: 'lost-1', skuId: 'LOST', from: 0, to: 2, qty: 4 };
    const taken = await inventory.takeForTransfer(transfer, now);
    await redis.del(new StockKeys(prefix).sku('{g2}', 'LOST'));

    expect(await inventory.giveForTransfer(taken)).toBe('lost');
    expect(await rebalancer.completeOpenTransfers(0)).toBe(0);
    // the reconciler's pass refills empty buckets, and a lost one is none
    expect(await rebalancer.rebalance('LOST')).toBe(0);
    expect(await inventory.bucketStockOrLost('LOST')).toEqual([{ available: 6, reserved: 0, sold: 0 }, { available: 10, reserved: 0, sold: 0 }, null, { available: 10, reserved: 0, sold: 0 }]);
    expect(await inventory.openTransfers(now)).toEqual([{ ...taken, state: 'taken' }]);

    expect(await inventory.recreateLostBuckets({ skuId: 'LOST', buckets: 4, ...sale })).toEqual([2]);
    expect(await redis.hget(new StockKeys(prefix).sku('{g2}', 'LOST'), 'generation')).toBe('1');
    expect(await rebalancer.completeOpenTransfers(0)).toBe(4);
    expect(await available('LOST')).toEqual([6, 10, 4, 10]);
    expect(recorded.filter((t) => t.transferId === 'lost-1')).toEqual([{ ...transfer, voided: false }]);
    expect(await inventory.openTransfers(now)).toEqual([]);
  });

  describe('a merchant sets the stock while units are on their way between buckets', () => {
    it('sells exactly the 20 units set when the rebalancer gives 5 units it took before the set: the give voids the transfer', async () => {
      await inventory.initSku({ skuId: 'SET-GIVE', available: 40, buckets: 4, ...sale });
      const transfer = { transferId: 'set-give-1', skuId: 'SET-GIVE', from: 0, to: 3, qty: 5 };
      const taken = await inventory.takeForTransfer(transfer, now);
      expect(await available('SET-GIVE')).toEqual([5, 10, 10, 10]);
      // the set counts 35 units before it (the ledger's `adjust` row is 20 - 35)
      expect(await inventory.setAvailable('SET-GIVE', 20, { ref: 'set-give', now })).toBe(35);
      // MySQL has the set (StockSets closes it then): kept, it voids what it overrode
      await inventory.closeStockSet({ skuId: 'SET-GIVE', ref: 'set-give' });
      expect(await inventory.giveForTransfer(taken)).toBe('voided');
      expect(await inventory.giveForTransfer(taken)).toBe('voided');
      expect(await available('SET-GIVE')).toEqual([5, 5, 5, 5]);
      // the units were in no bucket when the set counted, and never will be: the ledger's `out` row alone
      expect(await inventory.openTransfers(now)).toEqual([{ ...taken, state: 'voided' }]);
      expect(await rebalancer.completeOpenTransfers(0)).toBe(0);
      expect(recorded.filter((t) => t.transferId === 'set-give-1')).toEqual([{ ...transfer, voided: true }]);
      expect(await inventory.openTransfers(now)).toEqual([]);

      expect(await race('SET-GIVE', 300)).toBe(20);
      expect(await inventory.getSkuStock('SET-GIVE')).toEqual({ available: 0, reserved: 20, sold: 0 });
    });

    it("voids a transfer the rebalancer's own give finds overridden by a set that came between its sides, once the set is known kept", async () => {
      // 3 units over 4 buckets: bucket 3 is empty, the rebalancer moves 1 unit there from bucket 0
      await inventory.initSku({ skuId: 'SET-LIVE', available: 3, buckets: 4, ...sale });
      const setAndKeep = async () => {
        await inventory.setAvailable('SET-LIVE', 8, { ref: 'set-live', now });
        await inventory.closeStockSet({ skuId: 'SET-LIVE', ref: 'set-live' });
      };
      const paused = rebalancerOn(pausingBefore('giveStock', 'SET-LIVE', 3, setAndKeep));
      expect(await paused.rebalance('SET-LIVE', new Map([[3, 1]]))).toBe(0);
      expect(await available('SET-LIVE')).toEqual([2, 2, 2, 2]);
      // its give read the set's generation as not yet kept: the stock check's run voids it
      expect(await rebalancer.completeOpenTransfers(0)).toBe(0);
      expect(recorded.filter((t) => t.skuId === 'SET-LIVE')).toEqual([{ transferId: expect.any(String), skuId: 'SET-LIVE', from: 0, to: 3, qty: 1, voided: true }]);
      expect(await inventory.openTransfers(now)).toEqual([]);

      expect(await race('SET-LIVE', 300)).toBe(8);
      expect(await inventory.getSkuStock('SET-LIVE')).toEqual({ available: 0, reserved: 8, sold: 0 });
    });

    it("sells exactly the 20 units set when the process that took 5 units died and the reconciler's run finishes the transfer", async () => {
      await inventory.initSku({ skuId: 'SET-CRASH', available: 40, buckets: 4, ...sale });
      const transfer = { transferId: 'set-crash-1', skuId: 'SET-CRASH', from: 1, to: 2, qty: 5 };
      await inventory.takeForTransfer(transfer, now);
      // the process dies here; the merchant sets 20
      expect(await inventory.setAvailable('SET-CRASH', 20, { ref: 'set-crash', now })).toBe(35);
      await inventory.closeStockSet({ skuId: 'SET-CRASH', ref: 'set-crash' });
      expect(await rebalancer.completeOpenTransfers(0)).toBe(0);
      expect(await rebalancer.completeOpenTransfers(0)).toBe(0);
      expect(await available('SET-CRASH')).toEqual([5, 5, 5, 5]);
      expect(recorded.filter((t) => t.transferId === 'set-crash-1')).toEqual([{ ...transfer, voided: true }]);
      expect(await inventory.openTransfers(now)).toEqual([]);

      expect(await race('SET-CRASH', 300)).toBe(20);
      expect(await inventory.getSkuStock('SET-CRASH')).toEqual({ available: 0, reserved: 20, sold: 0 });
    });

    it('gives units taken after the set reached the giving bucket only once it has reached the receiving one', async () => {
      await inventory.initSku({ skuId: 'SET-AHEAD', available: 40, buckets: 4, ...sale });
      const transfer = { transferId: 'set-ahead-1', skuId: 'SET-AHEAD', from: 0, to: 2, qty: 3 };
      let meanwhile: unknown[] = [];
      // bucket 0 holds its 5 of the 20 set; bucket 2 still holds its 10 of the 40 before
      const setting = pausingBefore('setStock', 'SET-AHEAD', 2, async () => {
        const taken = await inventory.takeForTransfer(transfer, now);
        meanwhile = [taken.qty, await inventory.giveForTransfer(taken)];
      });
      expect(await setting.setAvailable('SET-AHEAD', 20, { ref: 'set-ahead', now })).toBe(40);
      expect(meanwhile).toEqual([3, 'waiting']);
      expect(await available('SET-AHEAD')).toEqual([2, 5, 5, 5]);
      expect(await inventory.openTransfers(now)).toEqual([{ ...transfer, generation: 1, state: 'taken' }]);
      // the reconciler's run gives them: not one of the 20 is lost
      expect(await rebalancer.completeOpenTransfers(0)).toBe(3);
      expect(await available('SET-AHEAD')).toEqual([2, 5, 8, 5]);
      expect(recorded.filter((t) => t.transferId === 'set-ahead-1')).toEqual([{ ...transfer, voided: false }]);

      expect(await race('SET-AHEAD', 300)).toBe(20);
      expect(await inventory.getSkuStock('SET-AHEAD')).toEqual({ available: 0, reserved: 20, sold: 0 });
    });

    it('voids units taken from a bucket the set had not reached yet and given to one it had', async () => {
      await inventory.initSku({ skuId: 'SET-BEHIND', available: 40, buckets: 4, ...sale });
      const transfer = { transferId: 'set-behind-1', skuId: 'SET-BEHIND', from: 2, to: 0, qty: 3 };
      let meanwhile: unknown[] = [];
      // bucket 0 holds its 5 of the 20 set; the 3 units come from bucket 2's 10 of the 40 before
      const setting = pausingBefore('setStock', 'SET-BEHIND', 2, async () => {
        const taken = await inventory.takeForTransfer(transfer, now);
        meanwhile = [taken.qty, await inventory.giveForTransfer(taken)];
      });
      // the set counts bucket 2 as it finds it, without the 3 units (the ledger's `adjust` row is 20 - 37)
      expect(await setting.setAvailable('SET-BEHIND', 20, { ref: 'set-behind', now })).toBe(37);
      // the set, still open, may yet be taken back: the transfer waits, and is voided once MySQL has the set
      expect(meanwhile).toEqual([3, 'waiting']);
      await inventory.closeStockSet({ skuId: 'SET-BEHIND', ref: 'set-behind' });
      expect(await available('SET-BEHIND')).toEqual([5, 5, 5, 5]);
      expect(await rebalancer.completeOpenTransfers(0)).toBe(0);
      expect(recorded.filter((t) => t.transferId === 'set-behind-1')).toEqual([{ ...transfer, voided: true }]);
      expect(await inventory.openTransfers(now)).toEqual([]);

      expect(await race('SET-BEHIND', 300)).toBe(20);
      expect(await inventory.getSkuStock('SET-BEHIND')).toEqual({ available: 0, reserved: 20, sold: 0 });
    });
  });
});

import { Inventory, ReservationNotReplicated } from '@orders/stock';
import { buyerAddress, buyerOutsideBucketZero, reservationOf, waitFor } from '@orders/testing';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOT_BUCKETS, openHotSaleWithOnceCoupon } from './support/hot-sale.js';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';

describe('checkouts that wait for a replica, on a connection of their own', () => {
  const prefix = testKeyPrefix('reservations_connection');
  const url = TEST_REDIS_URL;
  const now = new Date();
  let redis: Redis;
  let reserving: Redis;
  let inventory: Inventory;

  beforeAll(async () => {
    redis = new Redis(url);
    // the test's Redis has no replica: every WAIT holds the connection for its whole 300 ms, and goes unanswered after 100
    reserving = new Redis(url, { commandTimeout: 100, maxRetriesPerRequest: 1 });
    inventory = new Inventory(redis, prefix, TEST_TIMEOUTS, { durability: { replicaAcks: 1, timeoutMs: 300, connection: reserving } });
    await inventory.initSku({ skuId: 'PLAIN', available: 100, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    await openHotSaleWithOnceCoupon(inventory, now, 100);
  });

  afterAll(async () => {
    await removeKeys(redis, prefix);
    redis.disconnect();
    reserving.disconnect();
  });

  it("gives back the coupon use of a bucket's claim that went unanswered behind another checkout's wait, once the claim has run", async () => {
    // a buyer whose cart of HOT runs outside their own group: their coupon use is taken by a claim there first
    const buyer = buyerOutsideBucketZero('buyer', HOT_BUCKETS);
    const waitingFirst = inventory.reserveStock(reservationOf('first', [{ skuId: 'PLAIN', qty: 1 }], { now }));
    await sleep(20);
    const claimed = inventory.reserveStock(reservationOf(buyer, [{ skuId: 'HOT', qty: 1 }], { now, idempotencyKey: 'hot-with-once', payload: { address: buyerAddress, couponCode: 'ONCE' } }));
    const [first, claim] = await Promise.allSettled([waitingFirst, claimed]);
    expect(first.status).toBe('rejected');
    expect(claim.status === 'rejected' && (claim.reason as Error).message).toBe('Command timed out');

    // the claim runs after the first checkout's WAIT, its own WAIT after it, then what gives its use back:
    // its count of uses, none before the claim, is back to 0 then (each step later on a busy box)
    const usesKey = inventory.keys.couponUses(inventory.keys.groupOf(buyer), 'ONCE', buyer);
    const claimKey = inventory.keys.idempotency(inventory.keys.groupOf(buyer), buyer, 'hot-with-once');
    await waitFor(async () => (await redis.get(usesKey)) === '0' && (await redis.exists(claimKey)) === 0, {
      what: "the claim's use given back",
      timeoutMs: 15_000,
      intervalMs: 50,
      explain: async () => `uses ${await redis.get(usesKey)}, claim ${JSON.stringify(await redis.hgetall(claimKey))}`,
    });
    expect(Number(await redis.get(usesKey))).toBe(0);
    expect(await redis.exists(claimKey)).toBe(0);
  });

  it('answers every checkout of a sale as not replicated while no replica acknowledges, none left unanswered behind the WAITs of the turns before it', async () => {
    // commands answered within 1 s, a WAIT of 200 ms: ten turns' WAITs one after another in Redis would take 2 s
    const patient = new Redis(url, { commandTimeout: 1_000, maxRetriesPerRequest: 1 });
    try {
      const sale = new Inventory(redis, prefix, TEST_TIMEOUTS, { durability: { replicaAcks: 1, timeoutMs: 200, connection: patient } });
      // each answer taken as it comes: on a slow box the first refusal comes before the last turn is sent
      const answers: Array<Promise<string>> = [];
      for (let turn = 0; turn < 10; turn++) {
        answers.push(sale.reserveStock(reservationOf(`sale-buyer-${turn}`, [{ skuId: 'PLAIN', qty: 1 }], { now })).then(() => 'accepted', (error: Error) => error.name));
        await sleep(15);
      }
      expect(await Promise.all(answers)).toEqual(Array(10).fill(ReservationNotReplicated.name));
    } finally {
      patient.disconnect();
    }
  });
});

import { Inventory, WindowCounters } from '@orders/stock';
import { reservationOf, startRedisServer, type RedisServer } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TIMEOUTS } from './support/test-keys.js';

// A redis-server of this file's own: SCRIPT FLUSH on the shared one would hit every other file's connections.
describe('the stock scripts when Redis has forgotten them', () => {
  let server: RedisServer;
  let redis: Redis;
  let inventory: Inventory;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    inventory = new Inventory(redis, 't:scripts:', TEST_TIMEOUTS);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.remove();
  });

  const reserve = (userId: string, qty: number) =>
    inventory.reserveStock(reservationOf(userId, [{ skuId: 'KEPT', qty }]));

  const noscriptErrors = async () => Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(await redis.info('errorstats'))?.[1] ?? 0);

  it('reserves, releases and counts again after SCRIPT FLUSH, every reservation of a burst exactly once', async () => {
    await inventory.initSku({ skuId: 'KEPT', available: 100, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    const counters = new WindowCounters(redis);
    const first = await reserve('ann', 1);
    expect((await counters.count('{g0}', 't:scripts:{g0}:rate:ann', 60_000)).count).toBe(1);

    // a flushed script cache: each call's EVALSHA answers NOSCRIPT once, and is sent again with the script
    await redis.script('FLUSH');
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => reserve(`buyer-${i}`, 2)));
    expect(burst.every((reservation) => reservation.created)).toBe(true);
    expect(await noscriptErrors()).toBeGreaterThan(0);
    expect(await inventory.getSkuStock('KEPT')).toEqual({ available: 59, reserved: 41, sold: 0 });

    await redis.script('FLUSH');
    expect(await inventory.releaseStock(first.order.orderId, 'ann', 'cancel')).toBe(true);
    expect(await inventory.getSkuStock('KEPT')).toEqual({ available: 60, reserved: 40, sold: 0 });

    await redis.script('FLUSH');
    expect((await counters.count('{g0}', 't:scripts:{g0}:rate:ann', 60_000)).count).toBe(2);
  });
});

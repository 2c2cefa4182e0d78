import { Inventory } from '@orders/stock';
import { reservationOf, startRedisServer, type RedisServer } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TIMEOUTS } from './support/test-keys.js';

// A redis-server of this file's own: the test pauses every client's writes on it.
describe('the stock reads while Redis pauses writes (CLIENT PAUSE WRITE, as a FAILOVER does)', () => {
  let server: RedisServer;
  let redis: Redis;
  let pauser: Redis;
  let inventory: Inventory;

  beforeAll(async () => {
    server = await startRedisServer();
    // the api's command timeout: a read held by the pause fails within it
    redis = new Redis(server.url, { commandTimeout: 300 });
    pauser = new Redis(server.url);
    inventory = new Inventory(redis, 't:paused:', TEST_TIMEOUTS);
  });

  afterAll(async () => {
    redis?.disconnect();
    pauser?.disconnect();
    await server?.remove();
  });

  it('answers the backlog the intake sheds by, and the reads queued behind it on the connection, while writes wait', async () => {
    await inventory.initSku({ skuId: 'LAMP', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    for (const buyer of ['ann', 'bob', 'cy']) expect((await inventory.reserveStock(reservationOf(buyer, [{ skuId: 'LAMP', qty: 1 }]))).created).toBe(true);

    await pauser.call('CLIENT', 'PAUSE', '10000', 'WRITE');
    try {
      const [backlog, stock] = await Promise.all([inventory.acceptedBacklog(), inventory.getSkuStock('LAMP')]);
      expect(backlog).toBe(3);
      expect(stock).toEqual({ available: 7, reserved: 3, sold: 0 });
    } finally {
      await pauser.call('CLIENT', 'UNPAUSE');
    }
  });
});

import { Inventory } from '@orders/stock';
import { waitFor } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisBehindLink } from './support/held-link.js';
import { TEST_REDIS_URL, TEST_TIMEOUTS, removeKeys, testKeyPrefix } from './support/test-keys.js';

/**
 * The stock reconciler's repair and a stock set taken back move a SKU's counters by amounts
 * (Inventory.correctCounters). A worker's connection keeps its commands while Redis is away and
 * sends the unanswered ones again once it is back: a correction Redis ran whose answer was lost
 * with the connection must not move the counters a second time.
 */
describe('a correction of the stock counters whose answer is lost with the connection', () => {
  const prefix = testKeyPrefix('corrections');
  let redis: Redis;
  let behind: Awaited<ReturnType<typeof redisBehindLink>>;
  /** The worker's inventory, on a connection as the worker opens it (commands kept and sent again after a reconnect). */
  let inventory: Inventory;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    behind = await redisBehindLink('corrections-behind-link', { maxRetriesPerRequest: null });
    inventory = new Inventory(behind.client, prefix, TEST_TIMEOUTS);
  });

  afterAll(async () => {
    behind.client.disconnect();
    await behind.link.close();
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  /** Runs the correction with its first answer held, cuts the link once Redis has moved the counters, and brings the link back. */
  const correctAcrossLostAnswer = async (skuId: string, by: { available: number; reserved: number; sold: number }) => {
    const watching = new Inventory(redis, prefix, TEST_TIMEOUTS);
    const before = await watching.getSkuStock(skuId);
    behind.link.holdAnswers();
    const correction = inventory.correctCounters(skuId, by);
    await waitFor(async () => (JSON.stringify(await watching.getSkuStock(skuId)) !== JSON.stringify(before)) || null, { what: 'Redis to run the correction', timeoutMs: 15_000, explain: async () => String(await redis.client('LIST')) + JSON.stringify(before) });
    await behind.link.cut();
    await behind.link.restore();
    return correction;
  };

  it('puts units back on sale once', async () => {
    await inventory.initSku({ skuId: 'BACK', available: 5, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    expect(await correctAcrossLostAnswer('BACK', { available: 2, reserved: -1, sold: 1 })).toBe(0);
    expect(await inventory.getSkuStock('BACK')).toEqual({ available: 7, reserved: -1, sold: 1 });
  });

  it('takes units off sale once, bucket by bucket', async () => {
    await inventory.initSku({ skuId: 'OFF', available: 5, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0, buckets: 2 });
    // a first correction answered as usual: the connection knows every script the next one runs
    expect(await inventory.correctCounters('OFF', { available: -1, reserved: 0, sold: 0 })).toBe(0);
    expect(await correctAcrossLostAnswer('OFF', { available: -3, reserved: 0, sold: 0 })).toBe(0);
    expect(await inventory.getSkuStock('OFF')).toEqual({ available: 1, reserved: 0, sold: 0 });
  });
});

import { WindowCounters } from '@orders/stock';
import { TEST_REDIS_URL, testRunName } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('fixed-window counters (request budgets, checkout velocity)', () => {
  const name = testRunName('window');
  const prefix = `t:${name}:{g0}:`;
  let redis: Redis;
  let counters: WindowCounters;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    counters = new WindowCounters(redis);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('counts 200 parallel events exactly once each, in one window that the first of them started', async () => {
    const counts = await Promise.all(Array.from({ length: 200 }, () => counters.count('{g0}', `${prefix}burst`, 60_000)));
    expect(counts.map((c) => c.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    for (const { msLeft } of counts) {
      expect(msLeft).toBeGreaterThan(55_000);
      expect(msLeft).toBeLessThanOrEqual(60_000);
    }
  });

  it('starts a new window once the old one has passed', async () => {
    const inFirstWindow = await Promise.all([counters.count('{g0}', `${prefix}short`, 500), counters.count('{g0}', `${prefix}short`, 500)]);
    expect(inFirstWindow.map((c) => c.count).sort()).toEqual([1, 2]);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await counters.count('{g0}', `${prefix}short`, 500)).toEqual({ count: 1, msLeft: 500 });
  });

  it('gives a counter that lost its expiry one back on its next count, so none stays in Redis for ever', async () => {
    await redis.set(`${prefix}stuck`, '7');
    expect(await counters.count('{g0}', `${prefix}stuck`, 60_000)).toEqual({ count: 8, msLeft: 60_000 });
    expect(await redis.pttl(`${prefix}stuck`)).toBeGreaterThan(55_000);
  });

  it('counts several counters at once, each in its own window, in the order asked, whether they share a slot group or not', async () => {
    const other = `t:${name}:{g1}:`;
    try {
      await counters.count('{g0}', `${prefix}budget`, 60_000);
      const counts = await counters.countEach([
        { slotGroup: '{g0}', key: `${prefix}budget`, windowMs: 60_000 },
        { slotGroup: '{g0}', key: `${prefix}attempts`, windowMs: 5_000 },
        { slotGroup: '{g1}', key: `${other}attempts`, windowMs: 5_000 },
      ]);
      expect(counts.map((c) => c.count)).toEqual([2, 1, 1]);
      expect(counts[0]!.msLeft).toBeGreaterThan(55_000);
      expect(counts.slice(1).map((c) => c.msLeft)).toEqual([5_000, 5_000]);
    } finally {
      await redis.del(`${other}attempts`);
    }
  });
});

import { RunLock } from '@orders/stock';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, testKeyPrefix } from './support/test-keys.js';

/**
 * The lock's lifetime in these tests: short, yet longer than a busy box may hold up a SET's answer
 * or a renewal (a lock counts from before its SET was sent, and from each renewal Redis confirmed).
 */
const LIFETIME_MS = 1_000;

describe('the run lock (one stock repair at a time) when Redis goes away while it is held', () => {
  const prefix = testKeyPrefix('repairlock');
  const url = TEST_REDIS_URL;
  const redis = new Redis(url);

  afterAll(async () => {
    await redis.del(`${prefix}lapsed:stock-repair-lock`, `${prefix}renewed:stock-repair-lock`);
    redis.disconnect();
  });

  /** A connection that refuses every command at once once it is closed, as one to a Redis that went away. */
  async function lockConnection(): Promise<Redis> {
    const connection = new Redis(url, { enableOfflineQueue: false, lazyConnect: true });
    await connection.connect();
    return connection;
  }

  it('counts a 1 s lock as lost once 1 s passes without a renewal, and lets the work’s own error through', async () => {
    const connection = await lockConnection();
    const lock = new RunLock(connection, `${prefix}lapsed:stock-repair-lock`, 'stock repair', LIFETIME_MS);
    const seen: boolean[] = [];
    const run = lock.whileHeld(0, async (stillHeld) => {
      seen.push(stillHeld());
      connection.disconnect();
      await new Promise((resolve) => setTimeout(resolve, LIFETIME_MS + 100));
      seen.push(stillHeld());
      throw new Error('the repair failed halfway');
    });
    const error = await run.then(
      () => 'none',
      (failed: Error) => failed.message,
    );
    expect({ error, seen }).toEqual({ error: 'the repair failed halfway', seen: [true, false] });
  });

  it('stays held past its 1 s lifetime while its renewals reach Redis', async () => {
    const lock = new RunLock(redis, `${prefix}renewed:stock-repair-lock`, 'stock repair', LIFETIME_MS);
    const held = await lock.whileHeld(0, async (stillHeld) => {
      await new Promise((resolve) => setTimeout(resolve, 2.5 * LIFETIME_MS));
      return stillHeld();
    });
    expect(held).toBe(true);
    expect(await redis.exists(`${prefix}renewed:stock-repair-lock`)).toBe(0);
  });
});

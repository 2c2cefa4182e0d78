import type { CheckoutTimeouts } from '@orders/stock';
import { testRunName } from '@orders/testing';
import type { Redis } from 'ioredis';

/** The Redis the stock tests run against. */
export { TEST_REDIS_URL } from '@orders/testing';

/** A shop's payment windows and a day of idempotency: what the stock tests' inventories run with. */
export const TEST_TIMEOUTS: CheckoutTimeouts = { standardPaymentTimeoutMs: 30 * 60_000, flashSalePaymentTimeoutMs: 10 * 60_000, idempotencyTtlMs: 24 * 3600_000 };

/** A key prefix of the test file's own, so files run side by side, and of its run (testRunName): `t:<run>_<name>_<random>:`. */
export function testKeyPrefix(name: string): string {
  return `t:${testRunName(name)}:`;
}

/** Removes every key under `prefix` (its glob characters taken as they are), as a test file leaves nothing behind. */
export async function removeKeys(redis: Redis, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`);
  // a DEL each thousand: one DEL of every key spreads them all as arguments, past the stack with a sale's 300,000
  for (let at = 0; at < keys.length; at += 1000) await redis.del(...keys.slice(at, at + 1000));
}

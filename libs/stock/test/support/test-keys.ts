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
  if (keys.length > 0) await redis.del(...keys);
}

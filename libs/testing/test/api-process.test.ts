import { readFileSync, readdirSync } from 'node:fs';
import { createTestEnv, startApiProcess, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The processes on this machine whose environment holds `entry` (Linux: /proc): all a test started, and their children. */
function processesWith(entry: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(entry);
      } catch {
        // gone meanwhile
        return false;
      }
    });
}

describe('an api process a test starts', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('api_process');
  });
  afterAll(async () => env?.cleanup());

  it('that is not ready in time fails the test saying what /health/ready answered and what the api printed, and none of its processes is left running', { timeout: 90_000 }, async () => {
    const marker = `TEST_API_NEVER_READY=${env.config.REDIS_KEY_PREFIX}`;
    // MySQL away: the api runs, as a primary and the two processes it forks, and answers /health/ready 503
    const started = startApiProcess({ ...env.env, MYSQL_URL: 'mysql://root@127.0.0.1:1/orders', API_PROCESSES: '2', TEST_API_NEVER_READY: env.config.REDIS_KEY_PREFIX }, 1, { readyTimeoutMs: 20_000 });
    const failure = await started.then(
      () => expect.unreachable('the api said it was ready'),
      (error: Error) => error.message,
    );
    expect(processesWith(marker)).toEqual([]);
    expect(failure).toContain('Timed out after 20000 ms waiting for the api to be ready');
    expect(failure).toContain('/health/ready last answered: ');
    expect(failure).toContain("the api's output:");
  });

  it('that exits as it starts fails the test at once, with what it printed', { timeout: 60_000 }, async () => {
    const startedAt = Date.now();
    // Redis away: the api gives up as it starts
    await expect(startApiProcess({ ...env.env, REDIS_URL: 'redis://127.0.0.1:1' }, 1)).rejects.toThrow(/The api exited \(1\) before it was ready[\s\S]*Redis is not reachable/);
    // not after the 30 s an api that runs but is not ready is given
    expect(Date.now() - startedAt).toBeLessThan(25_000);
  });
});

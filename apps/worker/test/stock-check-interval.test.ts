import { createTestEnv, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('how often the stock check is due, as every worker exports it for StockCheckStale', () => {
  let env: TestEnv;
  const running: RunningWorkers[] = [];

  beforeAll(async () => {
    env = await createTestEnv('stock_check_interval');
  });

  afterAll(async () => {
    await Promise.all(running.map((workers) => workers.close()));
    await env?.cleanup();
  });

  const exported = async (overrides: { WORKER_QUEUES: string[]; RECONCILE_INTERVAL_MS: number }) => {
    const workers = startWorkers(connectWorker({ ...env.config, ...overrides }, pino({ level: 'silent' })));
    running.push(workers);
    return /^stock_reconcile_interval_seconds\{app="worker"\} (\S+)$/m.exec(await workers.deps.metrics.exposition())?.[1];
  };

  it('an hourly check is 3600 s, on the worker serving timers that schedules it and on one persisting orders alike', async () => {
    expect(await exported({ WORKER_QUEUES: ['timers'], RECONCILE_INTERVAL_MS: 3_600_000 })).toBe('3600');
    expect(await exported({ WORKER_QUEUES: ['orders'], RECONCILE_INTERVAL_MS: 3_600_000 })).toBe('3600');
  });

  it('a check turned off (RECONCILE_INTERVAL_MS=0) is 0: the alert then has nothing to wait for', async () => {
    expect(await exported({ WORKER_QUEUES: ['timers'], RECONCILE_INTERVAL_MS: 0 })).toBe('0');
  });
});

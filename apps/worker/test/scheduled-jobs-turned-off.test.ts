import { createTestEnv, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHECK = 'reconcile-stock';
const SWEEP = 'expire-overdue-orders';

describe('the stock check and the overdue-order sweep turned off (interval 0) on workers whose Redis still schedules them', () => {
  let env: TestEnv;
  const running = new Set<RunningWorkers>();

  beforeAll(async () => {
    env = await createTestEnv('scheduled_jobs_off');
  });

  afterAll(async () => {
    await Promise.all([...running].map(async (workers) => workers.close()));
    await env?.cleanup();
  });

  /** A worker serving `timers` with the two intervals given, and what it logs. */
  const startTimersWorker = (intervals: { RECONCILE_INTERVAL_MS: number; OVERDUE_SWEEP_INTERVAL_MS: number }) => {
    const lines: Array<{ level: number; msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const workers = startWorkers(connectWorker({ ...env.config, WORKER_QUEUES: ['timers'], ...intervals }, log));
    running.add(workers);
    return { workers, infos: () => lines.filter((line) => line.level === 30).map((line) => line.msg) };
  };
  const stop = async (workers: RunningWorkers) => {
    running.delete(workers);
    await workers.close();
  };

  const jobsOf = async (workers: RunningWorkers, name: string, states: Array<'waiting' | 'delayed' | 'active' | 'completed' | 'failed'>) =>
    (await workers.deps.queues.timers.getJobs(states)).filter((job) => job.name === name).length;
  const runsOf = async (workers: RunningWorkers, name: string) => jobsOf(workers, name, ['active', 'completed', 'failed']);
  /** Its schedule gone from Redis, and no run of it left waiting. */
  const unscheduled = async (workers: RunningWorkers, name: string) =>
    (await workers.deps.queues.timers.getJobScheduler(name)) === undefined && (await jobsOf(workers, name, ['waiting', 'delayed', 'active'])) === 0;
  const scheduled = async (workers: RunningWorkers) => (await workers.deps.queues.timers.getJobSchedulers()).map((scheduler) => scheduler.key).sort();
  const lastStockCheck = async (workers: RunningWorkers) => /^stock_reconcile_last_success_timestamp_seconds\{app="worker"\} (\S+)$/m.exec(await workers.deps.metrics.exposition())?.[1];
  const pause = async (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('a worker started with both off removes their schedules, says so once, and neither runs again', async () => {
    const before = startTimersWorker({ RECONCILE_INTERVAL_MS: 300, OVERDUE_SWEEP_INTERVAL_MS: 300 });
    await waitFor(async () => (await runsOf(before.workers, CHECK)) > 0 && (await runsOf(before.workers, SWEEP)) > 0, { what: 'a stock check and a sweep to run' });
    await stop(before.workers);

    const after = startTimersWorker({ RECONCILE_INTERVAL_MS: 0, OVERDUE_SWEEP_INTERVAL_MS: 0 });
    await waitFor(async () => (await unscheduled(after.workers, CHECK)) && (await unscheduled(after.workers, SWEEP)), { what: 'the schedules to leave Redis', timeoutMs: 15_000 });
    expect(await scheduled(after.workers)).toEqual([]);
    const checkedAt = await lastStockCheck(after.workers);
    const [checks, sweeps] = [await runsOf(after.workers, CHECK), await runsOf(after.workers, SWEEP)];

    // five intervals of the old schedule
    await pause(1_500);
    expect(await runsOf(after.workers, CHECK)).toBe(checks);
    expect(await runsOf(after.workers, SWEEP)).toBe(sweeps);
    expect(await lastStockCheck(after.workers)).toBe(checkedAt);
    expect(await after.workers.deps.metrics.exposition()).toMatch(/^stock_reconcile_interval_seconds\{app="worker"\} 0$/m);
    expect(after.infos().filter((msg) => msg.includes('removed its schedule from Redis'))).toEqual([
      'the stock reconciliation is off (RECONCILE_INTERVAL_MS=0): removed its schedule from Redis',
      'the overdue-order sweep is off (OVERDUE_SWEEP_INTERVAL_MS=0): removed its schedule from Redis',
    ]);
    await stop(after.workers);
  });

  it('during a rolling deploy, the stock check an old replica schedules again is removed by the first run a new replica takes, and not run', async () => {
    const old = startTimersWorker({ RECONCILE_INTERVAL_MS: 300, OVERDUE_SWEEP_INTERVAL_MS: 60_000 });
    await waitFor(async () => (await runsOf(old.workers, CHECK)) > 0, { what: 'a stock check to run' });
    const updated = startTimersWorker({ RECONCILE_INTERVAL_MS: 0, OVERDUE_SWEEP_INTERVAL_MS: 60_000 });
    // the old replica schedules it again every interval while it lives
    await pause(700);
    await stop(old.workers);
    // the gauge reads the report at most once a second: this read is of the old replica's last check
    await pause(1_100);
    const checkedAt = await lastStockCheck(updated.workers);

    await waitFor(async () => unscheduled(updated.workers, CHECK), { what: 'the stock check to leave Redis', timeoutMs: 15_000 });
    const checks = await runsOf(updated.workers, CHECK);
    await pause(1_500);
    expect(await scheduled(updated.workers)).toEqual([SWEEP]);
    expect(await runsOf(updated.workers, CHECK)).toBe(checks);
    expect(await lastStockCheck(updated.workers)).toBe(checkedAt);
  });
});

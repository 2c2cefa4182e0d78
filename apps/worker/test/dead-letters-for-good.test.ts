import { QUEUE, enqueuePersistOrder } from '@orders/queues';
import { createTestEnv, reservationOf, runOperatorCommand, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, workerLog, type RunningWorkers, type WorkerDeps } from '@orders/worker';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('every job BullMQ fails for good has one dead letter, whatever ended it', () => {
  let env: TestEnv;
  let deps: WorkerDeps;
  let workers: RunningWorkers | undefined;
  const lines: Array<{ level: number; msg: string }> = [];

  beforeAll(async () => {
    // three attempts; the sweeper (and the dead letters' backstop) look every second: the backstop copies a job failed
    // an interval ago, and on a loaded box the worker's own copy, as the job fails, could take longer than 200 ms
    env = await createTestEnv('dead_letters_for_good', { WORKER_QUEUES: 'orders', JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '50', STRANDED_ORDER_AFTER_MS: '500', SWEEP_INTERVAL_MS: '1000' });
    deps = connectWorker(env.config, workerLog('warn', { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) }));
  });

  afterAll(async () => {
    if (workers) await workers.close();
    else if (deps) await Promise.all([deps.queues.close(), deps.db.destroy()]).finally(() => deps.redis.disconnect());
    await env?.cleanup();
  });

  const deadLetters = async () => (await deps.queues.deadLetter.getJobs(['waiting'])).map((letter) => letter.data);
  /** A series' value on /metrics: `series` of the metric `name` (a histogram's `_count`, say), 0 while it has none. */
  const metric = async (name: string, labels: Record<string, string>, series = name) => {
    const { values } = await deps.metrics.registry.getSingleMetric(name)!.get();
    const wanted = values.filter((value) => Object.entries(labels).every(([label, is]) => value.labels[label] === is));
    return wanted.find((value) => ((value as { metricName?: string }).metricName ?? name) === series)?.value ?? 0;
  };
  const finalFailures = () => metric('job_failures_total', { queue: QUEUE.orders, name: 'persist-order', final: 'true' });

  /** The operator's `npm run dlq`, in its own process, against this test's queues. */
  const dlq = async (...args: string[]) => {
    const answer = await runOperatorCommand('dlq', args, env.env);
    expect(answer.exitCode, answer.output).toBe(0);
    return answer.stdout;
  };

  const accept = async (orderId: string, skuId: string) => {
    const { inventory, queues } = deps;
    const { order } = await inventory.reserveStock(reservationOf(`buyer-${orderId}`, [{ skuId, qty: 1 }], { orderId, idempotencyKey: orderId, bodyHash: orderId }));
    await enqueuePersistOrder(queues, order);
  };

  it('a persist job that workers holding it crashed on until BullMQ failed it gets a dead letter, and waits there for the operator: no sweep runs it behind their back', async () => {
    await deps.catalog.createSku(
      { skuId: 'MUG', title: 'Mug', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh', deduction: 'placement', flashSale: null },
      10,
      'opening-MUG',
      () => deps.inventory.initSku({ skuId: 'MUG', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 }),
    );
    await accept('01JSTA11ED0000000000000001', 'MUG');
    await stallTooOften(env, '01JSTA11ED0000000000000001');

    // a worker serving `orders` takes it next: BullMQ fails it there, on its first attempt of three
    workers = startWorkers(deps);
    const [letter] = await waitFor(async () => (await deadLetters()).length > 0 && deadLetters(), { what: 'a dead letter', timeoutMs: 10_000 });
    expect(letter).toMatchObject({ queue: QUEUE.orders, name: 'persist-order', jobId: '01JSTA11ED0000000000000001', failedReason: 'job stalled more than allowable limit', attemptsMade: 1 });
    expect(await finalFailures()).toBe(1);

    // three sweeps, each of which found the order accepted and not in MySQL
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const { queues, orders } = deps;
    expect(await queues.orders.getJobState('01JSTA11ED0000000000000001')).toBe('failed');
    expect(await orders.findOrderRow('01JSTA11ED0000000000000001')).toBeNull();
    expect(await metric('stranded_orders_recovered_total', {})).toBe(0);
    expect(await deadLetters()).toHaveLength(1);

    // the operator replays it: it runs once more, is written, and its old failure leaves no second dead letter
    expect(await dlq('replay', 'orders-01JSTA11ED0000000000000001')).toContain('retried job 01JSTA11ED0000000000000001 in place');
    await waitFor(async () => (await orders.findOrderRow('01JSTA11ED0000000000000001'))?.status === 'PENDING_PAYMENT', { what: 'the replayed order in MySQL', timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await deadLetters()).toEqual([]);
    expect(await finalFailures()).toBe(1);
    // it waited 3 s in the failed set, not in the queue: the replayed run is no queue lag
    expect(await metric('job_wait_seconds', { queue: QUEUE.orders, name: 'persist-order' }, 'job_wait_seconds_count')).toBe(0);
    // its worker copied it as it failed: nothing was left for a later round to copy
    expect(lines.filter((line) => line.level >= 50 || line.msg.startsWith('copied to the dead-letter queue'))).toEqual([]);
  });

  it('a job whose copy to the dead-letter queue Redis refused right after its last attempt is copied by a later round, once', async () => {
    workers ??= startWorkers(deps);
    const { queues, inventory } = deps;
    const failedBefore = await finalFailures();
    // a SKU Redis sells and MySQL has never heard of: every attempt fails
    await inventory.initSku({ skuId: 'ORPHAN', available: 5, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    // Redis refuses every add to the dead-letter queue while its id counter holds no number
    const counter = queues.deadLetter.toKey('id');
    await env.redis.set(counter, 'refused');
    await accept('01JREFVSED0000000000000001', 'ORPHAN');
    await waitFor(async () => lines.some((line) => line.msg.startsWith('could not copy the failed job to the dead-letter queue')), { what: 'the copy refused', timeoutMs: 10_000 });
    expect(await queues.orders.getJobState('01JREFVSED0000000000000001')).toBe('failed');
    expect(await deadLetters()).toEqual([]);

    await env.redis.del(counter);
    await waitFor(async () => (await deadLetters()).length === 1, { what: 'the dead letter copied by a later round', timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await deadLetters()).toEqual([
      expect.objectContaining({ queue: QUEUE.orders, name: 'persist-order', jobId: '01JREFVSED0000000000000001', failedReason: 'There is no SKU ORPHAN', attemptsMade: 3 }),
    ]);
    expect(await finalFailures()).toBe(failedBefore + 1);
  });
});

/**
 * What workers that crash holding a job leave, made by BullMQ itself: a worker takes the
 * waiting job and dies (never finishes it, never renews its lock); the stall check of a
 * worker allowing no stall takes it back once its lock expires, as stalled too often. The
 * next worker to take it fails it for that, whatever attempts it has left.
 */
async function stallTooOften(env: TestEnv, jobId: string): Promise<void> {
  const options = { connection: env.redis, prefix: env.config.QUEUE_PREFIX, lockDuration: 200, stalledInterval: 100, maxStalledCount: 0, autorun: false };
  const crashed = new Worker(QUEUE.orders, null, options);
  expect((await crashed.getNextJob('crashed', { block: false }))?.id).toBe(jobId);
  const checker = new Worker(QUEUE.orders, null, options);
  await checker.startStalledCheckTimer();
  await waitFor(async () => (await env.redis.hget(`${env.config.QUEUE_PREFIX}:${QUEUE.orders}:${jobId}`, 'defa')) !== null, { what: 'the job taken back as stalled too often', timeoutMs: 15_000 });
  await Promise.all([checker.close(), crashed.close()]);
}

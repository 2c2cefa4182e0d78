import { createMetrics, type OrderMetrics } from '@orders/metrics';
import { QUEUE, enqueuePersistOrder } from '@orders/queues';
import { createTestEnv, reservationOf, runOperatorCommand, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers, type WorkerDeps } from '@orders/worker';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetterBackstop } from '../src/dead-letter-backstop.js';

const silent = pino({ level: 'silent' });

describe('each dead letter is counted once as a final failure, whichever worker writes it', () => {
  let env: TestEnv;
  let deps: WorkerDeps;
  const replicas: RunningWorkers[] = [];

  beforeAll(async () => {
    // one attempt; the dead letters' backstop looks every 200 ms
    env = await createTestEnv('dead_letters_counted', { WORKER_QUEUES: 'orders', JOB_ATTEMPTS: '1', SWEEP_INTERVAL_MS: '200', STRANDED_ORDER_AFTER_MS: '500' });
    deps = connectWorker(env.config, silent);
    // a SKU Redis sells and MySQL has never heard of: its orders cannot be written
    await deps.inventory.initSku({ skuId: 'ORPHAN', available: 5, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
  });

  afterAll(async () => {
    if (replicas.length > 0) await Promise.all(replicas.map((replica) => replica.close()));
    else if (deps) await Promise.all([deps.queues.close(), deps.db.destroy()]).finally(() => deps.redis.disconnect());
    await env?.cleanup();
  });

  /** job_failures_total{final="true"} of persist-order, summed over processes as an operator's graph sums them. */
  const finalFailures = async (processes: OrderMetrics[]) => {
    let sum = 0;
    for (const metrics of processes) {
      const { values } = await metrics.registry.getSingleMetric('job_failures_total')!.get();
      sum += values.find((value) => value.labels.queue === QUEUE.orders && value.labels.name === 'persist-order' && value.labels.final === 'true')?.value ?? 0;
    }
    return sum;
  };
  const deadLetters = async () => (await deps.queues.deadLetter.getJobs(['waiting'])).map((letter) => letter.data.jobId);
  /** The operator's `npm run dlq`, in its own process, against this test's queues. */
  const dlq = async (...args: string[]) => {
    const answer = await runOperatorCommand('dlq', args, env.env);
    expect(answer.exitCode, answer.output).toBe(0);
    return answer.stdout;
  };

  /** An accepted order whose persist job a worker failed on its only attempt and was killed before its handler wrote the dead letter. */
  const failedByAKilledWorker = async (orderId: string) => {
    const { order } = await deps.inventory.reserveStock(reservationOf(`buyer-${orderId}`, [{ skuId: 'ORPHAN', qty: 1 }], { orderId, idempotencyKey: orderId, bodyHash: orderId }));
    await enqueuePersistOrder(deps.queues, order);
    const killed = new Worker(QUEUE.orders, null, { connection: env.redis, prefix: env.config.QUEUE_PREFIX, autorun: false });
    const job = await killed.getNextJob('killed', { block: false });
    expect(job?.id).toBe(orderId);
    await job!.moveToFailed(new Error('There is no SKU ORPHAN'), 'killed');
    await killed.close();
    expect(await deps.queues.orders.getJobState(orderId)).toBe('failed');
  };

  it('two replicas whose backstops look at the very same moment copy the letter, and count it once between them', async () => {
    await failedByAKilledWorker('01JK1LLED00000000000000001');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const processes = [createMetrics({ app: 'worker' }), createMetrics({ app: 'worker' })];
    const backstops = processes.map(
      (metrics) => new DeadLetterBackstop({ redis: env.redis, queues: [deps.queues.orders], deadLetter: deps.queues.deadLetter, metrics, log: silent }, { intervalMs: 10 }),
    );
    await Promise.all(backstops.map((backstop) => backstop.copyMissing()));
    expect(await deadLetters()).toEqual(['01JK1LLED00000000000000001']);
    expect(await finalFailures(processes)).toBe(1);
  });

  it('a job whose worker was killed right after it failed for good is counted once, by whichever of three running replicas copies it', async () => {
    await failedByAKilledWorker('01JK1LLED00000000000000002');
    replicas.push(startWorkers(deps), startWorkers(connectWorker(env.config, silent)), startWorkers(connectWorker(env.config, silent)));
    await waitFor(async () => (await deadLetters()).length === 2, { what: 'the dead letter copied by a backstop', timeoutMs: 20_000 });
    // five more rounds of each replica's backstop
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await deadLetters()).sort()).toEqual(['01JK1LLED00000000000000001', '01JK1LLED00000000000000002']);
    expect(await finalFailures(replicas.map((replica) => replica.deps.metrics))).toBe(1);
  });

  it('a replayed job that fails for good again is a new dead letter, counted again, once', async () => {
    expect(await dlq('replay', 'orders-01JK1LLED00000000000000002')).toContain('retried job 01JK1LLED00000000000000002 in place');
    // a replica runs it, fails it on its attempt, and writes its dead letter as it fails
    await waitFor(async () => (await deadLetters()).length === 2, { what: 'the second dead letter of the replayed job', timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await deadLetters()).toHaveLength(2);
    expect(await finalFailures(replicas.map((replica) => replica.deps.metrics))).toBe(2);
  });
});

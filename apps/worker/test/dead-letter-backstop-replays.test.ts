import { createMetrics } from '@orders/metrics';
import { QUEUE, createOrderQueues, enqueuePersistOrder, type OrderQueues } from '@orders/queues';
import { Inventory, checkoutTimeoutsOf } from '@orders/stock';
import { createTestEnv, reservationOf, runOperatorCommand, startFailingRedisLink, waitFor, type FailingRedisLink, type TestEnv } from '@orders/testing';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetterBackstop } from '../src/dead-letter-backstop.js';
import { writeDeadLetter, type FailedJob } from '../src/dead-letter-writer.js';

const ORDER = '01JBACKST0P000000000000001';

describe('the dead letters backstop, beside a replay slower than its interval', () => {
  let env: TestEnv;
  let link: FailingRedisLink;
  let queues: OrderQueues;
  let backstop: DeadLetterBackstop;
  const metrics = createMetrics({ app: 'worker' });

  beforeAll(async () => {
    env = await createTestEnv('backstop_replays', { JOB_ATTEMPTS: '1' });
    queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: env.config.JOB_ATTEMPTS, backoffMs: env.config.JOB_BACKOFF_MS });
    const redisUrl = new URL(env.config.REDIS_URL);
    link = await startFailingRedisLink({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
  });

  afterAll(async () => {
    await backstop?.stop();
    await link?.close();
    await queues?.close();
    await env?.cleanup();
  });

  /** The persist job's one attempt, failed by a worker killed before it wrote the dead letter. */
  const failedByAKilledWorker = async () => {
    const killed = new Worker(QUEUE.orders, null, { connection: env.redis, prefix: env.config.QUEUE_PREFIX, autorun: false });
    const job = await killed.getNextJob('killed', { block: false });
    expect(job?.id).toBe(ORDER);
    await job!.moveToFailed(new Error('There is no SKU ORPHAN'), 'killed');
    await killed.close();
    return (await queues.orders.getJob(ORDER)) as FailedJob;
  };

  it('copies the new failure of a job failed again while its replay was held up, over the letter that replay then leaves alone', async () => {
    const inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
    await inventory.initSku({ skuId: 'ORPHAN', available: 5, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    const { order } = await inventory.reserveStock(reservationOf('buyer-b', [{ skuId: 'ORPHAN', qty: 1 }], { orderId: ORDER, idempotencyKey: ORDER, bodyHash: ORDER }));
    await enqueuePersistOrder(queues, order);
    await writeDeadLetter({ redis: env.redis, deadLetter: queues.deadLetter, metrics }, QUEUE.orders, await failedByAKilledWorker());
    backstop = new DeadLetterBackstop({ redis: env.redis, queues: [queues.orders], deadLetter: queues.deadLetter, metrics, log: pino({ level: 'silent' }) }, { intervalMs: 200 }).start();

    // Redis answers the replay 2 s late from its retry on; meanwhile the job fails again, its worker killed
    const slow = link.delayAnswersAfter('failedReason', 2_000);
    const replaying = runOperatorCommand('dlq', ['replay', `orders-${ORDER}`], { ...env.env, REDIS_URL: `redis://127.0.0.1:${link.port}`, REDIS_COMMAND_TIMEOUT_MS: '30000' });
    await waitFor(async () => (await queues.orders.getJobState(ORDER)) === 'waiting', { what: 'the replay to put the job back' });
    const again = await failedByAKilledWorker();
    expect((await replaying).exitCode).toBe(0);
    await slow;

    // the backstop copies the new failure a round after it: under load, maybe only after the replay ended
    const letter = await waitFor(
      async () => {
        const found = await queues.deadLetter.getJob(`orders-${ORDER}`);
        return found?.data.failedAt === new Date(again.finishedOn).toISOString() && found;
      },
      { what: 'the letter of the new failure', timeoutMs: 10_000, explain: async () => JSON.stringify((await queues.deadLetter.getJob(`orders-${ORDER}`))?.data) },
    );
    expect(letter.data.failedAt).toBe(new Date(again.finishedOn).toISOString());
    expect(await queues.orders.getJobState(ORDER)).toBe('failed');
  });
});

import { createMetrics } from '@orders/metrics';
import { DeadLetterNotFound, DeadLetters, JOB, QUEUE, createOrderQueues, enqueueSendToWarehouse, type OrderQueues } from '@orders/queues';
import { connectRedis, type RedisClient } from '@orders/stock';
import { createTestEnv, startFailingRedisLink, type FailingRedisLink, type TestEnv } from '@orders/testing';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDeadLetter, type FailedJob } from '../src/dead-letter-writer.js';

/**
 * Two operators on one dead letter at once (npm run dlq and the console, each a DeadLetters on
 * its own connection), one of them held up by a slow link to Redis in the middle of its step:
 * whatever each is told it did is what became of the job.
 */
describe('a dead letter dropped by one operator while another replays it', () => {
  let env: TestEnv;
  let link: FailingRedisLink;
  let queues: OrderQueues;
  let behindLink: RedisClient;
  let slowQueues: OrderQueues;
  const metrics = createMetrics({ app: 'worker' });

  beforeAll(async () => {
    env = await createTestEnv('dead_letters_drop_replay', { JOB_ATTEMPTS: '1' });
    queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: env.config.JOB_ATTEMPTS, backoffMs: env.config.JOB_BACKOFF_MS });
    const redisUrl = new URL(env.config.REDIS_URL);
    link = await startFailingRedisLink({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    // as the api and npm run dlq connect, through the link
    behindLink = connectRedis({ ...env.config, REDIS_URL: `redis://127.0.0.1:${link.port}` }, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true, commandTimeout: 30_000 });
    await behindLink.connect();
    slowQueues = createOrderQueues(behindLink, { prefix: env.config.QUEUE_PREFIX, attempts: env.config.JOB_ATTEMPTS, backoffMs: env.config.JOB_BACKOFF_MS });
  });

  afterAll(async () => {
    await slowQueues?.close();
    behindLink?.disconnect();
    await link?.close();
    await queues?.close();
    await env?.cleanup();
  });

  /** An order's hand-over to its warehouse, failed for good (the warehouse away) and dead-lettered as its worker does. */
  const deadLetteredHandOver = async (orderId: string) => {
    await enqueueSendToWarehouse(queues, orderId);
    const worker = new Worker(QUEUE.fulfillment, null, { connection: env.redis, prefix: env.config.QUEUE_PREFIX, autorun: false });
    const job = await worker.getNextJob('warehouse-away', { block: false });
    expect(job?.id).toBe(`ship-${orderId}`);
    await job!.moveToFailed(new Error('the warehouse did not answer'), 'warehouse-away');
    await worker.close();
    await writeDeadLetter({ redis: env.redis, deadLetter: queues.deadLetter, metrics }, QUEUE.fulfillment, (await queues.fulfillment.getJob(`ship-${orderId}`)) as FailedJob);
    return { letterId: `${QUEUE.fulfillment}-ship-${orderId}`, jobId: `ship-${orderId}` };
  };

  /** What an operator is told: the step's outcome, or that the letter was not there (404). */
  const told = (step: Promise<string>) => step.catch((error: unknown) => (error instanceof DeadLetterNotFound ? 'not found' : Promise.reject(error)));

  /** What became of it: the job's state in its queue (unknown: not there), and the letters left. */
  const afterwards = async (jobId: string) => ({ job: await queues.fulfillment.getJobState(jobId), letters: await queues.deadLetter.getWaitingCount() });

  it('a drop held up after finding the job failed, while the replay puts it back: the replay is told the letter is gone, and the job stays dropped', async () => {
    const { letterId, jobId } = await deadLetteredHandOver('01JDROPRACE000000000000001');
    // the drop's look at the job's state reaches Redis; its answer, and the drop's next steps, come 3 s late
    const held = link.delayAnswersAfter(`${QUEUE.fulfillment}:waiting-children`, 3_000);
    const dropping = told(new DeadLetters(behindLink, slowQueues).drop(letterId));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const replaying = told(new DeadLetters(env.redis, queues).replay(letterId));
    await held;

    expect({ dropped: await dropping, replayed: await replaying, ...(await afterwards(jobId)) }).toEqual({
      dropped: `${letterId} (${QUEUE.fulfillment}/${JOB.sendToWarehouse}, order 01JDROPRACE000000000000001), and failed job ${jobId} of ${QUEUE.fulfillment}`,
      replayed: 'not found',
      job: 'unknown',
      letters: 0,
    });
  });

  it('a replay held up after finding the letter, while the drop runs: the drop is told the letter is gone, and the job is back in its queue', async () => {
    const { letterId, jobId } = await deadLetteredHandOver('01JDROPRACE000000000000002');
    // the replay's look at the letter reaches Redis; its answer, and the replay's next steps, come 3 s late
    const held = link.delayAnswersAfter(`${QUEUE.deadLetter}:wait`, 3_000);
    const replaying = told(new DeadLetters(behindLink, slowQueues).replay(letterId));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const dropping = told(new DeadLetters(env.redis, queues).drop(letterId));
    await held;

    expect({ replayed: await replaying, dropped: await dropping, ...(await afterwards(jobId)) }).toEqual({
      replayed: `${letterId} -> ${QUEUE.fulfillment}/${JOB.sendToWarehouse} (order 01JDROPRACE000000000000002): retried job ${jobId} in place`,
      dropped: 'not found',
      job: 'waiting',
      letters: 0,
    });
  });
});

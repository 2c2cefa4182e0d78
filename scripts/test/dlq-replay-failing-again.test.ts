import { CatalogRepository, OrderRepository } from '@orders/persistence';
import { createOrderQueues, type DeadLetterJob, type OrderQueues } from '@orders/queues';
import { Inventory, checkoutTimeoutsOf } from '@orders/stock';
import {
  createTestEnv,
  freePort,
  httpClient,
  runOperatorCommand,
  spawnApp,
  startFailingRedisLink,
  waitFor,
  type FailingRedisLink,
  type SpawnedProcess,
  type TestEnv,
} from '@orders/testing';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnwritableOrders } from './support/unwritable-orders.js';

describe('npm run dlq -- replay, when the job fails again at once or the replay stops half-way', () => {
  let env: TestEnv;
  let worker: SpawnedProcess;
  let link: FailingRedisLink;
  let queues: OrderQueues;
  let inventory: Inventory;
  let catalog: CatalogRepository;
  let unwritable: UnwritableOrders;
  let orders: OrderRepository;

  /** The command as an operator runs it, in its own process; `throughLink` reaches Redis through the failing link. */
  async function dlq(args: string[], { throughLink = false } = {}): Promise<{ exitCode: number | null; output: string }> {
    // through the link Redis answers slowly on purpose: its command timeout waits longer than the delays
    const { exitCode, output } = await runOperatorCommand('dlq', args, throughLink ? { ...env.env, REDIS_URL: `redis://127.0.0.1:${link.port}`, REDIS_COMMAND_TIMEOUT_MS: '30000' } : env.env);
    // the first line names the Redis and queue prefix it works on
    return { exitCode, output: output.replace(/^Redis at .*\n/, '') };
  }

  /** An order of a SKU sold only in Redis, its persist job failed for good. */
  async function deadLetteredOrder(orderId: string, skuId: string): Promise<Job<DeadLetterJob>> {
    await unwritable.sellOnlyInRedis(skuId);
    await unwritable.accept(orderId, skuId);
    return waitFor(async () => queues.deadLetter.getJob(`orders-${orderId}`), { what: `order ${orderId} to be dead-lettered`, timeoutMs: 20_000, explain: async () => worker.output().slice(-2000) });
  }

  beforeAll(async () => {
    // the backstop that copies failed jobs without a letter looks only once a minute: a letter seen here is the writer's
    env = await createTestEnv('dlq_replay_again', { JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50', SWEEP_INTERVAL_MS: '60000' });
    queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: env.config.JOB_ATTEMPTS, backoffMs: env.config.JOB_BACKOFF_MS });
    inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
    catalog = new CatalogRepository(env.db);
    unwritable = new UnwritableOrders({ inventory, catalog, queues });
    orders = new OrderRepository(env.db);
    const redisUrl = new URL(env.config.REDIS_URL);
    link = await startFailingRedisLink({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    const port = await freePort();
    worker = spawnApp('worker', { ...env.env, WORKER_QUEUES: 'orders', WORKER_METRICS_PORT: String(port) });
    const health = httpClient(`http://127.0.0.1:${port}`, 1);
    await waitFor(async () => (await health.request('GET', '/health/ready').catch(() => ({ status: 0 }))).status === 200, { what: 'the worker to be ready' });
    await health.close();
  });

  afterAll(async () => {
    await worker?.stop();
    await link?.close();
    await queues?.close();
    await env?.cleanup();
  });

  it('a job failing again before its replay removed the old letter keeps a letter, telling of the new failure', async () => {
    const first = await deadLetteredOrder('01JDLQAGAIN000000000000000', 'STILL-BROKEN');
    // Redis answers the replay slowly from its retry on: the job runs, and fails, meanwhile (the worker
    // runs both its attempts and writes the letter, seconds on a busy box; the command's command timeout is set past it)
    const slow = link.delayAnswersAfter('failedReason', 6_000);
    const replayed = await dlq(['replay', 'orders-01JDLQAGAIN000000000000000'], { throughLink: true });
    await slow;

    const letter = await queues.deadLetter.getJob('orders-01JDLQAGAIN000000000000000');
    expect(replayed.exitCode).toBe(0);
    expect(letter?.data.failedReason).toMatch(/There is no SKU STILL-BROKEN/);
    expect(Date.parse(letter!.data.failedAt)).toBeGreaterThan(Date.parse(first.data.failedAt));
    expect(await queues.orders.getJobState('01JDLQAGAIN000000000000000')).toBe('failed');
    expect(await queues.deadLetter.getWaitingCount()).toBe(1);
    expect(replayed).toEqual({
      exitCode: 0,
      output:
        'replayed orders-01JDLQAGAIN000000000000000 -> orders/persist-order (order 01JDLQAGAIN000000000000000): retried job 01JDLQAGAIN000000000000000 in place; it has failed again since, and its letter tells of that failure\n',
    });

    // and that letter replays as any other once the cause is fixed
    await unwritable.addToCatalog('STILL-BROKEN');
    expect((await dlq(['replay', 'orders-01JDLQAGAIN000000000000000'])).exitCode).toBe(0);
    await waitFor(async () => (await orders.findOrderRow('01JDLQAGAIN000000000000000'))?.status === 'PENDING_PAYMENT', { what: 'the replayed order to be written' });
    expect(await queues.deadLetter.getWaitingCount()).toBe(0);
  });

  it('a replay cut off after putting the job back leaves its letter; replaying that letter again after the job ran runs it again, and the order is written once', async () => {
    await deadLetteredOrder('01JDLQCUT00000000000000000', 'LATE-FIX');
    await unwritable.addToCatalog('LATE-FIX');
    // the retry reaches Redis, its answer does not reach the command: it fails before removing the letter
    const cut = link.breakAfter('failedReason', 1_000);
    const stopped = await dlq(['replay', 'orders-01JDLQCUT00000000000000000'], { throughLink: true });
    await cut;
    expect(stopped.exitCode).toBe(1);

    await waitFor(async () => (await orders.findOrderRow('01JDLQCUT00000000000000000'))?.status === 'PENDING_PAYMENT', { what: 'the order put back to be written' });
    await waitFor(async () => (await queues.orders.getJobState('01JDLQCUT00000000000000000')) === 'unknown', { what: 'the job to leave Redis once done' });
    expect((await dlq(['list'])).output).toContain('orders-01JDLQCUT00000000000000000');

    // the command cannot tell it put the job back (never remembered before it is: a job it never put back would be lost)
    expect(await dlq(['replay', 'orders-01JDLQCUT00000000000000000'])).toEqual({
      exitCode: 0,
      output: 'replayed orders-01JDLQCUT00000000000000000 -> orders/persist-order (order 01JDLQCUT00000000000000000): added again as job 01JDLQCUT00000000000000000\n',
    });
    await waitFor(async () => (await queues.orders.getJobState('01JDLQCUT00000000000000000')) === 'unknown', { what: 'the job run again to leave Redis' });
    expect(await queues.deadLetter.getWaitingCount()).toBe(0);
    const written = await env.db.selectFrom('orders').select(({ fn }) => fn.countAll<number>().as('n')).where('order_id', '=', '01JDLQCUT00000000000000000').executeTakeFirstOrThrow();
    expect(Number(written.n)).toBe(1);
  });
});

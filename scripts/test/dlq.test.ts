import { CatalogRepository, OrderRepository } from '@orders/persistence';
import { createOrderQueues, enqueueEffects, enqueueRefundPayments, moveToDeadLetter, type OrderQueues } from '@orders/queues';
import { Inventory, checkoutTimeoutsOf } from '@orders/stock';
import { createTestEnv, freePort, httpClient, runOperatorCommand, spawnApp, waitFor, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { UnrecoverableError, Worker, type Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnwritableOrders } from './support/unwritable-orders.js';

describe('npm run dlq: the operator inspects and replays dead letters', () => {
  let env: TestEnv;
  let worker: SpawnedProcess;
  let queues: OrderQueues;
  let inventory: Inventory;
  let catalog: CatalogRepository;
  let unwritable: UnwritableOrders;
  let orders: OrderRepository;
  /** The worker answers ready: the tests that need it wait for this, the others run while it starts. */
  let workerReady: Promise<void>;

  /** The command as an operator runs it, in its own process, against this test's Redis prefix. */
  async function dlq(...args: string[]): Promise<{ exitCode: number | null; output: string }> {
    const { exitCode, output } = await runOperatorCommand('dlq', args, env.env);
    return { exitCode, output };
  }

  /** What the command prints first: where it looks for the dead letters. */
  const actingOn = () => `Redis at ${env.config.REDIS_URL}, queue prefix ${env.config.QUEUE_PREFIX}\n`;

  const deadLetterCount = () => queues.deadLetter.getWaitingCount();

  /** A wait that, when it times out, says what the worker said. */
  const watchingWorker = <T>(waiting: Promise<T>) =>
    waiting.catch((error: Error) => {
      throw new Error(`${error.message}\nworker output:\n${worker.output().slice(-2000)}`);
    });

  beforeAll(async () => {
    env = await createTestEnv('dlq_command', { JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50' });
    queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: env.config.JOB_ATTEMPTS, backoffMs: env.config.JOB_BACKOFF_MS });
    inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
    catalog = new CatalogRepository(env.db);
    unwritable = new UnwritableOrders({ inventory, catalog, queues });
    orders = new OrderRepository(env.db);
    const port = await freePort();
    worker = spawnApp('worker', { ...env.env, WORKER_QUEUES: 'orders', WORKER_METRICS_PORT: String(port) });
    const health = httpClient(`http://127.0.0.1:${port}`, 1);
    workerReady = watchingWorker(
      waitFor(async () => (await health.request('GET', '/health/ready').catch(() => ({ status: 0 }))).status === 200, { what: 'the worker to be ready' }),
    ).then(() => health.close());
    // a worker that never gets ready fails the tests that wait for it, not the run
    workerReady.catch(() => {});
  });

  afterAll(async () => {
    await worker?.stop();
    await queues?.close();
    await env?.cleanup();
  });

  it('says so when there is nothing to replay', async () => {
    expect(await dlq('list')).toEqual({ exitCode: 0, output: `${actingOn()}The dead-letter queue is empty.\n` });
  });

  it('lists a dead letter with where it failed, the order it carries and why; after the fix, replay writes the order', async () => {
    await workerReady;
    await unwritable.sellOnlyInRedis('LOST-SKU');
    await unwritable.accept('01JDLQ0000000000000000000A', 'LOST-SKU');
    await watchingWorker(waitFor(async () => (await deadLetterCount()) === 1, { what: 'the order to be dead-lettered', timeoutMs: 20_000 }));

    const listed = await dlq('list');
    expect(listed.exitCode).toBe(0);
    expect(listed.output).toContain('1 dead letter, oldest first:');
    expect(listed.output).toMatch(/orders-01JDLQ0000000000000000000A\s+orders\/persist-order\s+order 01JDLQ0000000000000000000A\s+2\s+\S+\s+There is no SKU LOST-SKU/);

    await unwritable.addToCatalog('LOST-SKU');
    const replayed = await dlq('replay', 'orders-01JDLQ0000000000000000000A');
    expect(replayed).toEqual({
      exitCode: 0,
      output: `${actingOn()}replayed orders-01JDLQ0000000000000000000A -> orders/persist-order (order 01JDLQ0000000000000000000A): retried job 01JDLQ0000000000000000000A in place\n`,
    });
    await waitFor(async () => (await orders.findOrderRow('01JDLQ0000000000000000000A'))?.status === 'PENDING_PAYMENT', { what: 'the replayed order to be written' });
    expect(await deadLetterCount()).toBe(0);
  });

  it('replays every dead letter at once with replay-all', async () => {
    await workerReady;
    await unwritable.sellOnlyInRedis('LATE-SKU');
    await unwritable.accept('01JDLQ0000000000000000000B', 'LATE-SKU');
    await unwritable.accept('01JDLQ0000000000000000000C', 'LATE-SKU');
    await watchingWorker(waitFor(async () => (await deadLetterCount()) === 2, { what: 'both orders to be dead-lettered', timeoutMs: 20_000 }));

    await unwritable.addToCatalog('LATE-SKU');
    const replayed = await dlq('replay-all', '--yes');
    expect(replayed.exitCode).toBe(0);
    expect(replayed.output).toContain('2 dead letters replayed.');
    for (const orderId of ['01JDLQ0000000000000000000B', '01JDLQ0000000000000000000C']) {
      await waitFor(async () => (await orders.findOrderRow(orderId))?.status === 'PENDING_PAYMENT', { what: `order ${orderId} to be written` });
    }
    expect(await deadLetterCount()).toBe(0);
  });

  it('drops a dead letter whose work was done another way, with its failed job, so no worker copies it again; and refuses to drop one of accepted orders', async () => {
    await enqueueRefundPayments(queues, '01JDLQDROPPED000000000000A', 'cancelled by the buyer');
    const failed = await failForGood(queues.payments, 'the payment system refused the refund');
    const dropped = await dlq('drop', `payments-${failed}`, '--yes');
    expect(dropped).toEqual({ exitCode: 0, output: `${actingOn()}dropped payments-${failed} (payments/refund-payments, order 01JDLQDROPPED000000000000A), and failed job ${failed} of payments\n` });
    expect(await queues.payments.getFailedCount()).toBe(0);
    expect(await queues.deadLetter.getJob(`payments-${failed}`)).toBeUndefined();

    const accepted = { queue: 'orders', name: 'persist-order', jobId: '01JDLQDROPPED000000000000B', data: { orderId: '01JDLQDROPPED000000000000B' }, failedReason: 'MySQL away', attemptsMade: 2, failedAt: new Date().toISOString() };
    await queues.deadLetter.add('dead-letter', accepted, { jobId: 'orders-01JDLQDROPPED000000000000B' });
    const refused = await dlq('drop', 'orders-01JDLQDROPPED000000000000B', '--yes');
    expect(refused.exitCode).toBe(1);
    expect(refused.output).toContain('carries accepted orders (order 01JDLQDROPPED000000000000B): their buyers were told they are taken, and dropping it would lose them; fix the cause and replay it');
    expect(await queues.deadLetter.getJob('orders-01JDLQDROPPED000000000000B')).toBeDefined();
    await queues.deadLetter.remove('orders-01JDLQDROPPED000000000000B');
  });

  it('refuses an id that is not in the dead-letter queue, and a command it does not know', async () => {
    const [missing, unknown] = await Promise.all([dlq('replay', 'orders-nope'), dlq('purge')]);
    expect(missing).toEqual({
      exitCode: 1,
      output: `${actingOn()}Failed: there is no dead letter with id orders-nope (npm run dlq -- list shows them)\n`,
    });
    expect(unknown.exitCode).toBe(1);
    expect(unknown.output).toMatch(/^unknown command: purge\nusage: npm run dlq -- list \| replay <id> \| replay-all \[--yes\] \| drop <id> \[--yes\]\n/);
  });

  /** The waiting job of `queue` (no worker of this test serves it) fails for good, and its failure is copied to a dead letter, as a worker does. */
  async function failForGood(queue: Queue, reason: string): Promise<string> {
    const failing = new Worker(queue.name, null, { connection: env.redis, prefix: env.config.QUEUE_PREFIX, autorun: false });
    const job = await failing.getNextJob('failing', { block: false });
    await job!.moveToFailed(new UnrecoverableError(reason), 'failing');
    await failing.close();
    await moveToDeadLetter(queues.deadLetter, queue.name, (await queue.getJob(job!.id!))!);
    return job!.id!;
  }

  const waitingIds = async (queue: Queue) => (await queue.getJobs(['waiting', 'active', 'delayed', 'prioritized'])).map((job) => job.id).sort();

  it.each([
    { kind: 'refund', queue: () => queues.payments, enqueue: (orderId: string) => enqueueRefundPayments(queues, orderId, 'cancelled by the buyer') },
    {
      kind: 'warehouse update',
      queue: () => queues.fulfillment,
      enqueue: (orderId: string) => enqueueEffects(queues, { orderId, userId: 'buyer-1' }, ['updateFulfilment'], () => Promise.reject(new Error('no timer'))),
    },
  ])('replays a failed $kind job as its order\'s one $kind job at a time: never beside the job of the order waiting, nor beside one enqueued after the replay', async ({ queue: queueOf, enqueue }) => {
    const queue = queueOf();
    // order A: its job failed for good, and a later job of the order waits meanwhile
    await enqueue('01JDLQONEATATIME00000000AA');
    const failedA = await failForGood(queue, 'the system was away');
    await enqueue('01JDLQONEATATIME00000000AA');
    const [liveA] = await waitingIds(queue);
    const replayedA = await dlq('replay', `${queue.name}-${failedA}`);
    expect(replayedA.exitCode).toBe(0);
    expect(await waitingIds(queue)).toEqual([liveA]);
    expect(replayedA.output).toContain(`job ${liveA} of the order is waiting and does this letter's work; nothing added beside it`);
    await queue.remove(liveA!);

    // order B: replayed with no job of the order waiting, then the order asks for its job again while the replayed one waits
    await enqueue('01JDLQONEATATIME00000000BB');
    const failedB = await failForGood(queue, 'the system was away');
    const replayedB = await dlq('replay', `${queue.name}-${failedB}`);
    expect(replayedB.exitCode).toBe(0);
    const [replayedJob] = await waitingIds(queue);
    expect(replayedB.output).toContain(`added again as job ${replayedJob}`);
    await enqueue('01JDLQONEATATIME00000000BB');
    expect(await waitingIds(queue)).toEqual([replayedJob]);

    // no failure left without its letter for the backstop to copy again, and no letter left
    expect(await queue.getFailedCount()).toBe(0);
    expect(await deadLetterCount()).toBe(0);
    await queue.remove(replayedJob!);
  });
});

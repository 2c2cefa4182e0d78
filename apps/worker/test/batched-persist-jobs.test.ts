import { CatalogRepository } from '@orders/persistence';
import { PersistOrderBatcher, createOrderQueues, enqueuePersistOrder, enqueuePersistOrders, type OrderQueues } from '@orders/queues';
import { acceptedOrder, createTestEnv, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BUSY_INTERVAL_MS = 5_000;

describe('persist jobs that carry several orders (the intake batches one event-loop turn per job)', () => {
  let env: TestEnv;
  let queues: OrderQueues;
  let workers: RunningWorkers | undefined;
  const acceptedAt = new Date();

  const order = (n: number) => acceptedOrder('01JBATCH', n, acceptedAt);

  beforeAll(async () => {
    env = await createTestEnv('batched_persist_jobs', { PERSIST_BUSY_INTERVAL_MS: String(BUSY_INTERVAL_MS) });
    queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: 3, backoffMs: 50 });
    await new CatalogRepository(env.db).createSku(
      { skuId: 'MUG', title: 'Mug', priceCents: 1_200, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', deduction: 'placement', flashSale: null },
      100,
      'test',
      async () => undefined,
    );
  });

  afterAll(async () => {
    await workers?.close();
    await queues?.close();
    await env?.cleanup();
  });

  it('puts the 5 orders enqueued in one turn into 1 job, and 5 orders with at most 2 per job into 3 jobs', async () => {
    const oneJob = new PersistOrderBatcher(queues, 100);
    await Promise.all([1, 2, 3, 4, 5].map((n) => oneJob.enqueue(order(n))));
    expect(await queues.orders.getJobCounts('waiting')).toEqual({ waiting: 1 });

    const smallJobs = new PersistOrderBatcher(queues, 2);
    await Promise.all([6, 7, 8, 9, 10].map((n) => smallJobs.enqueue(order(n))));
    expect(await queues.orders.getJobCounts('waiting')).toEqual({ waiting: 4 });
  });

  it('writes each of 12 orders once although jobs deliver some of them 2 and 3 times', async () => {
    // the same orders again: a re-delivered batch, a replayed checkout, the sweeper's single job
    await enqueuePersistOrders(queues, [order(1), order(2), order(3), order(4), order(5)]);
    await enqueuePersistOrders(queues, [order(5), order(11), order(12)]);
    await enqueuePersistOrder(queues, order(1));

    workers = startWorkers(connectWorker(env.config, pino({ level: 'silent' })));
    await waitFor(async () => (await queues.orders.getJobCounts('waiting', 'active', 'delayed')).waiting === 0 && (await queues.orders.getJobCounts('active')).active === 0, {
      what: 'the orders queue to drain',
      timeoutMs: 20_000,
    });
    const orders = await env.db.selectFrom('orders').select(['order_id', 'status']).execute();
    expect(orders).toHaveLength(12);
    expect(new Set(orders.map((o) => o.status))).toEqual(new Set(['PENDING_PAYMENT']));
    const history = await env.db.selectFrom('order_history').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(history.n)).toBe(24);
    expect((await queues.orders.getJobCounts('failed')).failed).toBe(0);
    // every order has its payment-deadline timer, shared with the orders persisted in the same batch
    const timers = await queues.timers.getDelayed();
    const timed = new Set(timers.flatMap((job) => ('orders' in job.data ? job.data.orders.map((o) => o.orderId) : [job.data.orderId])));
    expect(timed).toEqual(new Set(orders.map((o) => o.order_id)));
    expect(timers.length).toBeLessThan(12);
  });

  it('writes a lone order at once, and a trickle of small jobs that keeps coming in one transaction per PERSIST_BUSY_INTERVAL_MS', async () => {
    const running = workers!;
    // a quiet spell: longer than the interval since the writer's last transaction
    await new Promise((resolve) => setTimeout(resolve, BUSY_INTERVAL_MS + 200));
    const before = await transactions(running);

    const startedAt = Date.now();
    await enqueuePersistOrder(queues, order(20));
    await waitFor(async () => (await statusOf(order(20).orderId)) === 'PENDING_PAYMENT', { what: 'the lone order in MySQL', timeoutMs: 20_000 });
    expect(Date.now() - startedAt).toBeLessThan(BUSY_INTERVAL_MS);

    // a sale's trickle: one small job every 50 ms, well within the interval
    const trickle = [21, 22, 23, 24, 25, 26, 27, 28, 29, 30];
    for (const n of trickle) {
      await enqueuePersistOrder(queues, order(n));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await waitFor(async () => (await Promise.all(trickle.map((n) => statusOf(order(n).orderId)))).every((status) => status === 'PENDING_PAYMENT'), {
      what: 'the trickle in MySQL',
      timeoutMs: 20_000,
    });
    // a commit is visible to this reader before the writer has its answer and counts the transaction
    await waitFor(async () => (await transactions(running)) - before >= 2, { what: 'both transactions counted', timeoutMs: 15_000 });
    expect((await transactions(running)) - before).toBe(2);
    const written = await env.db.selectFrom('orders').select('order_id').where('order_id', 'in', [20, ...trickle].map((n) => order(n).orderId)).execute();
    expect(written).toHaveLength(11);
  });

  const statusOf = async (orderId: string) => (await env.db.selectFrom('orders').select('status').where('order_id', '=', orderId).executeTakeFirst())?.status;

  const transactions = async (running: RunningWorkers) => {
    const text = await running.deps.metrics.registry.getSingleMetricAsString('persist_batch_size');
    return Number(/^persist_batch_size_count\{[^}]*\} (\d+)$/m.exec(text)?.[1]);
  };
});

import type { AcceptedOrder } from '@orders/domain';
import { CatalogRepository } from '@orders/persistence';
import { PersistOrderBatcher, createOrderQueues, enqueuePersistOrder, enqueuePersistOrders, type OrderQueues } from '@orders/queues';
import { buyerAddress, createTestEnv, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('persist jobs that carry several orders (the intake batches one event-loop turn per job)', () => {
  let env: TestEnv;
  let queues: OrderQueues;
  let workers: RunningWorkers | undefined;
  const acceptedAt = new Date();

  const order = (n: number): AcceptedOrder => ({
    orderId: `01JBATCH${String(n).padStart(18, '0')}`,
    userId: `batch-buyer-${n}`,
    type: 'standard',
    items: [{ skuId: 'MUG', qty: 1 }],
    address: buyerAddress,
    couponCode: null,
    acceptedAt: acceptedAt.toISOString(),
    paymentDeadline: new Date(acceptedAt.getTime() + 1_800_000).toISOString(),
  });

  beforeAll(async () => {
    env = await createTestEnv('batched_persist_jobs');
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
});

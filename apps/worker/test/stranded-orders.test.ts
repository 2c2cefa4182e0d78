import { buyerAddress, createSku, createTestEnv, signToken, startApiProcess, waitFor, type ApiProcess, type TestEnv } from '@orders/testing';
import { QUEUE, enqueuePersistOrder, jobId, ordersCarriedBy } from '@orders/queues';
import { connectWorker, startWorkers, workerLog, type RunningWorkers, type WorkerDeps } from '@orders/worker';
import type { AcceptedOrder } from '@orders/domain';
import type { Inventory } from '@orders/stock';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrandedOrderSweeper } from '../src/stranded-order-sweeper.js';
import { startIntakeAndWorkers, type IntakeAndWorkers } from './support/intake-and-workers.js';

/**
 * Each describe below has a database, prefixes and workers of its own, so the four run side by
 * side; the tests of the first share its workers and pause their queue, so they run one after
 * another.
 */
describe.concurrent('an accepted order whose job was lost', () => {
  let env: TestEnv;
  let http: ApiProcess;
  let workers: RunningWorkers;

  beforeAll(async () => {
    env = await createTestEnv('stranded_orders', { STRANDED_ORDER_AFTER_MS: '500', SWEEP_INTERVAL_MS: '200' });
    http = await startApiProcess(env.env, 10);
  });

  afterAll(async () => {
    await workers?.close();
    await http?.close();
    await env?.cleanup();
  });

  it.sequential('is found by the sweeper and persisted, so a 202 is never a lost order', async ({ expect }) => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await http.request('POST', '/v1/admin/skus', {
      token: admin,
      body: { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' },
    });
    const buyer = signToken(env.config.AUTH_JWT_SECRET, { sub: 'unlucky-buyer', role: 'buyer' });
    const checkout = await http.request('POST', '/v1/orders', {
      token: buyer,
      headers: { 'idempotency-key': 'kettle-1' },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress },
    });
    expect(checkout.status).toBe(202);
    // Redis lost the job after the reservation (an operator flushed the queue, a failover dropped it)
    await env.redis.del(`${env.config.QUEUE_PREFIX}:orders:wait`, `${env.config.QUEUE_PREFIX}:orders:${checkout.body.orderId}`);

    workers = startWorkers(connectWorker(env.config, pino({ level: 'silent' })));
    const order = await waitFor(
      async () => {
        const view = await http.request('GET', checkout.body.statusUrl, { token: buyer });
        return view.body.status === 'PENDING_PAYMENT' && view.body;
      },
      { what: 'the order in MySQL', timeoutMs: 15_000 },
    );
    expect(order.amounts.payableCents).toBe(3_000);
    expect(await recoveredCount()).toBe(1);
  });

  it.sequential('leaves an order that waits behind a backlog alone: its job is there, nothing is recovered', async ({ expect }) => {
    const buyer = signToken(env.config.AUTH_JWT_SECRET, { sub: 'patient-buyer', role: 'buyer' });
    // a backlog longer than STRANDED_ORDER_AFTER_MS: the job waits, the sweeper runs every 200 ms
    await workers.deps.queues.orders.pause();
    const checkout = await http.request('POST', '/v1/orders', {
      token: buyer,
      headers: { 'idempotency-key': 'kettle-2' },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress },
    });
    expect(checkout.status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await recoveredCount()).toBe(1);
    await workers.deps.queues.orders.resume();
    await waitFor(async () => (await http.request('GET', checkout.body.statusUrl, { token: buyer })).body.status === 'PENDING_PAYMENT', { what: 'the order in MySQL', timeoutMs: 15_000 });
    expect(await recoveredCount()).toBe(1);
  });

  it.sequential('leaves the orders of the intake\'s batch jobs alone while they wait behind a backlog, and forgets their jobs once they are in MySQL', async ({ expect }) => {
    await createLamp('LAMP-1');
    await workers.deps.queues.orders.pause();
    const orders = await checkoutMany('LAMP-1', 'waiting-buyer', 40);
    expect(await largestBatch()).toBeGreaterThan(1);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await recoveredCount()).toBe(1);
    await workers.deps.queues.orders.resume();
    await waitForPersisted(orders);
    expect(await recoveredCount()).toBe(1);
    expect(await env.redis.hlen(carriersKey())).toBe(0);
  });

  it.sequential('recovers every order of a batch job that was lost, each once', async ({ expect }) => {
    await createLamp('LAMP-2');
    await workers.deps.queues.orders.pause();
    const orders = await checkoutMany('LAMP-2', 'batch-lost-buyer', 30);
    const jobs = await workers.deps.queues.orders.getJobs(['wait']);
    const lost = jobs.reduce((largest, job) => (ordersCarriedBy(job.data).length > ordersCarriedBy(largest.data).length ? job : largest));
    const lostOrders = ordersCarriedBy(lost.data);
    expect(lostOrders.length).toBeGreaterThan(1);
    await lost.remove();
    await waitFor(async () => (await recoveredCount()) === 1 + lostOrders.length, { what: 'the lost batch\'s orders enqueued again', timeoutMs: 15_000 });
    await workers.deps.queues.orders.resume();
    await waitForPersisted(orders);
    expect(await recoveredCount()).toBe(1 + lostOrders.length);
    expect(await env.redis.hlen(carriersKey())).toBe(0);
  });

  it.sequential('reports an order lost, once, when Redis lost both its reservation and its job, and leaves one whose job still carries it to that job', async ({ expect }) => {
    await createLamp('LAMP-3');
    await workers.deps.queues.orders.pause();
    const [evicted] = await checkoutMany('LAMP-3', 'evicted-buyer', 1);
    const [carried] = await checkoutMany('LAMP-3', 'carried-buyer', 1);
    const idOf = (order: { statusUrl: string }) => order.statusUrl.split('/').pop()!;
    const { keys } = workers.deps.inventory;
    // both reservations evicted from Redis; the first order's job is gone too
    await env.redis.del(...[evicted!, carried!].map((order) => keys.order(keys.groupOfOrder(idOf(order)), idOf(order))));
    const jobs = await workers.deps.queues.orders.getJobs(['wait']);
    await Promise.all(jobs.filter((job) => ordersCarriedBy(job.data).includes(idOf(evicted!))).map((job) => job.remove()));

    await waitFor(async () => (await lostCount()) === 1, { what: 'the order reported lost', timeoutMs: 15_000 });
    expect(await workers.deps.inventory.awaitsPersisting(idOf(evicted!))).toBe(false);
    expect(await workers.deps.inventory.awaitsPersisting(idOf(carried!))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await lostCount()).toBe(1);
    await workers.deps.queues.orders.resume();
    await waitForPersisted([carried!]);
    expect(await lostCount()).toBe(1);
    expect(await env.redis.hlen(carriersKey())).toBe(0);
  });

  const createLamp = (skuId: string) =>
    createSku(http, signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' }), {
      skuId,
      title: 'Lamp',
      priceCents: 2_000,
      merchantId: 'shop',
      channel: 'self',
      warehouseId: 'wh-west',
      stock: 100,
      deduction: 'placement',
    });

  /** Buyers at once, so the intake puts several orders accepted in one turn into one job. */
  const checkoutMany = async (skuId: string, buyerPrefix: string, count: number) => {
    const answers = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const token = signToken(env.config.AUTH_JWT_SECRET, { sub: `${buyerPrefix}-${i}`, role: 'buyer' });
        const answer = await http.request('POST', '/v1/orders', {
          token,
          headers: { 'idempotency-key': `${skuId}-${i}` },
          body: { items: [{ skuId, qty: 1 }], address: buyerAddress },
        });
        return { status: answer.status, statusUrl: answer.body.statusUrl as string, token };
      }),
    );
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 202));
    return answers;
  };

  const largestBatch = async () => {
    const jobs = await workers.deps.queues.orders.getJobs(['wait']);
    return Math.max(...jobs.map((job) => ordersCarriedBy(job.data).length));
  };

  const waitForPersisted = (orders: Array<{ statusUrl: string; token: string }>) =>
    waitFor(
      async () => {
        const views = await Promise.all(orders.map((order) => http.request('GET', order.statusUrl, { token: order.token })));
        return views.every((view) => view.body.status === 'PENDING_PAYMENT');
      },
      { what: 'every order in MySQL', timeoutMs: 15_000 },
    );

  const carriersKey = () => carriersKeyOf(workers);
  const recoveredCount = () => counterValue(workers, 'stranded_orders_recovered_total');
  const lostCount = () => counterValue(workers, 'accepted_orders_lost_total');
});

describe.concurrent('accepted orders whose job failed after Redis lost their reservations', () => {
  let system: IntakeAndWorkers;

  beforeAll(async () => {
    system = await startIntakeAndWorkers('stranded_failed', { STRANDED_ORDER_AFTER_MS: '500', SWEEP_INTERVAL_MS: '200', JOB_ATTEMPTS: '1' });
  });
  afterAll(async () => system?.close());

  it('leave the accepted set and the carrier hash, are not reported lost, and their dead letter stands for them', async ({ expect }) => {
    const { env, http, workers } = system;
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(http, admin, { skuId: 'VASE', title: 'Vase', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 40, deduction: 'placement' });
    await workers.deps.queues.orders.pause();
    // buyers at once, so the intake puts several of their orders into one batch job (as many as
    // checkoutMany's, for a loaded machine spreads a few requests over several batches)
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        http.request('POST', '/v1/orders', {
          token: signToken(env.config.AUTH_JWT_SECRET, { sub: `vase-buyer-${i}`, role: 'buyer' }),
          headers: { 'idempotency-key': `vase-${i}` },
          body: { items: [{ skuId: 'VASE', qty: 1 }], address: buyerAddress },
        }),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 202));
    const orderIds = answers.map((answer) => answer.body.orderId as string);
    const jobs = await workers.deps.queues.orders.getJobs(['wait']);
    expect(Math.max(...jobs.map((job) => ordersCarriedBy(job.data).length))).toBeGreaterThan(1);
    expect(await env.redis.hlen(carriersKeyOf(workers))).toBeGreaterThan(0);
    // Redis lost their reservations, and they cannot be priced (their SKU is gone from MySQL): the jobs fail
    const { keys } = workers.deps.inventory;
    await env.redis.del(...orderIds.map((orderId) => keys.order(keys.groupOfOrder(orderId), orderId)));
    await env.db.deleteFrom('skus').where('sku_id', '=', 'VASE').execute();
    await workers.deps.queues.orders.resume();

    for (const orderId of orderIds) {
      await waitFor(async () => !(await workers.deps.inventory.awaitsPersisting(orderId)), { what: `${orderId} out of the accepted set`, timeoutMs: 15_000 });
    }
    // the sweeper forgets a dropped order's job right after taking it out of the set
    await waitFor(async () => (await env.redis.hlen(carriersKeyOf(workers))) === 0, { what: 'the carrier hash empty', timeoutMs: 15_000 });
    expect(await counterValue(workers, 'accepted_orders_lost_total')).toBe(0);
    const inDeadLetters = async () => (await workers.deps.queues.deadLetter.getJobs(['waiting'])).flatMap((letter) => ordersCarriedBy(letter.data.data)).sort();
    await waitFor(async () => (await inDeadLetters()).length === orderIds.length, { what: 'every order in a dead letter', timeoutMs: 15_000 });
    expect(await inDeadLetters()).toEqual([...orderIds].sort());
    expect(await env.db.selectFrom('orders').select('order_id').execute()).toEqual([]);
  });
});

describe.concurrent('accepted orders whose persist jobs crashed workers held until BullMQ failed them, left without a dead letter, swept by both orders replicas at once', () => {
  const ORDERS = 20;
  let env: TestEnv;
  let replicas: RunningWorkers[] = [];

  beforeAll(async () => {
    env = await createTestEnv('stranded_stalled', { WORKER_QUEUES: 'orders', STRANDED_ORDER_AFTER_MS: '500', SWEEP_INTERVAL_MS: '200' });
  });
  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.close()));
    await env?.cleanup();
  });

  it('get one dead letter each, though both replicas look at once, and wait there for the operator: neither runs them again', async ({ expect }) => {
    const lines: Array<{ level: number; msg: string }> = [];
    const log = workerLog('warn', { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const [first, second] = [connectWorker(env.config, log), connectWorker(env.config, log)];
    const { inventory, catalog, queues } = first;
    await catalog.createSku(
      { skuId: 'MUG', title: 'Mug', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh', deduction: 'placement', flashSale: null },
      ORDERS,
      'opening-MUG',
      () => inventory.initSku({ skuId: 'MUG', available: ORDERS, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 }),
    );
    const orderIds: string[] = [];
    for (let i = 0; i < ORDERS; i++) {
      const order = await acceptOne(inventory, 'MUG', `01JSTA11ED${String(i).padStart(16, '0')}`, `mug-buyer-${i}`);
      await enqueuePersistOrder(queues, order);
      orderIds.push(order.orderId);
    }
    await failByStalls(env, ORDERS);
    expect(await queues.deadLetter.getJobs(['waiting'])).toEqual([]);

    // two replicas serving `orders`, started together: they look at the same moments
    replicas = [startWorkers(first), startWorkers(second)];
    const deadLetters = async () => (await queues.deadLetter.getJobs(['waiting'])).map((letter) => letter.data);
    await waitFor(async () => (await deadLetters()).length === ORDERS, { what: 'every job in a dead letter', timeoutMs: 10_000 });
    // five sweeps more, each of which found the orders accepted and not in MySQL
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const letters = await deadLetters();
    expect(letters.map((letter) => letter.jobId).sort()).toEqual(orderIds);
    expect(new Set(letters.map((letter) => letter.failedReason))).toEqual(new Set(['job stalled more than allowable limit']));
    const recovered = await Promise.all(replicas.map((replica) => counterValue(replica, 'stranded_orders_recovered_total')));
    expect(recovered[0]! + recovered[1]!).toBe(0);
    expect(await env.db.selectFrom('orders').select('order_id').execute()).toEqual([]);
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
  });
});

describe.concurrent('an accepted order stranded behind more orders whose jobs failed than a sweep reads', () => {
  const FAILED = 6;
  let env: TestEnv;
  let deps: WorkerDeps;

  beforeAll(async () => {
    env = await createTestEnv('stranded_behind_failed', { WORKER_QUEUES: 'orders' });
    deps = connectWorker(env.config, pino({ level: 'silent' }));
  });
  afterAll(async () => {
    if (deps) await Promise.all([deps.queues.close(), deps.db.destroy()]).finally(() => deps.redis.disconnect());
    await env?.cleanup();
  });

  it('is read by a later sweep, which goes on past the failed ones (they wait in the dead letters), and gets its job', async ({ expect }) => {
    const { inventory, catalog, queues } = deps;
    await catalog.createSku(
      { skuId: 'JUG', title: 'Jug', priceCents: 1_200, merchantId: 'shop', channel: 'self', warehouseId: 'wh', deduction: 'placement', flashSale: null },
      FAILED + 1,
      'opening-JUG',
      () => inventory.initSku({ skuId: 'JUG', available: FAILED + 1, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 }),
    );
    const accept = (i: number) => acceptOne(inventory, 'JUG', `01JSTRANDED${String(i).padStart(15, '0')}`, `jug-buyer-${i}`);
    // the oldest orders' jobs failed for good (MySQL was away through their attempts)
    for (let i = 0; i < FAILED; i++) await enqueuePersistOrder(queues, await accept(i));
    let failed = 0;
    const failing = new Worker(QUEUE.orders, async () => Promise.reject(new UnrecoverableError('MySQL away')), { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
    failing.on('failed', () => void (failed += 1));
    await waitFor(async () => failed === FAILED, { what: 'the oldest jobs failed' });
    await failing.close();
    // the newest one's enqueue failed after its reservation
    const stranded = await accept(FAILED);

    const sweeper = new StrandedOrderSweeper(deps, { intervalMs: 60_000, strandedAfterMs: 0, pageSize: 4 });
    expect(await sweeper.sweep()).toBe(0);
    expect(await sweeper.sweep()).toBe(1);
    expect(await queues.orders.getJobState(jobId.persistOrder(stranded.orderId))).toBe('waiting');
    // back at the oldest: the failed ones are left to the operator, the stranded one has its job
    expect(await sweeper.sweep()).toBe(0);
    expect(await sweeper.sweep()).toBe(0);
    expect(await queues.orders.getJobCounts('failed', 'waiting')).toEqual({ failed: FAILED, waiting: 1 });
  });
});

/** A checkout of one unit of `skuId` reserved in Redis, as the intake reserves it, and not enqueued. */
async function acceptOne(inventory: Inventory, skuId: string, orderId: string, userId: string): Promise<AcceptedOrder> {
  const key = `${userId}-${skuId}`;
  const { order } = await inventory.reserveStock({ orderId, userId, idempotencyKey: key, bodyHash: key, requestedType: null, items: [{ skuId, qty: 1 }], payload: { address: buyerAddress, couponCode: null }, now: new Date() });
  return order;
}

/**
 * What workers that crash holding jobs leave, made by BullMQ itself: a worker takes every
 * waiting persist job and dies (never finishes them, never renews their locks); another,
 * allowing no stall, takes them back once their locks expire and fails them as stalled too
 * often, with none of their attempts used, and dies before copying them to the dead letters.
 */
async function failByStalls(env: TestEnv, count: number): Promise<void> {
  const options = { connection: env.redis, prefix: env.config.QUEUE_PREFIX, lockDuration: 200, stalledInterval: 100, maxStalledCount: 0 };
  const crashed = new Worker(QUEUE.orders, null, { ...options, autorun: false });
  for (let i = 0; i < count; i++) expect(await crashed.getNextJob(`crashed-${i}`, { block: false })).toBeDefined();
  const failed: Job[] = [];
  const checker = new Worker(QUEUE.orders, async () => Promise.reject(new Error('run, not failed for its stalls')), options);
  checker.on('failed', (job) => void (job && failed.push(job)));
  await waitFor(async () => failed.length === count, { what: 'the stalled jobs failed', timeoutMs: 10_000 });
  await Promise.all([checker.close(), crashed.close()]);
  expect(new Set(failed.map((job) => job.failedReason))).toEqual(new Set(['job stalled more than allowable limit']));
}

const carriersKeyOf = (workers: RunningWorkers) => workers.deps.queues.orders.toKey('order-carriers');

const counterValue = async (workers: RunningWorkers, name: string) => {
  const text = await workers.deps.metrics.registry.getSingleMetricAsString(name);
  return Number(new RegExp(`^${name}\\{app="worker"\\} (\\d+)$`, 'm').exec(text)?.[1]);
};

import type { AcceptedOrder } from '@orders/domain';
import { CatalogRepository, OrderRepository, PricingRepository } from '@orders/persistence';
import { enqueuePersistOrders } from '@orders/queues';
import { acceptedOrder, createTestEnv, waitFor, type TestEnv } from '@orders/testing';
import { OrderWriter, connectWorker, startWorkers, workerLog, type RunningWorkers, type WorkerDeps } from '@orders/worker';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Three persist jobs the worker gathers into one batch; one order of the second job is one
 * MySQL refuses on its own (here a trigger answers ER_DATA_TOO_LONG for its buyer, as strict
 * mode answers a value too long for its column, or a CHECK constraint its row breaks). The
 * orders of the other jobs did nothing wrong: they must be written, and no dead letter hold them.
 */
describe('one order MySQL refuses in a persist batch', () => {
  let env: TestEnv;
  let deps: WorkerDeps;
  let workers: RunningWorkers | undefined;
  const acceptedAt = new Date();
  const order = (n: number, userId = `buyer-${n}`) => acceptedOrder('01JBAD', n, acceptedAt, { userId });

  beforeAll(async () => {
    env = await createTestEnv('one_bad_order', { WORKER_QUEUES: 'orders', JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '50', PERSIST_BATCH_WAIT_MS: '200', STRANDED_ORDER_AFTER_MS: '3600000' });
    await new CatalogRepository(env.db).createSku(
      { skuId: 'MUG', title: 'Mug', priceCents: 1_200, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', deduction: 'placement', flashSale: null },
      1_000,
      'opening',
      async () => undefined,
    );
    // this test's own database: its orders table refuses the row of one buyer
    await sql
      .raw(
        `CREATE TRIGGER refuse_one_order BEFORE INSERT ON orders FOR EACH ROW
         IF NEW.user_id = 'refused-buyer' THEN SIGNAL SQLSTATE '22001' SET MESSAGE_TEXT = 'Data too long for column', MYSQL_ERRNO = 1406; END IF`,
      )
      .execute(env.db);
    deps = connectWorker(env.config, workerLog('silent'));
  });

  afterAll(async () => {
    if (workers) await workers.close();
    else if (deps) await Promise.all([deps.queues.close(), deps.db.destroy()]).finally(() => deps.redis.disconnect());
    await env?.cleanup();
  });

  it('writes the other orders of its batch, of its own job too: only the job holding it fails for good, and only its orders are in the dead letter', async () => {
    const jobA = [1, 2, 3, 4, 5].map((n) => order(n));
    const jobB = [6, 7, 8, 9].map((n) => order(n)).concat(order(10, 'refused-buyer'));
    const jobC = [11, 12, 13, 14, 15].map((n) => order(n));
    for (const job of [jobA, jobB, jobC]) await enqueuePersistOrders(deps.queues, job);
    workers = startWorkers(deps);

    const deadLettered = async () => (await deps.queues.deadLetter.getJobs(['waiting'])).flatMap((letter) => (letter.data as { data: { orders: AcceptedOrder[] } }).data.orders).map((o) => o.orderId);
    // job B fails for good (3 attempts): by then the others had every chance
    await waitFor(async () => (await deps.queues.orders.getJobCounts('failed')).failed! >= 1, { what: 'job B failed for good', timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const written = (await env.db.selectFrom('orders').select('order_id').execute()).map((row) => row.order_id);
    const failed = await deps.queues.orders.getJobCounts('failed');
    expect(written.sort()).toEqual([...jobA, ...jobC, ...jobB.slice(0, 4)].map((o) => o.orderId).sort());
    expect(failed.failed).toBe(1);
    expect((await deadLettered()).sort()).toEqual(jobB.map((o) => o.orderId).sort());
  }, 60_000);

  it('refuses alone an order whose SKU MySQL does not know, before writing: the rest of its batch is written', async () => {
    const gone: AcceptedOrder = { ...order(30), items: [{ skuId: 'GONE', qty: 1 }] };
    const jobA = [21, 22, 23, 24, 25].map((n) => order(n));
    const jobB = [26, 27, 28, 29].map((n) => order(n)).concat(gone);
    const jobC = [31, 32, 33, 34, 35].map((n) => order(n));
    const before = (await deps.queues.orders.getJobCounts('failed')).failed!;
    for (const job of [jobA, jobB, jobC]) await enqueuePersistOrders(deps.queues, job);
    await waitFor(async () => (await deps.queues.orders.getJobCounts('failed')).failed! > before, { what: 'job B failed for good', timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const ids = [...jobA, ...jobB, ...jobC].map((o) => o.orderId);
    const written = (await env.db.selectFrom('orders').select('order_id').where('order_id', 'in', ids).execute()).map((row) => row.order_id);
    expect(written.sort()).toEqual([...jobA, ...jobC, ...jobB.slice(0, 4)].map((o) => o.orderId).sort());
    expect((await deps.queues.orders.getJobCounts('failed')).failed).toBe(before + 1);
  }, 60_000);

  it('writes a batch MySQL refuses whole (a node not ready, no order of its own) no more times than before: it is not halved down to every order', async () => {
    await sql.raw(`CREATE TRIGGER refuse_every_order BEFORE INSERT ON orders FOR EACH ROW SIGNAL SQLSTATE '08S01' SET MESSAGE_TEXT = 'WSREP has not yet prepared node for application use', MYSQL_ERRNO = 1047`).execute(env.db);
    try {
      let writes = 0;
      const persist = deps.orders.persistAcceptedOrders.bind(deps.orders);
      // counted as they reach MySQL, which refuses each whole
      deps.orders.persistAcceptedOrders = (batch, now) => ((writes += 1), persist(batch, now));
      const writer = new OrderWriter({ ...deps, pricing: new PricingRepository(deps.db) }, { batchSize: 64, batchWaitMs: 200, busyIntervalMs: 0 });
      const outcomes = await Promise.allSettled(Array.from({ length: 64 }, (_, i) => writer.persist(order(100 + i))));
      expect(outcomes.map((outcome) => outcome.status)).toEqual(outcomes.map(() => 'rejected'));
      expect(writes).toBe(1);
    } finally {
      deps.orders.persistAcceptedOrders = OrderRepository.prototype.persistAcceptedOrders.bind(deps.orders);
      await sql.raw('DROP TRIGGER refuse_every_order').execute(env.db);
    }
  });
});

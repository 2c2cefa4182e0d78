import { QUEUE, enqueuePersistOrder } from '@orders/queues';
import { createTestEnv, reservationOf, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe("a job failing on a MySQL error that quotes a buyer's data", () => {
  let env: TestEnv;
  let workers: RunningWorkers;

  beforeAll(async () => {
    env = await createTestEnv('buyer_data_in_failed_jobs', { JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '50' });
    workers = startWorkers(connectWorker(env.config, pino({ level: 'silent' })));
  });

  afterAll(async () => {
    await workers?.close();
    await env?.cleanup();
  });

  it("keeps in Redis, and in its dead letter, the error's code and none of the buyer's name, phone or street", async () => {
    const { inventory, queues, catalog, orders } = workers.deps;
    // a unique key on the delivery address stands for any key whose value MySQL quotes: the buyer's second order is a duplicate entry
    await sql`ALTER TABLE orders ADD UNIQUE KEY one_order_per_address (address(255))`.execute(env.db);
    await catalog.createSku(
      { skuId: 'KETTLE', title: 'Kettle', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh', deduction: 'placement', flashSale: null },
      10,
      'opening-KETTLE',
      () => inventory.initSku({ skuId: 'KETTLE', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 }),
    );
    const address = { name: "Grace O'Neill", phone: '+44 7700 900123', line1: '7 Quay Street', city: 'Bristol', postalCode: 'BS1 4DJ', country: 'GB' };
    const accept = async (orderId: string) => {
      const { order } = await inventory.reserveStock(reservationOf('buyer-grace', [{ skuId: 'KETTLE', qty: 1 }], { orderId, idempotencyKey: orderId, bodyHash: orderId, payload: { address, couponCode: null } }));
      await enqueuePersistOrder(queues, order);
    };
    await accept('01JFIRSTKETTLE000000000000');
    await waitFor(() => orders.findOrderRow('01JFIRSTKETTLE000000000000'), { what: 'the first order written' });
    await accept('01JSECONDKETTLE00000000000');

    const dead = await waitFor(() => queues.deadLetter.getJob(`${QUEUE.orders}-01JSECONDKETTLE00000000000`), { what: 'the dead letter', timeoutMs: 15_000 });
    const failed = await queues.orders.getJob('01JSECONDKETTLE00000000000');
    expect(dead.data).toMatchObject({ attemptsMade: 3, failedReason: 'ER_DUP_ENTRY: Duplicate entry …' });
    expect(failed).toMatchObject({ attemptsMade: 3, failedReason: 'ER_DUP_ENTRY: Duplicate entry …' });
    // one stack per attempt, its frames kept to find the statement's caller
    expect(failed?.stacktrace).toEqual(Array(3).fill(expect.stringMatching(/^Error: ER_DUP_ENTRY: Duplicate entry …\n {4}at /)));
    // BullMQ's event stream carries each attempt's failedReason too
    const events = await env.redis.xrange(`${env.config.QUEUE_PREFIX}:${QUEUE.orders}:events`, '-', '+');
    const kept = JSON.stringify({ failedReason: failed?.failedReason, stacktrace: failed?.stacktrace, deadLetter: dead.data.failedReason, events });
    expect(kept).toContain('ER_DUP_ENTRY');
    for (const value of ["O'Neill", '7700 900123', 'Quay Street', 'BS1 4DJ', 'Bristol']) expect(kept).not.toContain(value);
    expect(await orders.findOrderRow('01JSECONDKETTLE00000000000')).toBeNull();
  });
});

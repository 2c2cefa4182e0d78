import { JOB, PERSIST_ORDERS_JOB, QUEUE, enqueuePersistOrder } from '@orders/queues';
import { createTestEnv, reservationOf, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('a job that fails every attempt', () => {
  let env: TestEnv;
  let workers: RunningWorkers;

  beforeAll(async () => {
    // the stranded-order sweeper looks every 200 ms for orders accepted 500 ms ago and not yet in MySQL
    env = await createTestEnv('dead_letter', { JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '50', STRANDED_ORDER_AFTER_MS: '500', SWEEP_INTERVAL_MS: '200' });
    workers = startWorkers(connectWorker(env.config, pino({ level: 'silent' })));
  });

  afterAll(async () => {
    await workers?.close();
    await env?.cleanup();
  });

  it('reports every job of the queues it serves as failed 0 times from its start, so the first dead letter is an increase the alert sees', async () => {
    const scrape = await workers.deps.metrics.exposition();
    for (const name of [...Object.values(JOB), PERSIST_ORDERS_JOB]) {
      expect(scrape, name).toMatch(new RegExp(`^job_failures_total\\{queue="\\w+",name="${name}",final="true",app="worker"\\} 0$`, 'm'));
    }
  });

  it('lands in the dead-letter queue with its reason, and holds back no other order', async () => {
    const { inventory, queues, catalog } = workers.deps;
    // a SKU that Redis sells but MySQL has never heard of: the order cannot be priced
    await inventory.initSku({ skuId: 'ORPHAN', available: 5, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    await catalog.createSku(
      { skuId: 'FINE', title: 'Fine', priceCents: 100, merchantId: 'shop', channel: 'self', warehouseId: 'wh', deduction: 'placement', flashSale: null },
      5,
      'opening-FINE',
      () => inventory.initSku({ skuId: 'FINE', available: 5, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 }),
    );
    const accept = async (orderId: string, skuId: string) => {
      const { order } = await inventory.reserveStock(reservationOf('buyer-1', [{ skuId, qty: 1 }], { orderId, idempotencyKey: orderId, bodyHash: orderId }));
      await enqueuePersistOrder(queues, order);
    };
    await accept('01JBADBADBADBADBADBADBADBA', 'ORPHAN');
    await accept('01JG00DG00DG00DG00DG00DG00', 'FINE');

    const dead = await waitFor(async () => (await queues.deadLetter.getJobs(['waiting'])).at(0), { what: 'a dead letter', timeoutMs: 15_000 });
    expect(dead?.data).toMatchObject({
      queue: QUEUE.orders,
      name: 'persist-order',
      jobId: '01JBADBADBADBADBADBADBADBA',
      attemptsMade: 3,
      failedReason: 'There is no SKU ORPHAN',
    });
    // the good order is written on its own, in no order with the bad one's dead letter
    await waitFor(async () => (await workers.deps.orders.findOrderRow('01JG00DG00DG00DG00DG00DG00'))?.status === 'PENDING_PAYMENT', { what: 'the good order in MySQL', timeoutMs: 15_000 });
    expect(await workers.deps.orders.findOrderRow('01JBADBADBADBADBADBADBADBA')).toBeNull();
    const failures = await workers.deps.metrics.registry.getSingleMetricAsString('job_failures_total');
    expect(failures).toMatch(/job_failures_total\{[^}]*queue="orders"[^}]*final="true"[^}]*\} 1/);
  });

  it('stays in its dead letter: the stranded-order sweeper does not run it again, sweep after sweep', async () => {
    const { queues, inventory, metrics } = workers.deps;
    // ten sweeps, each of which found the unpriceable order still not in MySQL
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await inventory.awaitsPersisting('01JBADBADBADBADBADBADBADBA')).toBe(true);
    const failures = await metrics.registry.getSingleMetricAsString('job_failures_total');
    expect(failures).toMatch(/^job_failures_total\{queue="orders",name="persist-order",final="true",app="worker"\} 1$/m);
    expect(await metrics.registry.getSingleMetricAsString('stranded_orders_recovered_total')).toMatch(/^stranded_orders_recovered_total\{app="worker"\} 0$/m);
    const job = await queues.orders.getJob('01JBADBADBADBADBADBADBADBA');
    expect([await job?.getState(), job?.attemptsMade]).toEqual(['failed', 3]);
    expect(await queues.deadLetter.getJobs(['waiting'])).toHaveLength(1);
  });
});

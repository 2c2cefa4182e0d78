import { loadConfig } from '@orders/config';
import { CatalogRepository } from '@orders/persistence';
import { JOB, QUEUE, createOrderQueues, enqueuePersistOrder, type OrderQueues } from '@orders/queues';
import { acceptedOrder, createTestEnv, startTcpProxy, waitFor, type TcpProxy, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ORDERS_DURING_OUTAGE = 5;

describe('job metrics while MySQL is unreachable (through a TCP proxy that refuses connections)', () => {
  let proxy: TcpProxy;
  let env: TestEnv;
  let queues: OrderQueues;
  let workers: RunningWorkers;
  const acceptedAt = new Date();

  const order = (n: number) => acceptedOrder('01JMETRIC', n, acceptedAt, { items: [{ skuId: 'LAMP', qty: 1 }] });

  /** The persist-order series of a worker histogram (job_duration_seconds, job_wait_seconds), as a scrape of the worker's /metrics shows it. */
  async function persistJobs(histogram: 'jobDuration' | 'jobWait'): Promise<{ count: number; sum: number }> {
    const values = (await workers.deps.metrics[histogram].get()).values.filter((value) => value.labels.queue === QUEUE.orders && value.labels.name === JOB.persistOrder);
    const of = (suffix: string) => values.find((value) => value.metricName?.endsWith(`_${suffix}`))?.value ?? 0;
    return { count: of('count'), sum: of('sum') };
  }

  const ordersInMysql = async () => Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 3306 });
    // a job that finds MySQL away waits JOB_BACKOFF_MS and runs again: 100 ms, so it runs many times in the outage
    env = await createTestEnv('job_metrics_outage', { WORKER_QUEUES: 'orders', JOB_BACKOFF_MS: '100' });
    await new CatalogRepository(env.db).createSku(
      { skuId: 'LAMP', title: 'Lamp', priceCents: 2_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', flashSale: null },
      100,
      'test',
      async () => undefined,
    );
    queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: env.config.JOB_ATTEMPTS, backoffMs: env.config.JOB_BACKOFF_MS });
    // the worker reaches MySQL only through the proxy; the test itself reads it directly
    const throughProxy = new URL(env.env.MYSQL_URL!);
    throughProxy.port = String(proxy.port);
    workers = startWorkers(connectWorker(loadConfig({ ...env.env, MYSQL_URL: throughProxy.toString() }), pino({ level: 'silent' })));
  });

  afterAll(async () => {
    await workers?.close();
    await queues?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  it('counts a job processed once, when it is written, however many times it ran into the outage, and its queue lag once, from its first start', { timeout: 60_000 }, async () => {
    await enqueuePersistOrder(queues, order(0));
    await waitFor(async () => (await ordersInMysql()) === 1, { what: 'the first order in MySQL' });
    await waitFor(async () => (await persistJobs('jobDuration')).count === 1, { what: 'its job counted as processed' });
    expect((await persistJobs('jobWait')).count).toBe(1);

    await proxy.cut();
    for (let n = 1; n <= ORDERS_DURING_OUTAGE; n++) await enqueuePersistOrder(queues, order(n));
    // every job has run into the outage at least 4 times, waiting for MySQL in between
    await waitFor(
      async () => {
        const jobs = await queues.orders.getJobs(['delayed', 'waiting', 'active']);
        return jobs.length === ORDERS_DURING_OUTAGE && jobs.every((job) => job.attemptsStarted >= 4);
      },
      { what: 'every job to run into the outage 4 times', timeoutMs: 20_000, intervalMs: 50 },
    );
    // nothing was processed meanwhile: the runs that waited are not jobs per second on the dashboards
    expect((await persistJobs('jobDuration')).count).toBe(1);
    // each job's lag from its first start only, not its age at every later one
    const lagDuringOutage = await persistJobs('jobWait');
    expect(lagDuringOutage.count).toBe(1 + ORDERS_DURING_OUTAGE);
    expect((await queues.orders.getJobCounts('failed')).failed).toBe(0);

    await proxy.restore();
    await waitFor(async () => (await ordersInMysql()) === 1 + ORDERS_DURING_OUTAGE, { what: 'the orders of the outage in MySQL', timeoutMs: 20_000 });
    await waitFor(async () => (await persistJobs('jobDuration')).count === 1 + ORDERS_DURING_OUTAGE, { what: 'each of their jobs counted as processed once' });
    expect(await persistJobs('jobWait')).toEqual(lagDuringOutage);
  });
});

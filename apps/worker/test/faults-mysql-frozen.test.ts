import { QUEUE } from '@orders/queues';
import { buyerAddress, createSku, createTestEnv, signToken, spawnApp, startApiProcess, startTcpProxy, waitFor, type ApiProcess, type SpawnedProcess, type TcpProxy, type TestEnv } from '@orders/testing';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('MySQL frozen under the worker (through a TCP proxy that holds every byte: connections open, no answer, no reset)', () => {
  let proxy: TcpProxy;
  let env: TestEnv;
  let api: ApiProcess;
  let worker: SpawnedProcess;
  let orders: Queue;
  const persisted = async () => Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 3306 });
    env = await createTestEnv('faults_mysql_frozen', {
      WORKER_QUEUES: 'orders',
      MYSQL_QUERY_TIMEOUT_MS: '1000',
      JOB_BACKOFF_MS: '2000',
      // one attempt: a job that spent one on the frozen MySQL would fail
      JOB_ATTEMPTS: '1',
    });
    // only the worker reaches MySQL through the proxy; the api and the test reach it directly
    const throughProxy = new URL(env.env.MYSQL_URL!);
    throughProxy.port = String(proxy.port);
    api = await startApiProcess(env.env, 10);
    worker = spawnApp('worker', { ...env.env, MYSQL_URL: throughProxy.toString(), WORKER_METRICS_PORT: '0' });
    orders = new Queue(QUEUE.orders, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
  });

  afterAll(async () => {
    proxy?.thaw();
    await worker?.kill();
    await api?.close();
    await orders?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  it('gives up on a statement after MYSQL_QUERY_TIMEOUT_MS (1 s), puts its jobs back to delayed without using an attempt, and persists them once MySQL answers again', { timeout: 60_000 }, async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'LAMP', title: 'Lamp', priceCents: 4_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    const checkout = async (i: number) => {
      const answer = await api.request('POST', '/v1/orders', {
        token: signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' }),
        headers: { 'idempotency-key': `frozen-${i}` },
        body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress },
      });
      expect(answer.status).toBe(202);
    };
    // the worker's pool holds open connections through the proxy before it freezes
    for (let i = 0; i < 5; i++) await checkout(i);
    await waitFor(async () => (await persisted()) === 5, { what: 'the first 5 orders in MySQL', timeoutMs: 45_000 });

    proxy.freeze();
    await Promise.all(Array.from({ length: 20 }, async (_, i) => checkout(5 + i)));
    // stuck on the frozen connection they would stay active until TCP gave up (~15 min)
    await waitFor(
      async () => {
        const counts = await orders.getJobCounts('active', 'delayed', 'waiting');
        return counts.active === 0 && counts.waiting === 0 && counts.delayed! > 0;
      },
      { what: 'the persist jobs back in the delayed set', timeoutMs: 20_000, intervalMs: 50, explain: async () => JSON.stringify(await orders.getJobCounts()) },
    );
    expect(await persisted()).toBe(5);

    proxy.thaw();
    await waitFor(async () => (await persisted()) === 25, { what: 'all 25 orders in MySQL once it answers again', timeoutMs: 20_000, intervalMs: 200 });
    expect(await orders.getJobCounts('failed')).toEqual({ failed: 0 });
    expect(worker.output()).toContain('MySQL unavailable: the job waits for it without using an attempt');
  });
});

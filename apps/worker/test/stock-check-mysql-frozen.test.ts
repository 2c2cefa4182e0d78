import { createSku, createTestEnv, signToken, spawnApp, startApiProcess, startTcpProxy, waitFor, type ApiProcess, type SpawnedProcess, type TcpProxy, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('the periodic stock check while MySQL is frozen under the worker (a TCP proxy that holds every byte)', () => {
  let proxy: TcpProxy;
  let env: TestEnv;
  let api: ApiProcess;
  let worker: SpawnedProcess;

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 3306 });
    env = await createTestEnv('stock_check_frozen', {
      WORKER_QUEUES: 'timers',
      // a check every second; its statements given 1 s
      RECONCILE_INTERVAL_MS: '1000',
      RECONCILE_SETTLE_MS: '100',
      RECONCILE_QUERY_TIMEOUT_MS: '1000',
      MYSQL_QUERY_TIMEOUT_MS: '1000',
      JOB_BACKOFF_MS: '500',
    });
    // only the worker reaches MySQL through the proxy; the api and the test reach it directly
    const throughProxy = new URL(env.env.MYSQL_URL!);
    throughProxy.port = String(proxy.port);
    api = await startApiProcess(env.env, 10);
    worker = spawnApp('worker', { ...env.env, MYSQL_URL: throughProxy.toString(), WORKER_METRICS_PORT: '0' });
  }, 60_000);

  afterAll(async () => {
    proxy?.thaw();
    await worker?.kill();
    await api?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  it('gives up on its ledger reading after RECONCILE_QUERY_TIMEOUT_MS, lets go of the check lock and says so, and reports the drift once MySQL answers again', { timeout: 90_000 }, async () => {
    const prefix = env.config.REDIS_KEY_PREFIX;
    const report = () => env.redis.hget(`${prefix}stock-drift`, 'LAMP');
    const checkedAt = () => env.redis.get(`${prefix}stock-drift-checked-at`);
    const checkLock = () => env.redis.get(`${prefix}stock-check:stock-repair-lock`);
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'LAMP', title: 'Lamp', priceCents: 4_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const createdAt = Date.now();
    // a first check reads the ledger, so the worker holds an open connection through the proxy; LAMP without drift is not in its report
    await waitFor(async () => Number(await checkedAt()) > createdAt && (await report()) === null, { what: 'a first stock check to report LAMP without drift', timeoutMs: 30_000 });

    proxy.freeze();
    // Redis counts a lamp reserved that the ledger does not hold
    await env.redis.hincrby(`${prefix}{g0}:sku:LAMP`, 'reserved', 1);
    const stuck = await waitFor(checkLock, { what: 'a stock check to take the lock', intervalMs: 20 });
    // without a deadline that check waits for MySQL for hours, holding the lock, and no check runs
    await waitFor(async () => (await checkLock()) !== stuck, {
      what: 'the check stuck on the frozen MySQL to let go of its lock',
      timeoutMs: 15_000,
      intervalMs: 20,
      explain: async () => worker.output().slice(-2_000),
    });
    // the lock goes before the job's wait is logged
    await waitFor(
      async () =>
        worker
          .output()
          .split('\n')
          .some((line) => line.includes('"queue":"timers"') && line.includes('MySQL unavailable: the job waits for it without using an attempt')),
      { what: 'the worker to log that the check waits for MySQL', timeoutMs: 10_000, explain: async () => worker.output().slice(-2_000) },
    );
    expect(await report()).toBeNull();

    proxy.thaw();
    await waitFor(async () => (await report()) === '[0,1,0]', { what: 'a check to report the reserved lamp once MySQL answers', timeoutMs: 30_000, intervalMs: 100 });
  });
});

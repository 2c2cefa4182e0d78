import { createSku, createTestEnv, freePort, signToken, spawnApp, startApiProcess, startTcpProxy, waitFor, type ApiProcess, type SpawnedProcess, type TcpProxy, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHECK_INTERVAL_MS = 1_000;

/** A worker's /metrics as Prometheus scrapes it: the value of each sample, by its name and labels. */
async function scrape(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) });
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const sample = /^(\w+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (sample) samples.set(sample[1]!.replace(/,?app="worker"/, '').replace('{}', ''), Number(sample[2]));
  }
  return samples;
}

describe('what the operator sees of the periodic stock check while none can finish (MySQL frozen under the worker serving timers)', () => {
  let proxy: TcpProxy;
  let env: TestEnv;
  let api: ApiProcess;
  let checking: SpawnedProcess;
  let persisting: SpawnedProcess;
  const ports: number[] = [];

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 3306 });
    env = await createTestEnv('stock_check_staleness', {
      RECONCILE_INTERVAL_MS: String(CHECK_INTERVAL_MS),
      RECONCILE_SETTLE_MS: '100',
      RECONCILE_QUERY_TIMEOUT_MS: '1000',
      MYSQL_QUERY_TIMEOUT_MS: '1000',
      JOB_BACKOFF_MS: '500',
    });
    api = await startApiProcess(env.env, 10);
    ports.push(await freePort(), await freePort());
    // as compose runs them: the worker serving timers runs the check (its MySQL through the proxy); the one persisting orders does not
    const throughProxy = new URL(env.env.MYSQL_URL!);
    throughProxy.port = String(proxy.port);
    checking = spawnApp('worker', { ...env.env, WORKER_QUEUES: 'timers', MYSQL_URL: throughProxy.toString(), WORKER_METRICS_PORT: String(ports[0]) });
    persisting = spawnApp('worker', { ...env.env, WORKER_QUEUES: 'orders', WORKER_METRICS_PORT: String(ports[1]) });
  }, 60_000);

  afterAll(async () => {
    proxy?.thaw();
    await checking?.kill();
    await persisting?.kill();
    await api?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  it('every worker exports when the last check finished, the same time, which stops moving while the drift gauges keep the last report, and moves again once MySQL answers', { timeout: 120_000 }, async () => {
    const lastCheck = 'stock_reconcile_last_success_timestamp_seconds';
    const reservedDrift = 'stock_counter_drift_units{sku="LAMP",counter="reserved"}';
    const everyWorker = async () => Promise.all(ports.map(async (port) => scrape(port).catch(() => new Map<string, number>())));
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'LAMP', title: 'Lamp', priceCents: 4_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const createdAt = Date.now() / 1000;

    // a lamp without drift has no drift series: a check finished since it was created says it was checked
    const fresh = await waitFor(
      async () => {
        const scrapes = await everyWorker();
        const checkedAt = scrapes.map((samples) => samples.get(lastCheck));
        const recent = checkedAt.every((at) => at !== undefined && at > createdAt);
        return recent && scrapes.every((samples) => !samples.has(reservedDrift)) && checkedAt;
      },
      { what: 'both workers to export a check of LAMP that finished since it was created', timeoutMs: 45_000, explain: async () => checking.output().slice(-2_000) },
    );
    expect(fresh[0]).toBeGreaterThan(0);

    proxy.freeze();
    // Redis counts a lamp reserved that the ledger does not hold: the next check that finishes reports it
    await env.redis.hincrby(`${env.config.REDIS_KEY_PREFIX}{g0}:sku:LAMP`, 'reserved', 1);
    await waitFor(async () => checking.output().includes('MySQL unavailable: the job waits for it without using an attempt'), {
      what: 'a check to give up on the frozen MySQL',
      timeoutMs: 20_000,
      explain: async () => checking.output().slice(-2_000),
    });
    const [frozenAt] = await waitFor(async () => {
      const checkedAt = (await everyWorker()).map((samples) => samples.get(lastCheck));
      return checkedAt.every((at) => at !== undefined && at === checkedAt[0]) && checkedAt;
    }, { what: 'both workers to export the same last check' });
    // several intervals without a check: the drift gauges still say all is well, the time says since when
    await new Promise((resolve) => setTimeout(resolve, 5 * CHECK_INTERVAL_MS));
    const stale = await everyWorker();
    expect(stale.map((samples) => samples.get(lastCheck))).toEqual([frozenAt, frozenAt]);
    expect(stale.map((samples) => samples.has(reservedDrift))).toEqual([false, false]);
    expect(Date.now() / 1000 - frozenAt!).toBeGreaterThan(5 * (CHECK_INTERVAL_MS / 1000));

    proxy.thaw();
    await waitFor(
      async () => {
        const scrapes = await everyWorker();
        return scrapes.every((samples) => samples.get(lastCheck)! > frozenAt! && samples.get(reservedDrift) === 1);
      },
      { what: 'a check to finish once MySQL answers, reporting the reserved lamp on both workers', timeoutMs: 30_000, intervalMs: 200 },
    );
  });
});

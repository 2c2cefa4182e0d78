import { createTestEnv, freePort, spawnApp, startTcpProxy, waitFor, type SpawnedProcess, type TcpProxy, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** A scrape or probe as Prometheus and an orchestrator make it: one that takes over 2 s counts as no answer. */
async function get(url: string): Promise<{ status: number; body: string; ms: number }> {
  const started = Date.now();
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return { status: response.status, body: await response.text(), ms: Date.now() - started };
}

describe('a worker cut off from Redis (through a TCP proxy that resets and refuses connections)', () => {
  let proxy: TcpProxy;
  let env: TestEnv;
  let worker: SpawnedProcess;
  let base: string;

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    env = await createTestEnv('faults_redis_scrapes', { WORKER_QUEUES: 'orders,timers' });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    worker = spawnApp('worker', { ...env.env, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, WORKER_METRICS_PORT: String(port) });
    await waitFor(async () => (await get(`${base}/health/ready`).catch(() => ({ status: 0 }))).status === 200, { what: 'the worker to be ready', timeoutMs: 45_000 });
  });

  afterAll(async () => {
    await worker?.kill();
    await proxy?.close();
    await env?.cleanup();
  });

  it('still answers scrapes within 2 s, with its queue counts as last read, and says it is not ready, so the alert points at Redis rather than at the worker', { timeout: 30_000 }, async () => {
    const before = await get(`${base}/metrics`);
    expect(before.body).toMatch(/^queue_jobs\{queue="orders",state="waiting"/m);

    await proxy.cut();
    // past the second a reading serves scrapes: these read the absent Redis, the second while the first's read still waits
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    for (let i = 0; i < 2; i++) {
      const scrape = await get(`${base}/metrics`);
      expect(scrape.status).toBe(200);
      expect(scrape.body).toMatch(/^queue_jobs\{queue="orders",state="waiting"/m);
    }
    const ready = await get(`${base}/health/ready`);
    expect([ready.status, JSON.parse(ready.body)]).toEqual([503, { status: 'not_ready' }]);
    expect((await get(`${base}/health/live`)).status).toBe(200);

    await proxy.restore();
    await waitFor(async () => (await get(`${base}/health/ready`)).status === 200, { what: 'the worker to be ready again once Redis is back', timeoutMs: 15_000 });
  });
});

import { readFileSync } from 'node:fs';
import { buyerAddress, childProcessesOf, createTestEnv, freePort, httpClient, startOperatorCommand, startTcpProxy, waitFor, type HttpClient, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

/** npm start on ports of the operator's choosing: only the ports are given, the apps must find each other on their own. */
async function npmStart(env: Record<string, string>) {
  const [port, paymentPort, warehousePort, workerMetricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const start = startOperatorCommand('start', [], {
    ...env,
    PORT: String(port),
    PAYMENT_SIM_PORT: String(paymentPort),
    WAREHOUSE_SIM_PORT: String(warehousePort),
    WORKER_METRICS_PORT: String(workerMetricsPort),
  });
  return { start, port, paymentPort, warehousePort, workerMetricsPort };
}

/** The apps npm start started (the api and worker from their bundles). */
const appProcessesOf = (pid: number) => childProcessesOf(pid).filter((child) => /apps\/[a-z-]+\/dist\/main\.(bundle\.)?js/.test(readFileSync(`/proc/${child}/cmdline`, 'utf8')));

describe('npm start', () => {
  let env: TestEnv;
  let api: HttpClient;

  beforeAll(async () => {
    env = await createTestEnv('npm_start');
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it('runs the whole system on ports of the operator’s choosing: an order is paid through the payment simulator and delivered by the warehouse’s callbacks; Ctrl-C stops every process, waiting through the drain delay it was given', { timeout: 180_000 }, async () => {
    const { start, port, paymentPort, warehousePort, workerMetricsPort } = await npmStart({
      ...env.env,
      // the api serves on for 3 s after Ctrl-C: npm start waits for it, past its own 1 s + grace
      SHUTDOWN_DRAIN_DELAY_MS: '3000',
      SHUTDOWN_GRACE_MS: '1000',
      PAYMENT_SIM_LATENCY_MS: '20',
      WAREHOUSE_SIM_STEP_MS: '100',
      // four apps starting side by side on a busy box
      START_READY_TIMEOUT_MS: '90000',
    });
    try {
      const buyer = await waitFor(async () => /^\s+buyer\s+(\S+)$/m.exec(start.output())?.[1], { what: 'the start banner', timeoutMs: 120_000, explain: async () => start.output() });
      const output = start.output();
      expect(output).toContain(`Order system running at http://127.0.0.1:${port}`);
      expect(output).toContain(`Simulators: payment http://127.0.0.1:${paymentPort}, warehouse http://127.0.0.1:${warehousePort}`);

      // the banner comes once the api is ready
      api = httpClient(`http://127.0.0.1:${port}`, 2);
      expect((await api.request('GET', '/health/ready')).status).toBe(200);
      const checkout = () =>
        api.request('POST', '/v1/orders', {
          token: buyer,
          headers: { 'idempotency-key': 'demo-1' },
          body: { items: [{ skuId: 'PHONE-X-FLASH', qty: 1 }], address: buyerAddress },
        });
      const accepted = await checkout();
      expect(accepted.status).toBe(202);
      expect((await checkout()).body.orderId).toBe(accepted.body.orderId);

      const order = async () => (await api.request('GET', `/v1/orders/${accepted.body.orderId}`, { token: buyer })).body;
      await waitFor(async () => (await order()).status === 'PENDING_PAYMENT', { what: 'PENDING_PAYMENT', timeoutMs: 20_000 });
      expect((await api.request('POST', `/v1/orders/${accepted.body.orderId}/pay`, { token: buyer, body: { method: 'bank_transfer' } })).status).toBe(202);
      const delivered = await waitFor(async () => ((await order()).status === 'DELIVERED' ? order() : false), { what: 'DELIVERED', timeoutMs: 30_000 });
      expect(delivered.history.map((h: { action: string; actor: string }) => `${h.action}/${h.actor}`)).toEqual([
        'checkout/buyer',
        'persist/system',
        'pay/payment',
        'fulfil/system',
        'pick/warehouse',
        'pack/warehouse',
        'ship/warehouse',
        'deliver/warehouse',
      ]);
    } finally {
      // Ctrl-C
      await start.stop('SIGINT');
    }
    expect(start.child.exitCode).toBe(0);
    for (const stopped of [port, paymentPort, warehousePort, workerMetricsPort]) {
      await expect(fetch(`http://127.0.0.1:${stopped}/health/live`)).rejects.toThrow();
    }
  });

  it('refuses, before it seeds or starts anything, two of its processes given one port', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const ports = { PORT: String(port), WORKER_METRICS_PORT: String(port), PAYMENT_SIM_PORT: String(await freePort()), WAREHOUSE_SIM_PORT: String(await freePort()) };
    const clash = startOperatorCommand('start', [], { ...env.env, ...ports });
    try {
      await waitFor(async () => clash.child.exitCode !== null, { what: 'npm start to exit', timeoutMs: 30_000, explain: async () => clash.output() });
      expect(clash.child.exitCode).toBe(1);
      expect(clash.output()).toContain(`PORT=${port}, WORKER_METRICS_PORT=${port}: the api, the worker's metrics and the two simulators each need a port of their own`);
      expect(clash.output()).not.toContain('Seeded');
    } finally {
      await clash.stop('SIGINT');
    }
  });

  it('says the api did not become ready, prints no banner and stops every process it started, exiting 1, when the api cannot reach MySQL', { timeout: 120_000 }, async () => {
    const unready = await createTestEnv('npm_start_unready');
    // its database goes however the test ends, a command refused before it started (a stale build) too
    onTestFinished(() => unready.cleanup());
    const mysql = await startTcpProxy({ host: '127.0.0.1', port: 3306 });
    onTestFinished(() => mysql.close());
    const throughProxy = new URL(unready.env.MYSQL_URL!);
    throughProxy.port = String(mysql.port);
    const { start, port } = await npmStart({ ...unready.env, MYSQL_URL: throughProxy.toString(), START_READY_TIMEOUT_MS: '5000' });
    try {
      // MySQL goes away once the demo shop is seeded, as the apps start
      await waitFor(async () => start.output().includes('Seeded demo catalog'), { what: 'the seed', timeoutMs: 45_000, intervalMs: 20, explain: async () => start.output() });
      await mysql.cut();
      const apps = await waitFor(
        async () => {
          const started = appProcessesOf(start.child.pid!);
          return started.length === 4 && started;
        },
        { what: 'the four apps to start', intervalMs: 20 },
      );
      await waitFor(async () => start.child.exitCode !== null, { what: 'npm start to exit', timeoutMs: 40_000, explain: async () => start.output() });
      expect(start.child.exitCode).toBe(1);
      const output = start.output();
      expect(output).toContain(`The api did not become ready within 5 s at http://127.0.0.1:${port}/health/ready`);
      expect(output).not.toContain('Order system running');
      expect(output).not.toMatch(/^\s+buyer\s/m);
      for (const pid of apps) expect(() => process.kill(pid, 0), `process ${pid} left running`).toThrow();
    } finally {
      await start.stop('SIGINT');
    }
  });

  it('on HOST set to one address, points the worker at the simulators where they listen, and prints tokens living no longer than the api accepts (AUTH_JWT_MAX_LIFETIME_MS of an hour)', { timeout: 120_000 }, async () => {
    const hosted = await createTestEnv('npm_start_host');
    onTestFinished(() => hosted.cleanup());
    // 127.0.0.2: a loopback address of its own on Linux, as a machine's LAN address would be
    const { start, port } = await npmStart({ ...hosted.env, HOST: '127.0.0.2', AUTH_JWT_MAX_LIFETIME_MS: '3600000', SHUTDOWN_GRACE_MS: '1000' });
    try {
      const buyer = await waitFor(async () => /^\s+buyer\s+(\S+)$/m.exec(start.output())?.[1], { what: 'the start banner', timeoutMs: 90_000, explain: async () => start.output() });
      expect(start.output()).toContain(`Order system running at http://127.0.0.2:${port}`);
      expect(start.output()).toContain('Demo tokens (1 h;');
      const [, payment, warehouse] = /Simulators: payment (\S+), warehouse (\S+)/.exec(start.output())!;
      for (const url of [payment!, warehouse!]) expect(new URL(url).hostname, url).toBe('127.0.0.2');
      for (const url of [payment!, warehouse!]) await expect(fetch(url, { signal: AbortSignal.timeout(2000) }).then((answer) => answer.status)).resolves.toBeTypeOf('number');
      const api = httpClient(`http://127.0.0.2:${port}`, 1);
      onTestFinished(() => api.close());
      expect((await api.request('GET', '/v1/orders', { token: buyer })).status).toBe(200);
    } finally {
      await start.stop('SIGINT');
    }
  });
});

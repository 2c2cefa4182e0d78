import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buyerAddress, createTestEnv, freePort, httpClient, startTcpProxy, waitFor, type HttpClient, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The apps npm start started (not the helpers tsx starts, such as esbuild). */
function appProcessesOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`)
    .flatMap((task) => readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number))
    .filter((child) => /apps\/[a-z-]+\/src\/main\.ts/.test(readFileSync(`/proc/${child}/cmdline`, 'utf8')));
}

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

  it('runs the whole system on ports of the operator’s choosing: an order is paid through the payment simulator and delivered by the warehouse’s callbacks; Ctrl-C stops every process', { timeout: 180_000 }, async () => {
    const [port, paymentPort, warehousePort, workerMetricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    // only the ports are given: the worker must find the simulators, and they the api, on their own
    const start = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'scripts/src/start.ts'], {
      cwd: root,
      env: {
        ...process.env,
        ...env.env,
        PORT: String(port),
        PAYMENT_SIM_PORT: String(paymentPort),
        WAREHOUSE_SIM_PORT: String(warehousePort),
        WORKER_METRICS_PORT: String(workerMetricsPort),
        PAYMENT_SIM_LATENCY_MS: '20',
        WAREHOUSE_SIM_STEP_MS: '100',
        // the apps start from their TypeScript sources here, slower than from dist on a busy box
        START_READY_TIMEOUT_MS: '90000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    start.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    start.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
    try {
      const buyer = await waitFor(async () => /^\s+buyer\s+(\S+)$/m.exec(output)?.[1], { what: `the start banner in:\n${output}`, timeoutMs: 120_000 });
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
      start.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    for (const stopped of [port, paymentPort, warehousePort, workerMetricsPort]) {
      await expect(fetch(`http://127.0.0.1:${stopped}/health/live`)).rejects.toThrow();
    }
  });

  it('says the api did not become ready, prints no banner and stops every process it started, exiting 1, when the api cannot reach MySQL', { timeout: 120_000 }, async () => {
    const unready = await createTestEnv('npm_start_unready');
    const mysql = await startTcpProxy({ host: '127.0.0.1', port: 3306 });
    const throughProxy = new URL(unready.env.MYSQL_URL!);
    throughProxy.port = String(mysql.port);
    const [port, paymentPort, warehousePort, workerMetricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const start = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'scripts/src/start.ts'], {
      cwd: root,
      env: {
        ...process.env,
        ...unready.env,
        MYSQL_URL: throughProxy.toString(),
        PORT: String(port),
        PAYMENT_SIM_PORT: String(paymentPort),
        WAREHOUSE_SIM_PORT: String(warehousePort),
        WORKER_METRICS_PORT: String(workerMetricsPort),
        START_READY_TIMEOUT_MS: '5000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    start.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    start.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
    try {
      // MySQL goes away once the demo shop is seeded, as the apps start
      await waitFor(async () => output.includes('Seeded demo catalog'), { what: `the seed in:\n${output}`, timeoutMs: 45_000, intervalMs: 20 });
      await mysql.cut();
      const apps = await waitFor(
        async () => {
          const started = appProcessesOf(start.pid!);
          return started.length === 4 && started;
        },
        { what: 'the four apps to start', intervalMs: 20 },
      );
      expect(await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 40_000))])).toBe(1);
      expect(output).toContain(`The api did not become ready within 5 s at http://127.0.0.1:${port}/health/ready`);
      expect(output).not.toContain('Order system running');
      expect(output).not.toMatch(/^\s+buyer\s/m);
      for (const pid of apps) expect(() => process.kill(pid, 0), `process ${pid} left running`).toThrow();
    } finally {
      start.kill('SIGINT');
      await exited;
      await mysql.close();
      await unready.cleanup();
    }
  });
});

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buyerAddress, createTestEnv, freePort, httpClient, waitFor, type HttpClient, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

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

  it('runs the whole system on ports of the operator’s choosing: an order is paid through the payment simulator and delivered by the warehouse’s callbacks; Ctrl-C stops every process', async () => {
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
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    start.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    start.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
    try {
      const buyer = await waitFor(async () => /^\s+buyer\s+(\S+)$/m.exec(output)?.[1], { what: `the start banner in:\n${output}`, timeoutMs: 45_000 });
      expect(output).toContain(`Order system running at http://127.0.0.1:${port}`);
      expect(output).toContain(`Simulators: payment http://127.0.0.1:${paymentPort}, warehouse http://127.0.0.1:${warehousePort}`);

      api = httpClient(`http://127.0.0.1:${port}`, 2);
      // the banner waits for readiness only so long; a slow box may print it first
      await waitFor(async () => (await api.request('GET', '/health/ready').catch(() => ({ status: 0 }))).status === 200, { what: 'the api ready', timeoutMs: 30_000 });
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
});

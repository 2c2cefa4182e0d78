import { buyerAddress, createSku, createTestEnv, freePort, httpClient, signToken, spawnApp, startApiProcess, waitFor, type ApiProcess, type HttpClient, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('several worker processes, each serving a subset of the queues', () => {
  let env: TestEnv;
  let api: ApiProcess;
  const processes: SpawnedProcess[] = [];
  const clients: HttpClient[] = [];

  beforeAll(async () => {
    const [paymentPort, warehousePort] = [await freePort(), await freePort()];
    env = await createTestEnv('queue_subsets', {
      PAYMENT_URL: `http://127.0.0.1:${paymentPort}`,
      WAREHOUSE_URL: `http://127.0.0.1:${warehousePort}`,
      PAYMENT_SIM_PORT: String(paymentPort),
      WAREHOUSE_SIM_PORT: String(warehousePort),
      PAYMENT_SIM_LATENCY_MS: '20',
      // the simulated warehouse reports PICKED, PACKED, SHIPPED, DELIVERED 100 ms apart
      WAREHOUSE_SIM_STEP_MS: '100',
      SIM_CALLBACK_RETRY_MS: '50',
      AUTO_CONFIRM_MS: '5000',
      AFTER_SALES_WINDOW_MS: '300',
    });
    api = await startApiProcess(env.env, 10);
    const common = { ...env.env, CALLBACK_BASE_URL: api.url, PAYMENT_URL: `http://127.0.0.1:${paymentPort}`, WAREHOUSE_URL: `http://127.0.0.1:${warehousePort}` };
    processes.push(spawnApp('payment-sim', common), spawnApp('warehouse-sim', common));
    for (const queues of ['orders', 'payments,timers', 'fulfillment']) {
      processes.push(spawnApp('worker', { ...common, WORKER_QUEUES: queues, WORKER_METRICS_PORT: String(await freePort()) }));
    }
    for (const port of [paymentPort, warehousePort]) {
      const client = httpClient(`http://127.0.0.1:${port}`, 2);
      clients.push(client);
      await waitFor(async () => (await client.request('GET', '/health/live').catch(() => ({ status: 0 }))).status === 200, { what: `simulator on ${port}`, timeoutMs: 30_000 });
    }
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(processes.map((p) => p.stop()));
    await api?.close();
    await env?.cleanup();
  });

  it('takes a 2-warehouse order through its whole life with workers for orders, payments+timers and fulfillment as 3 processes', async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    const buyer = signToken(env.config.AUTH_JWT_SECRET, { sub: 'dora', role: 'buyer' });
    for (const [skuId, warehouseId] of [['SOFA', 'wh-north'], ['RUG', 'wh-south']]) {
      await createSku(api, admin, { skuId, title: skuId, priceCents: 45_000, merchantId: 'home', channel: 'self', warehouseId, stock: 5, deduction: 'placement' });
    }
    const checkout = await api.request('POST', '/v1/orders', {
      token: buyer,
      headers: { 'idempotency-key': 'sofa-and-rug' },
      body: { items: [{ skuId: 'SOFA', qty: 1 }, { skuId: 'RUG', qty: 2 }], address: buyerAddress },
    });
    expect(checkout.status).toBe(202);
    const orderId = checkout.body.orderId;
    const status = async () => (await api.request('GET', `/v1/orders/${orderId}`, { token: buyer })).body;
    await waitFor(async () => (await status()).status === 'PENDING_PAYMENT', { what: 'PENDING_PAYMENT', timeoutMs: 20_000 });
    expect((await api.request('POST', `/v1/orders/${orderId}/pay`, { token: buyer, body: { method: 'bank_transfer' } })).status).toBe(202);

    const done = await waitFor(async () => ((await status()).status === 'COMPLETED' ? status() : false), { what: 'COMPLETED', timeoutMs: 30_000, intervalMs: 100 });
    expect(done.subOrders).toHaveLength(2);
    expect(done.history.map((h: { action: string; actor: string }) => `${h.action}/${h.actor}`)).toEqual([
      'checkout/buyer',
      'persist/system',
      'pay/payment',
      'split/system',
      'fulfil/system',
      'ship/warehouse',
      'deliver/warehouse',
      'complete/system',
    ]);
    for (const childId of done.subOrders) {
      const child = (await api.request('GET', `/v1/orders/${childId}`, { token: buyer })).body;
      expect(child.status).toBe('COMPLETED');
      expect(child.history.map((h: { action: string }) => h.action)).toEqual(['split', 'fulfil', 'pick', 'pack', 'ship', 'deliver', 'complete']);
    }
  });
});

import { buyerAddress, settledSaleInvariants, createSku, createTestEnv, freePort, httpClient, signToken, spawnApp, startApiProcess, startTcpProxy, waitFor, type ApiProcess, type HttpClient, type SpawnedProcess, type TcpProxy, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ORDERS = 30;

interface Simulator {
  process: SpawnedProcess;
  /** its admin endpoints, straight to the process */
  admin: HttpClient;
  /** what the worker calls: the simulator behind a proxy that can take it off the network */
  proxy: TcpProxy;
}

describe('the payment and warehouse systems timing out, answering 500 and going away', () => {
  let env: TestEnv;
  let api: ApiProcess;
  let worker: SpawnedProcess;
  let metrics: HttpClient;
  let payment: Simulator;
  let warehouse: Simulator;

  const startSimulator = async (app: 'payment-sim' | 'warehouse-sim'): Promise<Simulator> => {
    const port = await freePort();
    const process = spawnApp(app, { ...env.env, PAYMENT_SIM_PORT: String(port), WAREHOUSE_SIM_PORT: String(port), CALLBACK_BASE_URL: api.url });
    const admin = httpClient(`http://127.0.0.1:${port}`, 4);
    await waitFor(async () => (await admin.request('GET', '/health/live').catch(() => ({ status: 0 }))).status === 200, { what: `${app} to listen` });
    return { process, admin, proxy: await startTcpProxy({ host: '127.0.0.1', port }) };
  };

  beforeAll(async () => {
    env = await createTestEnv('faults_external', {
      WORKER_QUEUES: 'orders,timers,payments,fulfillment',
      PAYMENT_SIM_LATENCY_MS: '0',
      WAREHOUSE_SIM_LATENCY_MS: '0',
      // the warehouse moves an order on only when told: orders end IN_FULFILLMENT
      WAREHOUSE_SIM_STEP_MS: '0',
      SIM_CALLBACK_RETRY_MS: '100',
      // breakers open after 3 calls mostly failed, give up on a call after 500 ms, probe again after 300 ms
      PAYMENT_BREAKER_VOLUME_THRESHOLD: '3',
      PAYMENT_BREAKER_TIMEOUT_MS: '500',
      PAYMENT_BREAKER_RESET_MS: '300',
      WAREHOUSE_BREAKER_VOLUME_THRESHOLD: '3',
      WAREHOUSE_BREAKER_TIMEOUT_MS: '500',
      WAREHOUSE_BREAKER_RESET_MS: '300',
      EXTERNAL_RETRY_DELAY_MS: '100',
      // few attempts: failures of an external system must not use them up
      JOB_ATTEMPTS: '2',
    });
    api = await startApiProcess(env.env, 20);
    [payment, warehouse] = [await startSimulator('payment-sim'), await startSimulator('warehouse-sim')];
    const metricsPort = await freePort();
    worker = spawnApp('worker', {
      ...env.env,
      WORKER_METRICS_PORT: String(metricsPort),
      CALLBACK_BASE_URL: api.url,
      PAYMENT_URL: `http://127.0.0.1:${payment.proxy.port}`,
      WAREHOUSE_URL: `http://127.0.0.1:${warehouse.proxy.port}`,
    });
    metrics = httpClient(`http://127.0.0.1:${metricsPort}`, 2);
  });

  afterAll(async () => {
    await worker?.kill();
    await Promise.all([payment, warehouse].map(async (sim) => sim && (await sim.process.kill(), await sim.admin.close(), await sim.proxy.close())));
    await metrics?.close();
    await api?.close();
    await env?.cleanup();
  });

  const breakerState = async (breaker: 'payment' | 'warehouse') => {
    const scrape = await metrics.request('GET', '/metrics').catch(() => ({ body: '' }));
    return Number(new RegExp(`circuit_breaker_state\\{breaker="${breaker}"[^}]*\\} (\\d)`).exec(String(scrape.body))?.[1] ?? -1);
  };
  const callsOf = async (system: string, outcome: string) => {
    const scrape = await metrics.request('GET', '/metrics');
    return Number(new RegExp(`external_calls_total\\{system="${system}",outcome="${outcome}"[^}]*\\} (\\d+)`).exec(String(scrape.body))?.[1] ?? 0);
  };
  const statusCount = async (status: string) =>
    Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', status).where('parent_order_id', 'is', null).executeTakeFirstOrThrow()).n);
  const faults = (sim: Simulator, body: Record<string, unknown>) => sim.admin.request('PUT', '/__admin/faults', { body });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('opens both breakers, then pays every order exactly once and hands each to the warehouse once', { timeout: 120_000 }, async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'LAMP', title: 'Lamp', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    await waitFor(async () => (await breakerState('payment')) === 0, { what: 'the worker to serve /metrics' });

    const buyers = Array.from({ length: ORDERS }, (_, i) => `buyer-${i}`);
    const orderIds: string[] = [];
    for (const buyer of buyers) {
      const answer = await api.request('POST', '/v1/orders', {
        token: signToken(env.config.AUTH_JWT_SECRET, { sub: buyer, role: 'buyer' }),
        headers: { 'idempotency-key': `lamp-${buyer}` },
        body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress },
      });
      expect(answer.status).toBe(202);
      orderIds.push(answer.body.orderId as string);
    }
    await waitFor(async () => (await statusCount('PENDING_PAYMENT')) === ORDERS, { what: 'every order awaiting payment' });

    // payment: 500s until its breaker opens
    await faults(payment, { failureRate: 1 });
    await faults(warehouse, { failureRate: 1 });
    for (const [i, orderId] of orderIds.entries()) {
      const pay = await api.request('POST', `/v1/orders/${orderId}/pay`, { token: signToken(env.config.AUTH_JWT_SECRET, { sub: buyers[i]!, role: 'buyer' }), body: { method: 'card' } });
      expect(pay.status).toBe(202);
    }
    await waitFor(async () => (await breakerState('payment')) === 2, { what: 'the payment breaker to open on 500s', intervalMs: 20 });
    // then slow: it charges after the caller gave up, so the retried call must not charge again
    await faults(payment, { failureRate: 0, latencyMs: 800 });
    await waitFor(async () => (await callsOf('payment', 'timeout')) >= 3, { what: 'payment calls timing out' });
    // then gone from the network
    await payment.proxy.cut();
    await faults(payment, { latencyMs: 0 });
    await sleep(1_500);
    expect(await statusCount('PAID') + (await statusCount('IN_FULFILLMENT'))).toBeLessThan(ORDERS);
    await payment.proxy.restore();

    // paid orders meet a failing warehouse: 500s, then timeouts, then gone
    await waitFor(async () => (await breakerState('warehouse')) === 2, { what: 'the warehouse breaker to open on 500s', intervalMs: 20 });
    await faults(warehouse, { failureRate: 0, timeoutRate: 1 });
    await waitFor(async () => (await callsOf('warehouse', 'timeout')) >= 3, { what: 'warehouse calls timing out' });
    await warehouse.proxy.cut();
    await faults(warehouse, { timeoutRate: 0 });
    await sleep(1_500);
    await warehouse.proxy.restore();

    await waitFor(async () => (await statusCount('IN_FULFILLMENT')) === ORDERS, { what: 'every order paid and in fulfilment', timeoutMs: 60_000, intervalMs: 250 });
    await waitFor(async () => (await breakerState('payment')) === 0 && (await breakerState('warehouse')) === 0, { what: 'both breakers closed again' });

    const charges = (await payment.admin.request('GET', '/__admin/payments')).body.payments as Array<{ orderId: string; charges: number; status: string }>;
    expect(charges.map((c) => c.orderId).sort()).toEqual([...orderIds].sort());
    expect(charges.filter((c) => c.charges !== 1 || c.status !== 'SUCCEEDED')).toEqual([]);
    const handedOver = (await warehouse.admin.request('GET', '/__admin/orders')).body.orders as Array<{ orderId: string }>;
    expect(handedOver).toHaveLength(ORDERS);
    const payments = await env.db.selectFrom('payments').select(['order_id', 'status']).execute();
    expect(payments.filter((p) => p.status === 'SUCCEEDED').map((p) => p.order_id).sort()).toEqual([...orderIds].sort());

    const invariants = await settledSaleInvariants({ db: env.db, redis: env.redis, keyPrefix: env.config.REDIS_KEY_PREFIX, acceptedOrderIds: orderIds, initialStock: { LAMP: 100 }, paymentWaitMs: env.config.PAYMENT_TIMEOUT_MS });
    expect(invariants.violations).toEqual([]);
    expect(invariants.stock.LAMP!.redis).toEqual({ available: 100 - ORDERS, reserved: 0, sold: ORDERS });
    const failed = await env.db.selectFrom('order_history').select('order_id').where('to_status', 'in', ['CANCELLED', 'EXPIRED']).execute();
    expect(failed).toEqual([]);
  });
});

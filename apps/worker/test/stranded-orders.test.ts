import { buyerAddress, createTestEnv, signToken, startApiProcess, waitFor, type ApiProcess, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('an accepted order whose job was lost', () => {
  let env: TestEnv;
  let http: ApiProcess;
  let workers: RunningWorkers;

  beforeAll(async () => {
    env = await createTestEnv('stranded_orders', { STRANDED_ORDER_AFTER_MS: '500', SWEEP_INTERVAL_MS: '200' });
    http = await startApiProcess(env.env, 10);
  });

  afterAll(async () => {
    await workers?.close();
    await http?.close();
    await env?.cleanup();
  });

  it('is found by the sweeper and persisted, so a 202 is never a lost order', async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await http.request('POST', '/v1/admin/skus', {
      token: admin,
      body: { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' },
    });
    const buyer = signToken(env.config.AUTH_JWT_SECRET, { sub: 'unlucky-buyer', role: 'buyer' });
    const checkout = await http.request('POST', '/v1/orders', {
      token: buyer,
      headers: { 'idempotency-key': 'kettle-1' },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress },
    });
    expect(checkout.status).toBe(202);
    // Redis lost the job after the reservation (an operator flushed the queue, a failover dropped it)
    await env.redis.del(`${env.config.QUEUE_PREFIX}:orders:wait`, `${env.config.QUEUE_PREFIX}:orders:${checkout.body.orderId}`);

    workers = startWorkers(connectWorker(env.config, pino({ level: 'silent' })));
    const order = await waitFor(
      async () => {
        const view = await http.request('GET', checkout.body.statusUrl, { token: buyer });
        return view.body.status === 'PENDING_PAYMENT' && view.body;
      },
      { what: 'the order in MySQL', timeoutMs: 15_000 },
    );
    expect(order.amounts.payableCents).toBe(3_000);
    expect(await recoveredCount()).toBe(1);
  });

  it('leaves an order that waits behind a backlog alone: its job is there, nothing is recovered', async () => {
    const buyer = signToken(env.config.AUTH_JWT_SECRET, { sub: 'patient-buyer', role: 'buyer' });
    // a backlog longer than STRANDED_ORDER_AFTER_MS: the job waits, the sweeper runs every 200 ms
    await workers.deps.queues.orders.pause();
    const checkout = await http.request('POST', '/v1/orders', {
      token: buyer,
      headers: { 'idempotency-key': 'kettle-2' },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress },
    });
    expect(checkout.status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await recoveredCount()).toBe(1);
    await workers.deps.queues.orders.resume();
    await waitFor(async () => (await http.request('GET', checkout.body.statusUrl, { token: buyer })).body.status === 'PENDING_PAYMENT', { what: 'the order in MySQL', timeoutMs: 15_000 });
    expect(await recoveredCount()).toBe(1);
  });

  const recoveredCount = async () => {
    const text = await workers.deps.metrics.registry.getSingleMetricAsString('stranded_orders_recovered_total');
    return Number(/^stranded_orders_recovered_total\{app="worker"\} (\d+)$/m.exec(text)?.[1]);
  };
});

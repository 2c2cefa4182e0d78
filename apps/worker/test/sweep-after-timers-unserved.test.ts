import { buyerAddress, createSku, createTestEnv, freePort, signToken, spawnApp, startApiProcess, waitFor, type ApiProcess, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The lifecycle stage (the workers serving timers) stopped a while, past its orders' payment
 * deadlines, and started again: the deadline jobs waiting in Redis expire the orders, and the
 * overdue sweep, the backstop for deadline jobs Redis lost, takes none of them for lost, whatever
 * OVERDUE_SWEEP_INTERVAL_MS the new worker comes with (a changed interval used to reschedule the
 * sweep to run at once, under a time that said the timers went unserved for no time at all).
 */
describe('the lifecycle stage down a while, then started again by a deploy', () => {
  const envs: TestEnv[] = [];
  const apis: ApiProcess[] = [];
  const processes: SpawnedProcess[] = [];

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill()));
    await Promise.all(apis.map((a) => a.close()));
    await Promise.all(envs.map((e) => e.cleanup()));
  });

  const scenario = async (name: string, newSweepMs: number) => {
    const env = await createTestEnv(name, { LOG_LEVEL: 'info', PAYMENT_TIMEOUT_MS: '4000', FLASH_SALE_PAYMENT_TIMEOUT_MS: '4000', OVERDUE_SWEEP_INTERVAL_MS: '3000', RECONCILE_INTERVAL_MS: '0' });
    envs.push(env);
    const api = await startApiProcess(env.env, 20);
    apis.push(api);
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'CUP', title: 'Cup', priceCents: 700, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    const orders = spawnApp('worker', { ...env.env, WORKER_QUEUES: 'orders', WORKER_METRICS_PORT: String(await freePort()) });
    const oldLifecycle = spawnApp('worker', { ...env.env, WORKER_QUEUES: 'timers,payments,fulfillment,events', WORKER_METRICS_PORT: String(await freePort()) });
    processes.push(orders, oldLifecycle);
    await waitFor(async () => orders.output().includes('worker started') && oldLifecycle.output().includes('worker started'), { what: 'the workers', timeoutMs: 30_000 });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const answer = await api.request('POST', '/v1/orders', { token: signToken(env.config.AUTH_JWT_SECRET, { sub: `u-${i}`, role: 'buyer' }), headers: { 'idempotency-key': `u-${i}` }, body: { items: [{ skuId: 'CUP', qty: 1 }], address: buyerAddress } });
      expect(answer.status).toBe(202);
      ids.push(answer.body.orderId);
    }
    const count = async (status: string) => Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', status).executeTakeFirstOrThrow()).n);
    await waitFor(async () => (await count('PENDING_PAYMENT')) === 20, { what: 'the orders in MySQL', timeoutMs: 20_000 });
    // the lifecycle stage is stopped (a deploy, a host drained) before the deadlines
    expect(await oldLifecycle.stop()).toBe(0);
    // and stays down past the deadlines and a sweep interval more: the deadline jobs wait in Redis, due
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    expect(await count('PENDING_PAYMENT')).toBe(20);
    const metricsPort = await freePort();
    const newLifecycle = spawnApp('worker', { ...env.env, WORKER_QUEUES: 'timers,payments,fulfillment,events', OVERDUE_SWEEP_INTERVAL_MS: String(newSweepMs), WORKER_METRICS_PORT: String(metricsPort) });
    processes.push(newLifecycle);
    await waitFor(async () => (await count('EXPIRED')) === 20, { what: 'every order expired', timeoutMs: 30_000 });
    // a sweep or two more
    await new Promise((resolve) => setTimeout(resolve, 2 * Math.max(newSweepMs, 3000)));
    const sweptAsLost = await env.db.selectFrom('order_history').select('order_id').where('detail', 'like', '%deadline job was gone%').execute();
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const counted = metrics.split('\n').find((line) => line.startsWith('overdue_orders_expired_total'));
    const logged = newLifecycle.output().split('\n').filter((line) => line.includes('whose deadline job was gone')).length;
    return { sweptAsLost: sweptAsLost.length, counted, logged };
  };

  it('with the same OVERDUE_SWEEP_INTERVAL_MS: the orders expire by their own deadline jobs, none reported as a lost job', { timeout: 120_000 }, async () => {
    expect(await scenario('sweep_after_unserved_same', 3000)).toEqual({ sweptAsLost: 0, counted: 'overdue_orders_expired_total{app="worker"} 0', logged: 0 });
  });

  it('with a new OVERDUE_SWEEP_INTERVAL_MS: the orders expire by their own deadline jobs, none closed by the sweep as a lost job nor counted for PaymentDeadlinesMissed', { timeout: 120_000 }, async () => {
    expect(await scenario('sweep_after_unserved_changed', 5000)).toEqual({ sweptAsLost: 0, counted: 'overdue_orders_expired_total{app="worker"} 0', logged: 0 });
  });
});

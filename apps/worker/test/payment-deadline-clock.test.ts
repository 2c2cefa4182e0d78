// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { JOB } from '@orders/queues';
import { buyerAddress, createSku, createTestEnv, signToken, startApiProcess, waitFor, type ApiProcess, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A deadline job runs when the clocks of the processes that enqueued and promoted it say so: a
 * worker's clock ahead, a job promoted early, a replayed or duplicated job. The order closes only
 * once its deadline has passed by MySQL's clock; until then it is its buyer's to pay.
 * This system and the one below share nothing, and each of this one's tests sells a lamp of its
 * own, so all run side by side while they wait out the deadlines.
 */
describe.concurrent('deadline jobs that run before the deadline', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // 6 s to pay (a presale's deposit too), 6 s for a presale's balance; each order persisted alone has a deadline
    // job of its own for its test to lose, though the tests check out together (a batch's orders due in one second share one)
    system = await startOrderSystem('early_deadline_jobs', { PAYMENT_TIMEOUT_MS: '6000', FLASH_SALE_PAYMENT_TIMEOUT_MS: '6000', PRESALE_BALANCE_TIMEOUT_MS: '6000', PRESALE_DEPOSIT_PERCENT: '20', PERSIST_BATCH_SIZE: '1' });
    for (const skuId of ['DESK-LAMP', 'FLOOR-LAMP', 'WALL-LAMP']) {
      await system.createSku({ skuId, priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    }
    await system.createSku({ skuId: 'NEXT-LAMP', priceCents: 5_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', orderType: 'presale' });
  }, 60_000);
  afterAll(async () => system?.close());

  const stock = (skuId: string) => system.stockOf(skuId);
  const pay = (buyer: string, orderId: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
  /** A timer job added to run now, under an id of its own (a dead letter replayed, a duplicate): it is settled once it left waiting and active. */
  const runNow = async (name: string, data: object, jobId: string) => {
    const job = await system.workers.deps.queues.timers.add(name as typeof JOB.expireOrder, data as any, { jobId });
    await waitFor(async () => !['waiting', 'active'].includes(await job.getState()), { what: `the ${name} job ${jobId} to run` });
  };
  const waitOutDeadline = async (deadline: string) => {
    const ms = Date.parse(deadline) - Date.now();
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  };

  it('an expiry job run seconds before the deadline leaves the order PENDING_PAYMENT with its lamps reserved, and the buyer who pays in time gets them', async () => {
    const orderId = await system.checkout('ann', [{ skuId: 'DESK-LAMP', qty: 2 }]);
    const pending = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await runNow(JOB.expireOrder, { orderId, userId: 'ann' }, `early-expire-${orderId}`);
    expect(Date.now()).toBeLessThan(Date.parse(pending.paymentDeadline));
    expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');
    expect(await stock('DESK-LAMP')).toEqual({ available: 8, reserved: 2, sold: 0 });

    expect((await pay('ann', orderId)).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // past the deadline, the early job again and the deadline's own: the order paid in time stays paid
    await waitOutDeadline(pending.paymentDeadline);
    const ran = async (jobId: string) => {
      const job = await system.workers.deps.queues.timers.getJob(jobId);
      return !job || ['completed', 'failed'].includes(await job.getState());
    };
    await waitFor(async () => (await ran(`expire-${orderId}`)) && (await ran(`early-expire-${orderId}`)), { what: 'both expiry jobs to have run past the deadline' });
    const kept = await system.order(orderId);
    expect(kept.status).toBe('IN_FULFILLMENT');
    expect(kept.history.map((h: any) => h.action)).toEqual(['checkout', 'persist', 'pay', 'fulfil']);
    expect(kept.amounts.refundedCents).toBe(0);
    expect(await stock('DESK-LAMP')).toEqual({ available: 8, reserved: 0, sold: 2 });
  });

  it('an expiry job run early for an order nobody pays expires it at its deadline, not before, and its lamp goes back on sale once', async () => {
    const orderId = await system.checkout('ben', [{ skuId: 'FLOOR-LAMP', qty: 1 }]);
    const pending = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // its own deadline job is gone (Redis lost it): only the early one is left to expire it
    const own = await waitFor(async () => system.workers.deps.queues.timers.getJob(`expire-${orderId}`), { what: 'the order’s deadline job' });
    await own.remove();
    await runNow(JOB.expireOrder, { orderId, userId: 'ben' }, `early-expire-${orderId}`);
    expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');
    expect(await stock('FLOOR-LAMP')).toEqual({ available: 9, reserved: 1, sold: 0 });

    const expired = await system.waitForStatus(orderId, 'EXPIRED', 20_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(pending.paymentDeadline));
    expect(expired.history.at(-1)).toMatchObject({ from: 'PENDING_PAYMENT', action: 'expire', to: 'EXPIRED', actor: 'system' });
    await waitFor(async () => (await stock('FLOOR-LAMP')).reserved === 0, { what: 'the lamp back on sale' });
    expect(await stock('FLOOR-LAMP')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  it('a batch expiry job over an order past its deadline and one before it expires the first now and the second at its own deadline', async () => {
    const { timers } = system.workers.deps.queues;
    const late = await system.checkout('cat', [{ skuId: 'WALL-LAMP', qty: 1 }]);
    const latePending = await system.waitForStatus(late, 'PENDING_PAYMENT');
    // the first order's deadline job is lost, and its deadline passes
    await (await waitFor(async () => timers.getJob(`expire-${late}`), { what: 'the first order’s deadline job' })).remove();
    await waitOutDeadline(latePending.paymentDeadline);
    const onTime = await system.checkout('dan', [{ skuId: 'WALL-LAMP', qty: 1 }]);
    const onTimePending = await system.waitForStatus(onTime, 'PENDING_PAYMENT');

    await runNow(JOB.expireOrders, { orders: [{ orderId: late, userId: 'cat' }, { orderId: onTime, userId: 'dan' }] }, 'early-batch');
    expect((await system.order(late)).status).toBe('EXPIRED');
    expect(Date.now()).toBeLessThan(Date.parse(onTimePending.paymentDeadline));
    expect((await system.order(onTime)).status).toBe('PENDING_PAYMENT');
    await waitFor(async () => (await stock('WALL-LAMP')).reserved === 1, { what: 'the first order’s lamp back on sale' });

    // its own deadline job is lost too: the batch job expires it when it is due
    await (await waitFor(async () => timers.getJob(`expire-${onTime}`), { what: 'the second order’s deadline job' })).remove();
    await system.waitForStatus(onTime, 'EXPIRED', 20_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(onTimePending.paymentDeadline));
    await waitFor(async () => (await stock('WALL-LAMP')).reserved === 0, { what: 'the second order’s lamp back on sale' });
    expect(await stock('WALL-LAMP')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  it('a balance job run before the balance deadline keeps the presale open for its balance; unpaid, it forfeits its deposit at the deadline', async () => {
    const orderId = await system.checkout('eve', [{ skuId: 'NEXT-LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    expect((await pay('eve', orderId)).status).toBe(202);
    const depositPaid = await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    await runNow(JOB.expireBalance, { orderId, userId: 'eve' }, `early-balance-${orderId}`);
    expect(Date.now()).toBeLessThan(Date.parse(depositPaid.balanceDeadline));
    expect((await system.order(orderId)).status).toBe('DEPOSIT_PAID');
    expect(await stock('NEXT-LAMP')).toEqual({ available: 9, reserved: 1, sold: 0 });

    await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', 20_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(depositPaid.balanceDeadline));
    await waitFor(async () => (await stock('NEXT-LAMP')).reserved === 0, { what: 'the presale’s lamp back on sale' });
    expect(await stock('NEXT-LAMP')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });
});

describe.concurrent('a worker whose clock runs 10 minutes ahead', () => {
  let env: TestEnv;
  let api: ApiProcess;
  let workers: RunningWorkers;

  beforeAll(async () => {
    // 8 s to pay: the order's persisting and the test's 1.5 s wait end before the deadline even on a loaded box
    // (4 s left little to spare); the overdue-order sweep every 500 ms
    env = await createTestEnv('clock_ahead', { PAYMENT_TIMEOUT_MS: '8000', FLASH_SALE_PAYMENT_TIMEOUT_MS: '8000', OVERDUE_SWEEP_INTERVAL_MS: '500', WORKER_QUEUES: 'orders,timers' });
    api = await startApiProcess(env.env, 10);
    workers = startWorkers({ ...connectWorker(env.config, pino({ level: 'silent' })), clock: () => new Date(Date.now() + 10 * 60_000) });
  }, 60_000);
  afterAll(async () => {
    await workers?.close();
    await api?.close();
    await env?.cleanup();
  });

  it('schedules, sweeps and runs the payment deadline without expiring an order before it: PENDING_PAYMENT until its deadline, then EXPIRED and its lamps back on sale', async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    const buyer = signToken(env.config.AUTH_JWT_SECRET, { sub: 'fay', role: 'buyer' });
    await createSku(api, admin, { skuId: 'LAMP', title: 'Lamp', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const checkout = await api.request('POST', '/v1/orders', { token: buyer, headers: { 'idempotency-key': 'fay-1' }, body: { items: [{ skuId: 'LAMP', qty: 2 }], address: buyerAddress } });
    expect(checkout.status).toBe(202);
    const order = async () => (await api.request('GET', checkout.body.statusUrl, { token: buyer })).body;
    const stock = async () => (await api.request('GET', '/v1/admin/skus/LAMP', { token: admin })).body.stock;
    const pending = await waitFor(async () => {
      const seen = await order();
      return seen.status !== 'ACCEPTED' && seen;
    }, { what: 'the order in MySQL' });
    expect(pending.status).toBe('PENDING_PAYMENT');

    // its deadline job (scheduled by this worker's clock: due at once) and 3 sweeps have run meanwhile
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(Date.now()).toBeLessThan(Date.parse(pending.paymentDeadline));
    expect((await order()).status).toBe('PENDING_PAYMENT');
    expect(await stock()).toEqual({ available: 8, reserved: 2, sold: 0 });

    await waitFor(async () => (await order()).status === 'EXPIRED', { what: 'the order expired at its deadline', timeoutMs: 30_000, intervalMs: 50 });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(pending.paymentDeadline));
    await waitFor(async () => (await stock()).reserved === 0, { what: 'the lamps back on sale' });
    expect(await stock()).toEqual({ available: 10, reserved: 0, sold: 0 });
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { JOB } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

// long enough that a test's steps before its check that nothing moved early (an order paid and shipped, an early
// job run, three sweeps) end before the timer is due even on a loaded box, where 5 s left little to spare
const TIMER_MS = 8_000;
const MINUTES_10 = 10 * 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The whole system, its timers served by a worker of their own whose clock is `skewMs` off:
 * 8 s to confirm receipt, an 8 s after-sales window, 5 s to pay, the overdue sweep every 500 ms.
 */
async function systemWithTimersClockOff(name: string, skewMs: number): Promise<{ system: OrderSystem; timers: RunningWorkers }> {
  const system = await startOrderSystem(name, {
    WORKER_QUEUES: 'orders,payments,fulfillment',
    AUTO_CONFIRM_MS: String(TIMER_MS),
    AFTER_SALES_WINDOW_MS: String(TIMER_MS),
    // the orders the tests ship are paid within it, however slow their persisting
    PAYMENT_TIMEOUT_MS: '5000',
    FLASH_SALE_PAYMENT_TIMEOUT_MS: '5000',
    OVERDUE_SWEEP_INTERVAL_MS: '500',
    // each order persisted alone has a deadline job of its own for its test to lose, though the tests check out
    // together (a batch's orders due in one second share one)
    PERSIST_BATCH_SIZE: '1',
  });
  const timers = startWorkers({ ...connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'timers' }), pino({ level: 'silent' })), clock: () => new Date(Date.now() + skewMs) });
  await system.createSku({ skuId: 'LAMP', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
  return { system, timers };
}

function helpers(system: () => OrderSystem) {
  const at = (order: any, action: string) => Date.parse(order.history.findLast((entry: any) => entry.action === action).at);
  return {
    at,
    /** An order of one lamp, paid and shipped by the warehouse: SHIPPED. */
    async shipped(buyer: string) {
      const orderId = await system().shipped(buyer, [{ skuId: 'LAMP', qty: 1 }]);
      return { orderId, shippedAt: at(await system().order(orderId), 'ship') };
    },
    /** A timer job added to run now, under an id of its own (a dead letter replayed, a duplicate, a job promoted early): it is settled once it left waiting and active. */
    async runNow(name: string, orderId: string, userId: string) {
      const job = await system().workers.deps.queues.timers.add(name as typeof JOB.autoConfirm, { orderId, userId }, { jobId: `early-${name}-${orderId}` });
      await waitFor(async () => !['waiting', 'active'].includes(await job.getState()), { what: `the early ${name} job of ${orderId} to run` });
    },
    async askReturn(buyer: string, orderId: string) {
      return system().request('POST', `/v1/orders/${orderId}/returns`, { token: system().token(buyer), body: { reason: 'too dim', items: [{ skuId: 'LAMP', qty: 1 }] } });
    },
  };
}

/**
 * An order is confirmed received AUTO_CONFIRM_MS after it shipped, and completed (its
 * after-sales window closed: no return is taken after) AFTER_SALES_WINDOW_MS after its last
 * delivery, by MySQL's clock: not by the clock of the worker that runs the timers, which may run
 * ahead, nor when a timer job runs early (replayed, duplicated, promoted by a clock ahead).
 * The two systems share nothing and each test has its own buyers and orders, so all run side by
 * side while they wait out the timers.
 */
describe.concurrent('order timers run by a worker whose clock runs 10 minutes ahead', () => {
  let system: OrderSystem;
  let timers: RunningWorkers;
  const { at, shipped, runNow, askReturn } = helpers(() => system);

  beforeAll(async () => {
    ({ system, timers } = await systemWithTimersClockOff('timers_clock_ahead', MINUTES_10));
  }, 60_000);
  afterAll(async () => {
    await timers?.close();
    await system?.close();
  });

  it('a shipped order stays SHIPPED, for its buyer to confirm, until AUTO_CONFIRM_MS after it shipped, though its sweeps and an early auto-confirm job find it; then it is confirmed', async () => {
    const { orderId, shippedAt } = await shipped('amy');
    await runNow(JOB.autoConfirm, orderId, 'amy');
    await sleep(1_500);
    expect(Date.now()).toBeLessThan(shippedAt + TIMER_MS);
    expect((await system.order(orderId)).status).toBe('SHIPPED');

    const delivered = await system.waitForStatus(orderId, 'DELIVERED', 30_000);
    expect(Date.now()).toBeGreaterThanOrEqual(shippedAt + TIMER_MS);
    expect(delivered.history.at(-1)).toMatchObject({ from: 'SHIPPED', action: 'auto_confirm', to: 'DELIVERED', actor: 'system' });
    // recorded by MySQL's clock, which found it due, not 10 minutes ahead
    expect(at(delivered, 'auto_confirm') - shippedAt).toBeGreaterThanOrEqual(TIMER_MS);
    expect(at(delivered, 'auto_confirm') - shippedAt).toBeLessThan(60_000);
  });

  it('a delivered order stays DELIVERED, its buyer’s return taken, until its after-sales window closes, though its sweeps and an early completion job find it; then it completes', async () => {
    const [kept, returned] = await Promise.all([shipped('bea'), shipped('cal')]);
    for (const [buyer, orderId] of [['bea', kept.orderId], ['cal', returned.orderId]] as const) {
      expect((await system.request('POST', `/v1/orders/${orderId}/confirm-receipt`, { token: system.token(buyer) })).status).toBe(200);
    }
    const deliveredAt = at(await system.waitForStatus(kept.orderId, 'DELIVERED'), 'confirm_receipt');
    await Promise.all([runNow(JOB.completeOrder, kept.orderId, 'bea'), runNow(JOB.completeOrder, returned.orderId, 'cal')]);
    await sleep(1_500);
    expect(Date.now()).toBeLessThan(deliveredAt + TIMER_MS);
    expect((await system.order(kept.orderId)).status).toBe('DELIVERED');
    const asked = await askReturn('cal', returned.orderId);
    expect([asked.status, asked.body.code]).toEqual([202, undefined]);
    await system.waitForStatus(returned.orderId, 'RETURN_REQUESTED');

    const completed = await system.waitForStatus(kept.orderId, 'COMPLETED', 30_000);
    expect(Date.now()).toBeGreaterThanOrEqual(deliveredAt + TIMER_MS);
    expect(completed.history.at(-1)).toMatchObject({ from: 'DELIVERED', action: 'complete', to: 'COMPLETED', actor: 'system' });
  });
});

describe.concurrent('order timers run by a worker whose clock runs 10 minutes behind', () => {
  let system: OrderSystem;
  let timers: RunningWorkers;
  const { at, shipped, askReturn } = helpers(() => system);

  beforeAll(async () => {
    ({ system, timers } = await systemWithTimersClockOff('timers_clock_behind', -MINUTES_10));
  }, 60_000);
  afterAll(async () => {
    await timers?.close();
    await system?.close();
  });

  it('its overdue sweep expires an unpaid order whose deadline job was lost a sweep interval after its deadline, and its lamp goes back on sale', async () => {
    const stock = async () => (await system.request('GET', '/v1/admin/skus/LAMP', { token: system.token('ops', 'admin') })).body.stock;
    const orderId = await system.checkout('dee', [{ skuId: 'LAMP', qty: 1 }]);
    const pending = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await (await waitFor(async () => system.workers.deps.queues.timers.getJob(`expire-${orderId}`), { what: 'the order’s deadline job' })).remove();

    const expired = await system.waitForStatus(orderId, 'EXPIRED', 30_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(pending.paymentDeadline));
    expect(expired.history.at(-1)).toMatchObject({ action: 'expire', actor: 'system', detail: 'payment deadline passed; its deadline job was gone' });
    await waitFor(async () => (await stock()).reserved === 0, { what: 'the lamp back on sale' });
  });

  it('an order it auto-confirms gets its whole after-sales window from then: DELIVERED through its sweeps, its buyer’s return taken', async () => {
    const { orderId, shippedAt } = await shipped('eli');
    const delivered = await system.waitForStatus(orderId, 'DELIVERED', 30_000);
    expect(delivered.history.at(-1)).toMatchObject({ action: 'auto_confirm', actor: 'system' });
    const confirmedAt = at(delivered, 'auto_confirm');
    expect(confirmedAt - shippedAt).toBeGreaterThanOrEqual(TIMER_MS);
    expect(confirmedAt - shippedAt).toBeLessThan(60_000);
    await sleep(1_500);
    expect(Date.now()).toBeLessThan(confirmedAt + TIMER_MS);
    expect((await system.order(orderId)).status).toBe('DELIVERED');
    const asked = await askReturn('eli', orderId);
    expect([asked.status, asked.body.code]).toEqual([202, undefined]);
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { JOB } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const TIMER_MS = 3_000;
const PAY_MS = 4_000;
const MINUTES_10 = 10 * 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The timer jobs a worker adds fall due at the order's deadline as MySQL holds it: one added again
 * by a retried job waits only what is left, and the clock of the worker that adds it does not move
 * it. Its orders are persisted by a worker whose clock runs 10 minutes behind; 3 s to confirm
 * receipt, a 3 s after-sales window, 4 s to pay. The overdue sweep, which would catch a late
 * timer, does not come round during these tests (every 10 minutes).
 */
describe('timer jobs added by workers', () => {
  let system: OrderSystem;
  let persisting: RunningWorkers;

  beforeAll(async () => {
    system = await startOrderSystem('timer_job_deadlines', {
      WORKER_QUEUES: 'timers,payments,fulfillment',
      AUTO_CONFIRM_MS: String(TIMER_MS),
      AFTER_SALES_WINDOW_MS: String(TIMER_MS),
      PAYMENT_TIMEOUT_MS: String(PAY_MS),
      FLASH_SALE_PAYMENT_TIMEOUT_MS: String(PAY_MS),
      OVERDUE_SWEEP_INTERVAL_MS: String(MINUTES_10),
    });
    const behind = () => new Date(Date.now() - MINUTES_10);
    persisting = startWorkers({ ...connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'orders' }), pino({ level: 'silent' })), clock: behind });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  }, 60_000);
  afterAll(async () => {
    await persisting?.close();
    await system?.close();
  });

  const entered = (order: any, status: string) => Date.parse(order.history.findLast((step: any) => step.to === status).at);

  it.concurrent('an unpaid order persisted by a worker whose clock runs 10 minutes behind expires at its payment deadline, not 10 minutes later', async () => {
    const orderId = await system.checkout('ann', [{ skuId: 'LAMP', qty: 1 }]);
    const pending = await system.waitForStatus(orderId, 'PENDING_PAYMENT');

    const expired = await system.waitForStatus(orderId, 'EXPIRED', 15_000);
    expect(expired.history.at(-1)).toMatchObject({ from: 'PENDING_PAYMENT', action: 'expire', actor: 'system', detail: 'payment deadline passed' });
    const late = entered(expired, 'EXPIRED') - Date.parse(pending.paymentDeadline);
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(1_500);
  });

  it.concurrent('an auto-confirmation whose completion job was lost, its job run again 2.5 s later, completes the order when its after-sales window closes, not 2.5 s after', async () => {
    const orderId = await system.shipped('ben', [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'DELIVERED', 15_000);
    // the worker died after the confirmation committed, before it added the completion job
    const { timers } = system.workers.deps.queues;
    await (await waitFor(async () => timers.getJob(`complete-${orderId}`), { what: 'the completion job' })).remove();
    await sleep(2_500);
    const again = await timers.add(JOB.autoConfirm, { orderId, userId: 'ben' }, { jobId: `again-auto-confirm-${orderId}` });
    await waitFor(async () => !['waiting', 'active'].includes(await again.getState()), { what: 'the auto-confirm job run again' });

    const completed = await system.waitForStatus(orderId, 'COMPLETED', 15_000);
    expect(completed.history.map((step: any) => step.action).slice(-2)).toEqual(['auto_confirm', 'complete']);
    const waited = entered(completed, 'COMPLETED') - entered(completed, 'DELIVERED');
    expect(waited).toBeGreaterThanOrEqual(TIMER_MS);
    expect(waited).toBeLessThan(TIMER_MS + 1_500);
  });
});

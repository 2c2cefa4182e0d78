// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { createHmac } from 'node:crypto';
import { presaleDepositCents } from '@orders/domain';
import { ProcessRepository } from '@orders/persistence';
import { startApiProcess, waitFor, type ApiProcess } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

const TIMER_MS = 5_000;
/**
 * How late a timer may fall due and still count as on time: its poll's slack on a loaded box, yet
 * less than the 2.5 s a job enqueued again with its whole delay would be late by.
 */
const ON_TIME_MS = 2_000;
const MINUTES_10 = 10 * 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Node's options for a process whose clock runs `skewMs` off: Date.now() (by which BullMQ stamps the jobs it adds) and new Date() alike. */
function clockOffBy(skewMs: number): string {
  const skewed = `const Real = Date;
globalThis.Date = class extends Real {
  constructor(...at) { super(...(at.length > 0 ? at : [Real.now() + ${skewMs}])); }
  static now() { return Real.now() + ${skewMs}; }
  static [Symbol.hasInstance](value) { return value instanceof Real; }
};`;
  return `${process.env.NODE_OPTIONS ?? ''} --import=data:text/javascript,${encodeURIComponent(skewed)}`.trim();
}

/**
 * A timer (5 s to confirm receipt, a 5 s after-sales window, 5 s to pay a presale's balance) runs
 * out at the order's deadline as MySQL holds it. Its job enqueued again, because an external
 * system repeats a callback after the job was lost, waits only what is left; an api host whose
 * clock runs ahead does not make it late. The overdue sweep, which would catch a late timer,
 * does not come round during these tests (every 10 minutes).
 */
describe('timer jobs fall due at the order’s deadline by MySQL’s clock', () => {
  let system: OrderSystem;
  let aheadApi: ApiProcess;

  beforeAll(async () => {
    system = await startOrderSystem('timers_enqueued_again', {
      AUTO_CONFIRM_MS: String(TIMER_MS),
      AFTER_SALES_WINDOW_MS: String(TIMER_MS),
      PRESALE_BALANCE_TIMEOUT_MS: String(TIMER_MS),
      PRESALE_DEPOSIT_PERCENT: '20',
      OVERDUE_SWEEP_INTERVAL_MS: String(MINUTES_10),
    });
    const sku = { merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement' } as const;
    await system.createSku({ ...sku, skuId: 'LAMP', priceCents: 2_400, stock: 20 });
    await system.createSku({ ...sku, skuId: 'NEXT-CONSOLE', priceCents: 50_000, stock: 10, orderType: 'presale' });
    aheadApi = await startApiProcess({ ...system.env.env, NODE_OPTIONS: clockOffBy(MINUTES_10) }, 5);
  }, 60_000);
  afterAll(async () => {
    await aheadApi?.close();
    await system?.close();
  });

  const entered = (order: any, status: string) => Date.parse(order.history.findLast((step: any) => step.to === status).at);
  /** The order's last step is the timer's `action`, taken TIMER_MS after it entered `from` (within ON_TIME_MS), not later. */
  const expectTimerOnTime = (order: any, from: string, action: string) => {
    expect(order.history.at(-1)).toMatchObject({ from, action, actor: 'system' });
    const waited = entered(order, order.status) - entered(order, from);
    expect(waited).toBeGreaterThanOrEqual(TIMER_MS);
    expect(waited).toBeLessThan(TIMER_MS + ON_TIME_MS);
  };
  /** The order's timer job is lost (Redis lost it, or the process died before adding it). */
  const lose = async (jobId: string) => (await waitFor(async () => system.workers.deps.queues.timers.getJob(jobId), { what: `the timer job ${jobId}` })).remove();
  /** An order of one lamp, paid, shipped by the warehouse: SHIPPED. */
  const shipped = (buyer: string) => system.shipped(buyer, [{ skuId: 'LAMP', qty: 1 }]);
  async function delivered(buyer: string): Promise<string> {
    const orderId = await shipped(buyer);
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'DELIVERED' } })).body.callbackStatus).toBe(200);
    await system.waitForStatus(orderId, 'DELIVERED');
    return orderId;
  }
  /** The warehouse's event sent again, 2.5 s after the first: nothing changes, and the order's follow-ups are enqueued again. */
  async function warehouseRepeats(orderId: string, event: string) {
    await sleep(2_500);
    const repeated = await system.signedCallback('warehouse', { orderId, event, at: new Date().toISOString() });
    expect([repeated.status, repeated.body.changed]).toEqual([200, false]);
  }

  it.concurrent('a shipped order whose auto-confirm job was lost, SHIPPED repeated 2.5 s later, is confirmed AUTO_CONFIRM_MS after it shipped, not 2.5 s after that', async () => {
    const orderId = await shipped('amy');
    await lose(`auto-confirm-${orderId}`);
    await warehouseRepeats(orderId, 'SHIPPED');

    const confirmed = await system.waitForStatus(orderId, 'DELIVERED', 15_000);
    expectTimerOnTime(confirmed, 'SHIPPED', 'auto_confirm');
  });

  it.concurrent('a delivered order whose completion job was lost, DELIVERED repeated 2.5 s later, completes when its after-sales window closes, not 2.5 s after', async () => {
    const orderId = await delivered('bea');
    await lose(`complete-${orderId}`);
    await warehouseRepeats(orderId, 'DELIVERED');

    const completed = await system.waitForStatus(orderId, 'COMPLETED', 15_000);
    expectTimerOnTime(completed, 'DELIVERED', 'complete');
  });

  it.concurrent('a presale whose balance job was lost, its deposit’s callback repeated 2.5 s later, forfeits the deposit at its balance deadline, not 2.5 s after', async () => {
    const orderId = await system.checkout('cal', [{ skuId: 'NEXT-CONSOLE', qty: 1 }]);
    const pending = await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    const amountCents = presaleDepositCents(pending.amounts.payableCents, system.env.config.PRESALE_DEPOSIT_PERCENT);
    const { payment } = await new ProcessRepository(system.env.db).openPayment({ orderId, purpose: 'deposit', method: 'card', amountCents, at: new Date() });
    const callback = { orderId, paymentId: payment.payment_id, transactionId: `tx-${payment.payment_id}`, status: 'SUCCEEDED', amountCents, at: new Date().toISOString() };
    expect((await system.signedCallback('payment', callback)).body.status).toBe('DEPOSIT_PAID');
    const { balanceDeadline } = await system.order(orderId);
    await lose(`expire-balance-${orderId}`);
    await sleep(2_500);
    const repeated = await system.signedCallback('payment', callback);
    expect([repeated.status, repeated.body.changed]).toEqual([200, false]);

    const forfeited = await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', 15_000);
    expect(forfeited.history.at(-1)).toMatchObject({ from: 'DEPOSIT_PAID', action: 'expire_balance', actor: 'system' });
    const late = entered(forfeited, 'DEPOSIT_FORFEITED') - Date.parse(balanceDeadline);
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(ON_TIME_MS);
  });

  it.concurrent('an order delivered through an api host whose clock runs 10 minutes ahead completes when its after-sales window closes, not 10 minutes later', async () => {
    const orderId = await shipped('dee');
    const raw = JSON.stringify({ orderId, event: 'DELIVERED', at: new Date(Date.now() + MINUTES_10).toISOString() });
    const signature = `sha256=${createHmac('sha256', system.env.config.WAREHOUSE_CALLBACK_SECRET).update(raw).digest('hex')}`;
    const answer = await aheadApi.request('POST', '/v1/callbacks/warehouse', { body: raw, headers: { 'x-signature': signature } });
    expect([answer.status, answer.body.status]).toEqual([200, 'DELIVERED']);

    const completed = await system.waitForStatus(orderId, 'COMPLETED', 15_000);
    expectTimerOnTime(completed, 'DELIVERED', 'complete');
  });
});

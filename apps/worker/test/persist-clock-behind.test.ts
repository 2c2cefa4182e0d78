import { loadConfig } from '@orders/config';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A checkout is dated by Redis's clock, a payment by the api's; the worker that writes the order to
 * MySQL and hands it to the warehouse runs on a host whose clock is 3 s behind them (NTP keeps hosts
 * close, not equal). Its steps were dated before the ones they follow: every order's history read
 * "awaiting payment" before "placed" (clocks review), and its hand-over before its payment.
 */
describe('orders moved on by a worker whose clock runs 3 s behind Redis’s and the api’s', () => {
  let system: OrderSystem;
  let behind: RunningWorkers;

  beforeAll(async () => {
    system = await startOrderSystem('persist_clock_behind', { WORKER_QUEUES: 'timers' });
    behind = startWorkers({ ...connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'orders,payments,fulfillment' }), pino({ level: 'silent' })), clock: () => new Date(Date.now() - 3_000) });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await behind?.close();
    await system?.close();
  });

  it("reads an order's history in the order it happened, placed before awaiting payment, and the order written no earlier than placed", async () => {
    const orderId = await system.checkout('ada', [{ skuId: 'LAMP', qty: 1 }]);
    const order = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const steps = order.history.map((step: { action: string; at: string }) => [step.action, Date.parse(step.at)] as const);
    expect(steps.map(([action]: readonly [string, number]) => action)).toEqual(['checkout', 'persist']);
    expect(steps[1][1]).toBeGreaterThanOrEqual(steps[0][1]);
    expect(Date.parse(order.createdAt)).toBeGreaterThanOrEqual(steps[0][1]);
  });

  it('dates each later step no earlier than the one before it: paid, then handed to the warehouse', async () => {
    const orderId = await system.checkout('bo', [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('bo'), body: { method: 'card' } })).status).toBe(202);
    const order = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const steps: Array<{ action: string; at: string }> = order.history;
    expect(steps.length).toBeGreaterThanOrEqual(4);
    const datedBeforeTheStepBefore = steps.filter((step, i) => i > 0 && Date.parse(step.at) < Date.parse(steps[i - 1]!.at));
    expect(datedBeforeTheStepBefore, JSON.stringify(steps)).toEqual([]);
  });
});

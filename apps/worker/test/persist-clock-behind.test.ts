import { loadConfig } from '@orders/config';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A checkout is dated by Redis's clock; the worker that writes the order to MySQL runs on a host
 * whose clock is 3 s behind it (NTP keeps hosts close, not equal). Its step was dated before the
 * checkout's, every order's history read "awaiting payment" before "placed" (clocks review).
 */
describe('orders written by a worker whose clock runs 3 s behind Redis’s', () => {
  let system: OrderSystem;
  let behind: RunningWorkers;

  beforeAll(async () => {
    system = await startOrderSystem('persist_clock_behind', { WORKER_QUEUES: 'timers,payments,fulfillment' });
    behind = startWorkers({ ...connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'orders' }), pino({ level: 'silent' })), clock: () => new Date(Date.now() - 3_000) });
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
});

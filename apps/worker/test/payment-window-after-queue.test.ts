// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { ordersCarriedBy } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const PAYMENT_WINDOW_MS = 4_000;

/**
 * An order waits in the queue while no worker persists it (a backlog, the workers or MySQL
 * away), and its buyer cannot pay it meanwhile (409, still in the queue): the time to pay
 * runs from when it can be paid, not from the checkout.
 */
describe('an order that waited in the queue longer than its payment window', () => {
  let system: OrderSystem;
  let persisting: RunningWorkers | undefined;

  beforeAll(async () => {
    // no worker serves `orders` until the test starts one: accepted orders wait in the queue
    system = await startOrderSystem('payment_window_after_queue', {
      PAYMENT_TIMEOUT_MS: String(PAYMENT_WINDOW_MS),
      FLASH_SALE_PAYMENT_TIMEOUT_MS: String(PAYMENT_WINDOW_MS),
      WORKER_QUEUES: 'timers,payments,fulfillment',
    });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 2, deduction: 'placement' });
  }, 60_000);
  afterAll(async () => {
    await persisting?.close();
    await system?.close();
  });

  it('leaves its buyers the whole payment window from when it is persisted: the buyer who pays then gets the lamp, the other one’s expires at its new deadline', async () => {
    const [annOrder, benOrder] = [await system.checkout('ann', [{ skuId: 'LAMP', qty: 1 }]), await system.checkout('ben', [{ skuId: 'LAMP', qty: 1 }])];
    const pay = () => system.request('POST', `/v1/orders/${annOrder}/pay`, { token: system.token('ann'), body: { method: 'card' } });
    const queued = await pay();
    expect([queued.status, queued.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    const accepted = await system.order(benOrder);
    expect(accepted.status).toBe('ACCEPTED');
    // both wait past the deadline their checkout set
    await new Promise((resolve) => setTimeout(resolve, Date.parse(accepted.paymentDeadline) - Date.now() + 1_000));

    persisting = startWorkers(connectWorker({ ...system.env.config, WORKER_QUEUES: ['orders'] }, pino({ level: 'silent' })));
    const [ann, ben] = [await system.waitForStatus(annOrder, 'PENDING_PAYMENT'), await system.waitForStatus(benOrder, 'PENDING_PAYMENT')];
    for (const pending of [ann, ben]) {
      const persisted = pending.history.find((step: any) => step.action === 'persist');
      expect(Date.parse(pending.paymentDeadline)).toBeGreaterThanOrEqual(Date.parse(persisted.at) + PAYMENT_WINDOW_MS);
      expect(pending.nextTimer).toEqual({ action: 'expire', dueAt: pending.paymentDeadline });
    }
    // ben's deadline job (scheduled a moment after the commit) falls due at the deadline written, not at the one the checkout set
    const bensJob = await waitFor(async () => (await system.workers.deps.queues.timers.getDelayed()).find((job) => ordersCarriedBy(job.data).includes(benOrder)), { what: "ben's deadline job" });
    expect(bensJob.timestamp + bensJob.delay).toBeGreaterThanOrEqual(Date.parse(ben.paymentDeadline));

    expect((await pay()).status).toBe(202);
    const paid = await system.waitForStatus(annOrder, 'IN_FULFILLMENT');
    expect(paid.history.map((step: any) => step.action)).toEqual(['checkout', 'persist', 'pay', 'fulfil']);
    const expired = await system.waitForStatus(benOrder, 'EXPIRED');
    expect(Date.parse(expired.history.at(-1).at)).toBeGreaterThanOrEqual(Date.parse(ben.paymentDeadline));
    await waitFor(async () => (await system.stockOf('LAMP')).reserved === 0, { what: "ben's lamp back on sale" });
    expect(await system.stockOf('LAMP')).toEqual({ available: 1, reserved: 0, sold: 1 });
  });
});

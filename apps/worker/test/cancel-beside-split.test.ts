/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { holdRow, rowLockWaits, waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The buyer cancels a paid order as the worker splits it: the cancel read it PAID and whole, and
 * by the time it writes, the order is split into its children (still PAID, a version on). It is
 * cancelled as it stands then (each child refunded in full), not refused because it moved on.
 * The fulfillment queue, which splits orders, is served only once the test asks for it.
 */
describe('a cancel written just after the split it did not see', () => {
  let system: OrderSystem;
  let fulfilment: RunningWorkers | undefined;
  beforeAll(async () => {
    system = await startOrderSystem('cancel_beside_split', { WORKER_QUEUES: 'orders,timers,payments' });
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 400, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-north', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await fulfilment?.close();
    await system?.close();
  });

  /** How many of this file's database's transactions wait for a row lock. */
  const waitingForLocks = async () => (await rowLockWaits(system.env.db)).length;

  it('refunds both children in full instead of answering 409', async () => {
    const orderId = await system.checkout('bea', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'MUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('bea'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'PAID');

    // another session holds the order's row: the split's write queues behind it, then the cancel's
    const row = await holdRow(system.env.db, 'orders', 'order_id', orderId);
    let cancel: ReturnType<OrderSystem['request']>;
    try {
      fulfilment = startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
      await waitFor(async () => (await waitingForLocks()) === 1 || null, { what: "the split's write waiting", timeoutMs: 10_000, intervalMs: 200 });
      cancel = system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('bea'), body: { reason: 'changed my mind' } });
      await waitFor(async () => (await waitingForLocks()) === 2 || null, { what: "the cancel's write waiting behind it", timeoutMs: 10_000, intervalMs: 200 });
    } finally {
      // released whatever happened: held, it would keep the file's clean-up from dropping the database
      await row.release();
    }

    const cancelled = await cancel;
    expect([cancelled.status, cancelled.body.status, cancelled.body.subOrders?.length]).toEqual([200, 'REFUNDING', 2]);
    await system.waitForStatus(orderId, 'REFUNDED', 30_000);
    const { payments, refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    const [charge] = payments.filter((p: any) => p.orderId === orderId);
    expect(refunds.filter((r: any) => r.paymentId === charge.paymentId).reduce((sum: number, r: any) => sum + r.amountCents, 0)).toBe(charge.amountCents);
  });
});

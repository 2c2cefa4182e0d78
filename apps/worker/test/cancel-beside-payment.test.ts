/* eslint-disable @typescript-eslint/no-explicit-any */
import { holdRow, rowLockWaits, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The buyer cancels as their payment lands: the cancel read the order unpaid, and by the time
 * it writes, the order is paid. It is cancelled as it stands then (API.md: after payment and
 * before shipment, refunded in full), not refused because it moved on.
 */
describe('a cancel written just after the payment it did not see', () => {
  let system: OrderSystem;
  beforeAll(async () => {
    system = await startOrderSystem('cancel_beside_payment');
    await system.createSku({ skuId: 'KETTLE', priceCents: 4_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    await system?.close();
  });

  /** How many of this file's database's transactions wait for a row lock. */
  const waitingForLocks = async () => (await rowLockWaits(system.env.db)).length;

  /**
   * The buyer's pay, answered late by the payment system, whose callback then lands as the
   * buyer cancels: another session holds the order's row, the payment's write queues behind
   * it, then the cancel's. Their answers, once the row is let go.
   */
  async function cancelledAsPaymentLands(orderId: string, buyer: string) {
    // the payment system answers the worker late: the callback below is what settles the payment
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 5_000 } });
    const paymentId = (await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).body.paymentId as string;
    // its request there first: a payment settled before the worker reads it is never asked for, and there would be no charge to refund
    await system.paymentRequested(paymentId);
    const amountCents = Number((await system.env.db.selectFrom('payments').select('amount_cents').where('payment_id', '=', paymentId).executeTakeFirstOrThrow()).amount_cents);

    const row = await holdRow(system.env.db, 'orders', 'order_id', orderId);
    let paid: ReturnType<OrderSystem['signedCallback']>;
    let cancel: ReturnType<OrderSystem['request']>;
    try {
      paid = system.signedCallback('payment', { orderId, paymentId, transactionId: `tx-beside-cancel-${orderId}`, status: 'SUCCEEDED', amountCents, at: new Date().toISOString() });
      await waitFor(async () => (await waitingForLocks()) === 1 || null, { what: "the payment's write waiting", timeoutMs: 10_000, intervalMs: 200 });
      cancel = system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(buyer), body: { reason: 'changed my mind' } });
      await waitFor(async () => (await waitingForLocks()) === 2 || null, { what: "the cancel's write waiting behind it", timeoutMs: 10_000, intervalMs: 200 });
    } finally {
      // released whatever happened: held, it would keep the file's clean-up from dropping the database
      await row.release();
    }
    const answers = { paid: (await paid).body, cancelled: await cancel };
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    // the payment system's own answer to the worker, held by its latency, has come: nothing of it is left in flight
    await expect
      .poll(async () => ((await system.paymentSim.request('GET', '/__admin/payments')).body.payments as any[]).some((payment) => payment.paymentId === paymentId), { timeout: 15_000 })
      .toBe(true);
    return { paymentId, amountCents, ...answers };
  }

  it('refunds the order in full instead of answering 409', async () => {
    const orderId = await system.checkout('fia', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const { paymentId, paid, cancelled } = await cancelledAsPaymentLands(orderId, 'fia');

    expect(paid).toEqual({ changed: true, status: 'PAID' });
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
    const order = await system.waitForStatus(orderId, 'REFUNDED', 30_000);
    expect(order.amounts.refundedCents).toBe(4_500);
    const { refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    expect(refunds.filter((r: any) => r.paymentId === paymentId).map((r: any) => r.amountCents)).toEqual([4_500]);
  });

  it('gives a presale’s deposit back when it landed as the buyer cancelled the order awaiting it, rather than forfeiting it', async () => {
    const orderId = await system.persisted('presale', 'gus', [{ skuId: 'KETTLE', qty: 1 }]);
    const { paymentId, amountCents: deposit, paid, cancelled } = await cancelledAsPaymentLands(orderId, 'gus');

    expect(paid).toEqual({ changed: true, status: 'DEPOSIT_PAID' });
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
    const order = await system.waitForStatus(orderId, 'REFUNDED', 30_000);
    expect(order.amounts.refundedCents).toBe(deposit);
    const { refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    expect(refunds.filter((r: any) => r.paymentId === paymentId).map((r: any) => r.amountCents)).toEqual([deposit]);
  });
});

/* eslint-disable @typescript-eslint/no-explicit-any */
import { holdRow, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/** A late payment's refund and the buyer's cancel of the order, written at the same moment: the order counts both. */
describe('a late payment given back beside a cancel', () => {
  let system: OrderSystem;
  beforeAll(async () => {
    system = await startOrderSystem('late_refund_beside_cancel');
    await system.createSku({ skuId: 'CONSOLE', priceCents: 50_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const pay = (orderId: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('eli'), body: { method: 'card' } });
  const refundsAsked = async (orderId: string) =>
    (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds.filter((r: any) => r.paymentId.startsWith(orderId)).length as number;

  it('keeps both amounts in refundedCents when the cancel commits while the late refund is on its way', async () => {
    const orderId = await system.checkout('eli', [{ skuId: 'CONSOLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const reported = (paymentId: string, status: 'FAILED' | 'SUCCEEDED', transactionId: string) =>
      system.signedCallback('payment', { orderId, paymentId, transactionId, status, amountCents: 50_000, at: new Date().toISOString() });
    // the payment system is slow today: the buyer is told the first attempt failed and pays again; both take the money.
    // Its own callbacks come as long after each charge: the first one reported below must come before them, on a loaded box too
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 2_500 } });
    const first = (await pay(orderId)).body.paymentId as string;
    await system.paymentRequested(first);
    await reported(first, 'FAILED', 'tx-early-failure');
    const second = (await pay(orderId)).body.paymentId as string;
    await waitFor(async () => (await system.paymentSim.request('GET', '/__admin/payments')).body.payments.filter((p: any) => p.orderId === orderId).length === 2, {
      what: 'both charges',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    expect((await reported(first, 'SUCCEEDED', 'tx-1')).body).toEqual({ changed: true, status: 'PAID' });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');

    // another session holds the order's row while the late refund job reads the order and the buyer cancels:
    // both writes queue behind it, the cancel's first
    const row = await holdRow(system.env.db, 'orders', 'order_id', orderId);
    expect((await reported(second, 'SUCCEEDED', 'tx-2')).body.changed).toBe(false);
    const cancel = system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('eli'), body: { reason: 'paid twice' } });
    await waitFor(async () => (await refundsAsked(orderId)) === 1, { what: 'the late refund asked', timeoutMs: 10_000, intervalMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 800));
    await row.release();
    expect((await cancel).status).toBe(200);
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });

    await waitFor(async () => (await refundsAsked(orderId)) === 2, { what: 'two refunds at the payment system', timeoutMs: 20_000 });
    // the late refund's record may land after the cancel's confirmation (its answer waited out the payment
    // system's latency): the order ends REFUNDED with both, never one of them lost
    const order = await waitFor(
      async () => {
        const current = await system.order(orderId);
        return current.status === 'REFUNDED' && current.amounts.refundedCents >= 100_000 && current;
      },
      { what: 'the order refunded with both amounts', timeoutMs: 20_000, explain: async () => JSON.stringify((await system.order(orderId)).amounts) },
    );
    expect(order.amounts.refundedCents).toBe(100_000);
  });
});

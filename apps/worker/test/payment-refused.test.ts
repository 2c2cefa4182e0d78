import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('a payment request the payment system refuses outright', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('payment_refused');
    await system.createSku({ skuId: 'BOOK', priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { refusalRate: 0 } });
    await system?.close();
  });

  const pay = async (orderId: string) => (await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ora'), body: { method: 'card' } })).body;
  const paymentStatus = async (paymentId: string) =>
    (await system.env.db.selectFrom('payments').select('status').where('payment_id', '=', paymentId).executeTakeFirstOrThrow()).status;

  it('fails that payment at once, so the buyer can pay again with a new attempt', async () => {
    const orderId = await system.checkout('ora', [{ skuId: 'BOOK', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refusalRate: 1 } });
    const first = await pay(orderId);
    await waitFor(async () => (await paymentStatus(first.paymentId)) === 'FAILED', { what: 'the refused payment failed' });
    expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');

    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refusalRate: 0 } });
    const second = await pay(orderId);
    expect(second.paymentId).not.toBe(first.paymentId);
    const paid = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(paid.payment.paymentId).toBe(second.paymentId);
    const charged = (await system.paymentSim.request('GET', '/__admin/payments')).body.payments.filter((p: { orderId: string }) => p.orderId === orderId);
    expect(charged.map((p: { paymentId: string; charges: number }) => [p.paymentId, p.charges])).toEqual([[second.paymentId, 1]]);
  });
});

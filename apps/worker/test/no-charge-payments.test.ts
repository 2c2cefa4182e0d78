import { buyerAddress } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('an order with nothing to pay (a coupon covering everything)', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('no_charge_payments');
    await system.createSku({ skuId: 'SAMPLE', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'PRE-SAMPLE', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', orderType: 'presale' });
    await system.createSku({ skuId: 'PRE-PENNY', priceCents: 1, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', orderType: 'presale' });
    const coupon = { code: 'FREE', kind: 'percent', percentOff: 100, minSpendCents: 0, perBuyerLimit: 5, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
  });
  afterAll(async () => system?.close());

  const freeOrder = async (key: string, { skuId = 'SAMPLE', payableIn = 'PENDING_PAYMENT' } = {}) => {
    const answer = await system.request('POST', '/v1/orders', {
      token: system.token('flo'),
      headers: { 'idempotency-key': key },
      body: { items: [{ skuId, qty: 1 }], address: buyerAddress, couponCode: 'FREE' },
    });
    expect(answer.status).toBe(202);
    expect((await system.waitForStatus(answer.body.orderId, payableIn)).amounts.payableCents).toBe(0);
    return answer.body.orderId as string;
  };
  const pay = (orderId: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('flo'), body: { method: 'card' } });
  const seenByPaymentSystem = async (orderId: string) => {
    const { payments, refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    return [...payments, ...refunds].filter((entry: { orderId?: string; paymentId: string }) => entry.paymentId.startsWith(orderId));
  };

  it('is paid at once without asking the payment system, which would refuse a charge of nothing, and goes to the warehouse', async () => {
    const orderId = await freeOrder('flo-1');
    const paid = await pay(orderId);
    expect([paid.status, paid.body.status, paid.body.amountCents]).toEqual([202, 'SUCCEEDED', 0]);
    const order = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(order.payment).toMatchObject({ paymentId: paid.body.paymentId, transactionId: `no-charge-${paid.body.paymentId}` });
    expect(order.payment.paidAt).toEqual(expect.any(String));
    const again = await pay(orderId);
    expect([again.status, again.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect(await seenByPaymentSystem(orderId)).toEqual([]);
  });

  it('pays a presale of nothing with one pay, deposit and balance both, rather than waiting for a pay of nothing and forfeiting the goods at the balance deadline', async () => {
    const orderId = await freeOrder('flo-pre', { skuId: 'PRE-SAMPLE', payableIn: 'PENDING_DEPOSIT' });
    const paid = await pay(orderId);
    expect([paid.status, paid.body.purpose, paid.body.status, paid.body.amountCents]).toEqual([202, 'deposit', 'SUCCEEDED', 0]);
    const order = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(order.history.map((step: { action: string }) => step.action)).toEqual(expect.arrayContaining(['pay_deposit', 'pay']));
    expect(order.payments.map((p: { purpose: string; status: string; amountCents: number }) => [p.purpose, p.status, p.amountCents])).toEqual([
      ['deposit', 'SUCCEEDED', 0],
      ['balance', 'SUCCEEDED', 0],
    ]);
    expect(await seenByPaymentSystem(orderId)).toEqual([]);
  });

  it('is cancelled after payment without a refund to pay back: REFUNDED, the payment system asked nothing', async () => {
    const orderId = await freeOrder('flo-2');
    expect((await pay(orderId)).body.status).toBe('SUCCEEDED');
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('flo'), body: { reason: 'changed my mind' } });
    expect(cancelled.status).toBe(200);
    await system.waitForStatus(orderId, 'REFUNDED');
    expect(await seenByPaymentSystem(orderId)).toEqual([]);
  });

  it("pays a 1-cent presale's balance of nothing when the deposit's callback comes again, the one that recorded the deposit having failed before it paid the balance", async () => {
    const orderId = await system.checkout('pat', [{ skuId: 'PRE-PENNY', qty: 1 }]);
    expect((await system.waitForStatus(orderId, 'PENDING_DEPOSIT')).amounts.payableCents).toBe(1);
    // while this row holds the id the balance's next attempt takes, the balance cannot be opened: the
    // callback that records the deposit fails after its commit, and the payment system sends it again
    const now = new Date();
    const blocking = { payment_id: `${orderId}-balance-2`, order_id: orderId, purpose: 'balance' as const, attempt: 1, method: 'card', amount_cents: 0, status: 'FAILED' as const, transaction_id: null, paid_at: null, created_at: now, updated_at: now };
    await system.env.db.insertInto('payments').values(blocking).execute();
    const deposit = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('pat'), body: { method: 'card' } });
    expect([deposit.status, deposit.body.purpose, deposit.body.amountCents]).toEqual([202, 'deposit', 1]);
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    await system.env.db.deleteFrom('payments').where('payment_id', '=', blocking.payment_id).execute();

    const order = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(order.payments.map((p: { purpose: string; status: string; amountCents: number }) => [p.purpose, p.status, p.amountCents])).toEqual([
      ['deposit', 'SUCCEEDED', 1],
      ['balance', 'SUCCEEDED', 0],
    ]);
  });
});

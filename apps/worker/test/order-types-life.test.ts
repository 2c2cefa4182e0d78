import { waitFor } from '@orders/testing';
import { closeUnpaidOrder } from '@orders/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The lives of the types the checkout does not create yet (presale, virtual) and the
 * late payment, over the real payment and warehouse simulators.
 */
describe('every order type lives its own life', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('order_types_life', { PRESALE_DEPOSIT_PERCENT: '20', PRESALE_BALANCE_TIMEOUT_MS: '700', AFTER_SALES_WINDOW_MS: '200' });
    await system.createSku({ skuId: 'CONSOLE', priceCents: 50_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'GIFT-CARD', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'digital', stock: 100, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const pay = (orderId: string, buyer: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });

  it('a presale collects a 20% deposit, then the balance, and then ships', async () => {
    const orderId = await system.persisted('presale', 'eve', [{ skuId: 'CONSOLE', qty: 1 }]);
    expect((await system.order(orderId)).status).toBe('PENDING_DEPOSIT');
    const deposit = await pay(orderId, 'eve');
    expect(deposit.body).toMatchObject({ purpose: 'deposit', amountCents: 10_000 });
    const depositPaid = await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    expect(depositPaid.buyerStatus).toBe('To pay balance');
    const balance = await pay(orderId, 'eve');
    expect(balance.body).toMatchObject({ purpose: 'balance', amountCents: 40_000 });
    const inFulfilment = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(inFulfilment.history.map((h: { action: string }) => h.action)).toEqual(['checkout', 'persist', 'pay_deposit', 'pay', 'fulfil']);
    const charged = (await system.paymentSim.request('GET', '/__admin/payments')).body.payments.filter((p: { orderId: string }) => p.orderId === orderId);
    expect(charged.map((p: { amountCents: number; charges: number }) => [p.amountCents, p.charges])).toEqual([
      [10_000, 1],
      [40_000, 1],
    ]);
  });

  it('a presale whose balance is not paid within its 700 ms deadline keeps the deposit and releases the unit in the ledger', async () => {
    const orderId = await system.persisted('presale', 'fay', [{ skuId: 'CONSOLE', qty: 1 }]);
    await pay(orderId, 'fay');
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    const forfeited = await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', 10_000);
    expect(forfeited.buyerStatus).toBe('Closed');
    expect(forfeited.history.at(-1)).toMatchObject({ from: 'DEPOSIT_PAID', action: 'expire_balance', to: 'DEPOSIT_FORFEITED', actor: 'system' });
    // the unit the presale held goes back on sale in the ledger (Redis holds no reservation for an order persisted by this test)
    const ledger = await system.env.db.selectFrom('stock_ledger').select(['kind', 'qty', 'reason']).where('order_id', '=', orderId).orderBy('id').execute();
    expect(ledger.map((row) => [row.kind, Number(row.qty), row.reason])).toEqual([
      ['reserve', -1, 'checkout'],
      ['release', 1, 'expire_balance'],
    ]);
    const balance = await pay(orderId, 'fay');
    expect([balance.status, balance.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
  });

  it('a virtual order is delivered by its payment and completes without a shipment', async () => {
    const orderId = await system.persisted('virtual', 'gus', [{ skuId: 'GIFT-CARD', qty: 2 }]);
    await pay(orderId, 'gus');
    const done = await system.waitForStatus(orderId, 'COMPLETED');
    expect(done.history.map((h: { action: string; actor: string }) => `${h.action}/${h.actor}`)).toEqual(['checkout/buyer', 'persist/system', 'pay/payment', 'deliver/system']);
    expect(done.shipments).toEqual([]);
    expect((await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.map((o: { orderId: string }) => o.orderId)).not.toContain(orderId);
  });

  it('a payment that arrives after its order expired is recorded and refunded, and the order stays expired', async () => {
    const orderId = await system.checkout('hal', [{ skuId: 'CONSOLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // the payment system is slow today: 600 ms to take the money, 600 more to call back
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 600 } });
    try {
      await pay(orderId, 'hal');
      await waitFor(async () => (await system.paymentSim.request('GET', '/__admin/payments')).body.payments.some((p: { orderId: string }) => p.orderId === orderId), {
        what: 'the charge',
        timeoutMs: 5_000,
        intervalMs: 20,
      });
      await closeUnpaidOrder(system.workers.deps, { orderId, action: 'expire', actor: 'system', detail: 'payment deadline passed' });
      const refunded = await waitFor(async () => {
        const sim = (await system.paymentSim.request('GET', '/__admin/payments')).body;
        return sim.refunds.find((r: { paymentId: string }) => r.paymentId.startsWith(orderId));
      });
      expect(refunded.amountCents).toBe(50_000);
      const order = await waitFor(async () => {
        const current = await system.order(orderId);
        return current.amounts.refundedCents === 50_000 && current;
      });
      expect(order.status).toBe('EXPIRED');
      expect(order.history.map((h: { action: string }) => h.action)).toEqual(['checkout', 'persist', 'expire']);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
  });
});

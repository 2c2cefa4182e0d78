import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('payment-time deduction', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('payment_deduction', { WAREHOUSE_SIM_STEP_MS: '0' });
    // plenty-of-stock SKUs are only checked at checkout and deducted when paid
    await system.createSku({ skuId: 'LAST-CHAIR', priceCents: 12_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
  });
  afterAll(async () => system?.close());

  it('two buyers race for the last unit and both pay: one is paid and shipped, the other refunded and closed; stock never negative', async () => {
    const [first, second] = [await system.checkout('ann', [{ skuId: 'LAST-CHAIR', qty: 1 }]), await system.checkout('ben', [{ skuId: 'LAST-CHAIR', qty: 1 }])];
    await Promise.all([system.waitForStatus(first, 'PENDING_PAYMENT'), system.waitForStatus(second, 'PENDING_PAYMENT')]);
    const admin = system.token('ops', 'admin');
    expect((await system.request('GET', '/v1/admin/skus/LAST-CHAIR', { token: admin })).body.stock).toEqual({ available: 1, reserved: 0, sold: 0 });

    const pays = await Promise.all([
      system.request('POST', `/v1/orders/${first}/pay`, { token: system.token('ann'), body: { method: 'card' } }),
      system.request('POST', `/v1/orders/${second}/pay`, { token: system.token('ben'), body: { method: 'wallet' } }),
    ]);
    expect(pays.map((p) => p.status)).toEqual([202, 202]);

    const settled = async (orderId: string) => {
      for (let i = 0; i < 300; i++) {
        const order = await system.order(orderId);
        if (['IN_FULFILLMENT', 'REFUNDED'].includes(order.status)) return order;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`order ${orderId} did not settle`);
    };
    const outcomes = await Promise.all([settled(first), settled(second)]);
    const winner = outcomes.find((o) => o.status === 'IN_FULFILLMENT');
    const loser = outcomes.find((o) => o.status === 'REFUNDED');
    expect(winner).toBeDefined();
    expect(loser).toBeDefined();
    expect(loser.buyerStatus).toBe('Closed');
    expect(loser.amounts.refundedCents).toBe(12_000);
    expect(loser.history.map((h: { action: string; actor: string }) => `${h.action}/${h.actor}`).slice(-3)).toEqual(['pay/payment', 'refund/system', 'refund_succeeded/payment']);

    // the winner ships
    const shipped = await system.warehouseSim.request('POST', `/__admin/orders/${winner.orderId}/events`, { body: { event: 'SHIPPED' } });
    expect(shipped.body.callbackStatus).toBe(200);
    expect((await system.order(winner.orderId)).status).toBe('SHIPPED');

    expect((await system.request('GET', '/v1/admin/skus/LAST-CHAIR', { token: admin })).body.stock).toEqual({ available: 0, reserved: 0, sold: 1 });
    expect(await system.workers.deps.catalog.ledgerAvailable('LAST-CHAIR')).toBe(0);
    const sim = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    expect(sim.payments).toHaveLength(2);
    expect(sim.refunds).toEqual([expect.objectContaining({ paymentId: expect.stringContaining(loser.orderId), amountCents: 12_000 })]);
  });
});

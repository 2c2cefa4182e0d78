import { settledSaleInvariants, waitFor } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The sale invariants the fault tests assert, on a buyer's money: two attempts that both
 * took it leave the shop the one that paid the order, once the other went back; and on
 * deadlines: a presale is stuck past its balance deadline only once it stopped waiting for a
 * balance asked in time.
 */
describe("the sale's promises on a buyer's money, when two payment attempts both took it, and on a presale's balance deadline", () => {
  let system: OrderSystem;
  const orderIds: string[] = [];

  beforeAll(async () => {
    system = await startOrderSystem('sale_invariants_money');
    await system.createSku({ skuId: 'TV', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'NEXT-TV', priceCents: 50_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', orderType: 'presale' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0, outage: false } });
    await system?.close();
  });

  const saleInvariants = (settleMs?: number, now?: Date) =>
    settledSaleInvariants({ db: system.env.db, redis: system.env.redis, keyPrefix: system.env.config.REDIS_KEY_PREFIX, acceptedOrderIds: orderIds, initialStock: { TV: 10 }, paymentWaitMs: system.env.config.PAYMENT_TIMEOUT_MS, now }, settleMs);
  const refundsAtPaymentSystem = async (paymentId: string) =>
    ((await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as Array<{ paymentId: string; amountCents: number }>).filter((r) => r.paymentId === paymentId);

  /** Both attempts take the money: the first is reported failed, then both succeeded. Returns [the one that paid, the late one]. */
  const payTwice = async (buyer: string, orderId: string, beforeTheyReport: () => Promise<unknown>) => {
    const pay = async () => (await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).body.paymentId as string;
    const reported = (paymentId: string, status: 'FAILED' | 'SUCCEEDED', transactionId: string) =>
      system.signedCallback('payment', { orderId, paymentId, transactionId, status, amountCents: 10_000, at: new Date().toISOString() });
    // the payment system takes 2.5 s to take the money, and as long to call back: its own callbacks come after ours, on a loaded box too
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 2_500 } });
    const first = await pay();
    // the worker sends the first attempt before its failure is reported (it sends none reported failed)
    await system.paymentRequested(first);
    await reported(first, 'FAILED', `tx-${buyer}-early-failure`);
    const second = await pay();
    await waitFor(
      async () => {
        const { payments } = (await system.paymentSim.request('GET', '/__admin/payments')).body as { payments: Array<{ orderId: string }> };
        return payments.filter((p) => p.orderId === orderId).length === 2;
      },
      { what: 'both charges', timeoutMs: 10_000, intervalMs: 20 },
    );
    await beforeTheyReport();
    expect((await reported(first, 'SUCCEEDED', `tx-${buyer}-1`)).body).toEqual({ changed: true, status: 'PAID' });
    expect((await reported(second, 'SUCCEEDED', `tx-${buyer}-2`)).body.changed).toBe(false);
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    return [first, second] as const;
  };

  it('holds once the late attempt went back whole: the order was paid once, by the attempt that paid it', async () => {
    const orderId = await system.checkout('ann', [{ skuId: 'TV', qty: 1 }]);
    orderIds.push(orderId);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const [, late] = await payTwice('ann', orderId, async () => undefined);
    await waitFor(async () => (await refundsAtPaymentSystem(late)).length === 1, { what: 'the late payment given back', timeoutMs: 20_000 });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');

    expect((await saleInvariants()).violations).toEqual([]);
  });

  it('is broken while the late attempt is still kept, and holds once it went back', async () => {
    const orderId = await system.checkout('bob', [{ skuId: 'TV', qty: 1 }]);
    orderIds.push(orderId);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // the payment system goes away before the late attempt can be given back
    const [, late] = await payTwice('bob', orderId, () => system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } }));
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');

    expect((await saleInvariants(1_000)).violations).toEqual([`1 payments came after their order was paid or closed and were not given back (e.g. ${late})`]);

    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    expect((await saleInvariants(20_000)).violations).toEqual([]);
    expect((await refundsAtPaymentSystem(late)).map((r) => r.amountCents)).toEqual([10_000]);
  });

  it('counts a presale past its balance deadline as stuck only once its deadline job stops waiting for the balance its buyer asked for in time', async () => {
    const pay = (orderId: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('cid'), body: { method: 'card' } });
    const orderId = await system.checkout('cid', [{ skuId: 'NEXT-TV', qty: 1 }]);
    orderIds.push(orderId);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    await pay(orderId);
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      // the buyer asks for the balance in time; the payment system is away, so it stays pending past the deadline
      expect((await pay(orderId)).body).toMatchObject({ purpose: 'balance', status: 'PENDING' });
      await system.env.db.updateTable('orders').set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL 10 SECOND` }).where('order_id', '=', orderId).execute();
      expect((await system.order(orderId)).status).toBe('DEPOSIT_PAID');
      expect((await saleInvariants(1_000)).violations).toEqual([]);
      // as seen once the wait for that balance (PAYMENT_TIMEOUT_MS past the deadline) is over, unforfeited
      const pastTheWait = new Date(Date.now() + system.env.config.PAYMENT_TIMEOUT_MS + 10_000);
      expect((await saleInvariants(0, pastTheWait)).violations).toEqual([`1 orders are past their deadline and still unpaid (e.g. ${orderId} DEPOSIT_PAID)`]);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
  });
});

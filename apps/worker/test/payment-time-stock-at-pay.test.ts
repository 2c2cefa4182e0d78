/* eslint-disable @typescript-eslint/no-explicit-any */
import { ledgerAvailable } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A SKU deducted at payment lets every buyer check out while units are on sale; its units are
 * taken when a payment lands. A buyer who pays once they are all gone is answered 409
 * OUT_OF_STOCK before the payment system is asked: not charged, to be refunded as sold out.
 */
describe('payment-time stock checked before charging', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('payment_time_at_pay', { WAREHOUSE_SIM_STEP_MS: '0' });
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'payment' });
  });
  afterAll(async () => system?.close());

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const pay = (orderId: string, buyer: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });

  /** Polls every order until each is in one of `statuses`. */
  async function allIn(orderIds: string[], statuses: string[], timeoutMs = 20_000): Promise<Map<string, any>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const orders = await Promise.all(orderIds.map((id) => system.order(id)));
      if (orders.every((o) => statuses.includes(o.status))) return new Map(orders.map((o) => [o.orderId as string, o]));
      if (Date.now() > deadline) throw new Error(`orders not in ${statuses.join('/')}: ${orders.filter((o) => !statuses.includes(o.status)).map((o) => `${o.orderId}:${o.status}`).slice(0, 10).join(', ')}`);
      await sleep(200);
    }
  }

  it('charges none of the 45 buyers who pay at once after 15 racing buyers took the 10 kettles: 409 OUT_OF_STOCK, no payment, the order left to pay', async () => {
    const buyers = Array.from({ length: 60 }, (_, i) => `kettle-${i}`);
    const orderIds = await Promise.all(buyers.map((buyer) => system.checkout(buyer, [{ skuId: 'KETTLE', qty: 1 }])));
    await allIn(orderIds, ['PENDING_PAYMENT']);
    const buyerOf = new Map(orderIds.map((id, i) => [id, buyers[i]!]));

    // 15 pay at once: racing for the 10 kettles, those let through before the units went are charged, and the commit at payment refunds the losers
    const racing = orderIds.slice(0, 15);
    const racePays = await Promise.all(racing.map((id) => pay(id, buyerOf.get(id)!)));
    expect(racePays.filter((p) => p.status !== 202 && !(p.status === 409 && p.body.code === 'OUT_OF_STOCK')).map((p) => [p.status, p.body])).toEqual([]);
    const letThrough = racing.filter((_, i) => racePays[i]!.status === 202);
    const raceSettled = await allIn(letThrough, ['IN_FULFILLMENT', 'REFUNDED']);
    const sold = letThrough.filter((id) => raceSettled.get(id).status === 'IN_FULFILLMENT');
    expect(sold).toHaveLength(10);

    // the other 45 pay at once, the kettles all gone: refused before the payment system is asked
    const late = orderIds.slice(15);
    const latePays = await Promise.all(late.map((id) => pay(id, buyerOf.get(id)!)));
    expect(latePays.map((p) => [p.status, p.body.code, p.body.detail, String(p.headers['content-type']).split(';')[0]])).toEqual(
      late.map(() => [409, 'OUT_OF_STOCK', expect.stringContaining('KETTLE'), 'application/problem+json']),
    );
    const refused = [...late, ...racing.filter((_, i) => racePays[i]!.status === 409)];
    const paymentRows = await system.env.db.selectFrom('payments').select('order_id').where('order_id', 'in', refused).execute();
    expect(paymentRows).toEqual([]);
    // each refused order stays payable until its deadline: units may come back
    const left = await allIn(refused, ['PENDING_PAYMENT']);
    expect([...left.values()].every((order) => order.payment === null)).toBe(true);

    // the payment system charged only those let through; every one of them not sold got it all back
    const refunded = letThrough.filter((id) => !sold.includes(id));
    let sim: any;
    const chargedOf = (id: string) => (sim.payments as any[]).filter((p) => p.status === 'SUCCEEDED' && p.orderId === id).reduce((sum, p) => sum + p.amountCents, 0);
    const refundedOf = (id: string) => (sim.refunds as any[]).filter((r) => r.paymentId.startsWith(id)).reduce((sum, r) => sum + r.amountCents, 0);
    await expect
      .poll(async () => {
        sim = (await system.paymentSim.request('GET', '/__admin/payments')).body;
        return refunded.map((id) => [id, chargedOf(id), refundedOf(id)]);
      })
      .toEqual(refunded.map((id) => [id, 3_000, 3_000]));
    expect(new Set((sim.payments as any[]).map((p) => p.orderId))).toEqual(new Set(letThrough));
    expect(sold.map((id) => [id, chargedOf(id), refundedOf(id)])).toEqual(sold.map((id) => [id, 3_000, 0]));

    // never below zero, Redis and the ledger agreeing
    expect(await system.stockOf('KETTLE')).toEqual({ available: 0, reserved: 0, sold: 10 });
    expect(await ledgerAvailable(system.env.db, 'KETTLE')).toBe(0);

    // the merchant puts 1 kettle back on sale: a refused buyer pays it now
    const admin = system.token('ops', 'admin');
    expect((await system.request('PUT', '/v1/admin/skus/KETTLE/stock', { token: admin, body: { stock: 1 } })).status).toBe(200);
    const [again] = late;
    expect((await pay(again!, buyerOf.get(again!)!)).status).toBe(202);
    await system.waitForStatus(again!, 'IN_FULFILLMENT');
    expect(await system.stockOf('KETTLE')).toEqual({ available: 0, reserved: 0, sold: 11 });
  });
});

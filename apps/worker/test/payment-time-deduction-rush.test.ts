/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, ledgerAvailable } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * Payment-time deduction under a rush: checkout only checks the units, so every buyer gets an
 * order; the units are taken when the payments land, all at once. One order at a time is
 * payment-time-deduction.test.ts; this is 80 at once, with a few cancels racing the payments.
 */
describe('payment-time deduction in a rush', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('payment_time_rush', { WAREHOUSE_SIM_STEP_MS: '0' });
    await system.createSku({ skuId: 'RUSH-LAMP', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'payment' });
  });
  afterAll(async () => system?.close());

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /**
   * Polls the orders not yet in one of `statuses` (no faster than every 200 ms) until each is, then
   * reads them all once more, so what it answers is each order's status at the end. Reading all 80
   * every 200 ms was ~400 order reads a second on the cores the payments' settlements waited for,
   * and a loaded box's settlements outran 20 s (a fresh-clone run, 2026-12-07). Settling is not
   * bounded here: the wait is as long as a step may take there.
   */
  async function allIn(orderIds: string[], statuses: string[], timeoutMs = 60_000): Promise<Map<string, any>> {
    const deadline = Date.now() + timeoutMs;
    const reached = new Set<string>();
    for (;;) {
      const waiting = orderIds.filter((id) => !reached.has(id));
      for (const order of await Promise.all(waiting.map((id) => system.order(id)))) if (statuses.includes(order.status)) reached.add(order.orderId);
      if (reached.size === orderIds.length) {
        const orders = await Promise.all(orderIds.map((id) => system.order(id)));
        if (orders.every((o) => statuses.includes(o.status))) return new Map(orders.map((o) => [o.orderId as string, o]));
        // one moved on out of them meanwhile: waited for again
        for (const order of orders) if (!statuses.includes(order.status)) reached.delete(order.orderId);
      }
      if (Date.now() > deadline) {
        const left = (await Promise.all(orderIds.filter((id) => !reached.has(id)).map((id) => system.order(id)))).map((o) => `${o.orderId}:${o.status}`);
        throw new Error(`orders not settled in ${statuses.join('/')}: ${left.slice(0, 10).join(', ')} (${left.length})`);
      }
      await sleep(200);
    }
  }

  it('sells at most the 20 units when 80 buyers check out and pay at once, refunds every other payment in full, and 8 cancels racing the payments', async () => {
    const buyers = Array.from({ length: 80 }, (_, i) => `rush-${i}`);
    const checkouts = await Promise.all(
      buyers.map((buyer) =>
        system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `${buyer}-lamp` }, body: { items: [{ skuId: 'RUSH-LAMP', qty: 1 }], address: buyerAddress } }),
      ),
    );
    // checkout only checks a payment-time SKU's units (it takes none): with 20 on sale, all 80 are accepted
    expect(checkouts.map((c) => c.status)).toEqual(buyers.map(() => 202));
    const orderIds = checkouts.map((c) => c.body.orderId as string);
    await allIn(orderIds, ['PENDING_PAYMENT']);
    expect(await system.stockOf('RUSH-LAMP')).toEqual({ available: 20, reserved: 0, sold: 0 });

    // everyone pays at once; 8 of them cancel once their pay is answered, 0 to 350 ms later, as the payment lands and settles
    const cancelling = new Map(orderIds.slice(0, 8).map((id, i) => [id, i * 50]));
    const cancels: Array<{ status: number; body: any }> = [];
    const pays = await Promise.all(
      orderIds.map(async (id, i) => {
        const paid = await system.request('POST', `/v1/orders/${id}/pay`, { token: system.token(buyers[i]!), body: { method: 'card' } });
        const delayMs = cancelling.get(id);
        if (delayMs !== undefined) {
          await sleep(delayMs);
          cancels.push(await system.request('POST', `/v1/orders/${id}/cancel`, { token: system.token(buyers[i]!), body: { reason: 'changed my mind' } }));
        }
        return paid;
      }),
    );
    // a pay after the lamps all went is refused before any charge (409 OUT_OF_STOCK), its order left to pay
    expect(pays.filter((p) => p.status !== 202 && !(p.status === 409 && p.body.code === 'OUT_OF_STOCK')).map((p) => [p.status, p.body])).toEqual([]);
    const refusedAtPay = orderIds.filter((_, i) => pays[i]!.status === 409);
    // a cancel is taken (200) or answered 409 (e.g. paid and being settled, or the units sold out): never a 5xx
    expect(cancels.filter((c) => c.status !== 200 && c.status !== 409).map((c) => [c.status, c.body])).toEqual([]);

    // each order let through ends sold (IN_FULFILLMENT), refunded in full (REFUNDED), or cancelled before its payment landed (CANCELLED)
    const settled = new Map([
      ...(await allIn(
        orderIds.filter((id) => !refusedAtPay.includes(id)),
        ['IN_FULFILLMENT', 'REFUNDED', 'CANCELLED'],
      )),
      ...(await allIn(refusedAtPay, ['PENDING_PAYMENT', 'CANCELLED'])),
    ]);
    const sold = orderIds.filter((id) => settled.get(id).status === 'IN_FULFILLMENT');
    const refunded = orderIds.filter((id) => settled.get(id).status === 'REFUNDED');
    expect(sold.length).toBeLessThanOrEqual(20);
    // 72 buyers paid without cancelling: the 20 units all go
    expect(sold.length).toBeGreaterThanOrEqual(15);

    // the payment system: one charge per order at most; a sold order keeps it, every other one got it all back (a
    // cancelled order's payment may still have been charged as the cancel landed: a late payment, given back on its own)
    const cancelled = orderIds.filter((id) => settled.get(id).status === 'CANCELLED');
    expect(cancelled.every((id) => cancelling.has(id))).toBe(true);
    let sim: any;
    const orderOfPayment = new Map<string, string>();
    const charged = (id: string) => (sim.payments as any[]).filter((p) => p.status === 'SUCCEEDED' && p.orderId === id).reduce((sum, p) => sum + p.amountCents, 0);
    const refundedBack = (id: string) => (sim.refunds as any[]).filter((r) => orderOfPayment.get(r.paymentId) === id).reduce((sum, r) => sum + r.amountCents, 0);
    for (let polls = 0; ; polls++) {
      sim = (await system.paymentSim.request('GET', '/__admin/payments')).body;
      for (const p of sim.payments as any[]) orderOfPayment.set(p.paymentId, p.orderId);
      if (cancelled.every((id) => charged(id) === refundedBack(id)) || polls >= 50) break;
      await sleep(200);
    }
    for (const id of orderIds) expect((sim.payments as any[]).filter((p) => p.status === 'SUCCEEDED' && p.orderId === id).length, `charges of ${id}`).toBeLessThanOrEqual(1);
    expect(sold.map((id) => [id, charged(id), refundedBack(id)])).toEqual(sold.map((id) => [id, 2_500, 0]));
    expect(refunded.map((id) => [id, charged(id), refundedBack(id), settled.get(id).amounts.refundedCents, settled.get(id).buyerStatus])).toEqual(
      refunded.map((id) => [id, 2_500, 2_500, 2_500, 'Closed']),
    );
    expect(cancelled.map((id) => charged(id) - refundedBack(id))).toEqual(cancelled.map(() => 0));
    expect(refusedAtPay.map((id) => charged(id))).toEqual(refusedAtPay.map(() => 0));

    // Redis and MySQL agree: sold is what shipped-to-be, the rest is back on sale
    const stock = await system.stockOf('RUSH-LAMP');
    expect(stock).toEqual({ available: 20 - sold.length, reserved: 0, sold: sold.length });
    expect(await ledgerAvailable(system.env.db, 'RUSH-LAMP')).toBe(20 - sold.length);
    // the ledger's sales net of restocks: each sold order has its unit off; none sold and refunded both
    const ledger = await system.env.db.selectFrom('stock_ledger').select(['order_id', 'kind', 'qty']).where('sku_id', '=', 'RUSH-LAMP').where('order_id', 'is not', null).execute();
    const netOf = (id: string) => ledger.filter((row) => row.order_id === id).reduce((sum, row) => sum + Number(row.qty), 0);
    expect(sold.map((id) => [id, netOf(id)])).toEqual(sold.map((id) => [id, -1]));
    expect(orderIds.filter((id) => !sold.includes(id)).map((id) => [id, netOf(id)])).toEqual(orderIds.filter((id) => !sold.includes(id)).map((id) => [id, 0]));
  }, 180_000);
});

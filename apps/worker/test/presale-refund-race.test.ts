// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { holdTable, tableLockWaits, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * An operator calls a presale off while its buyer pays the balance: the refund request reads
 * the order with its deposit paid, and the balance commits before the refund's transaction.
 * The request is held there by another session holding the order lines' table (as a long
 * ALTER TABLE would), which the refund reads after the order's status and the balance does
 * not touch. The fulfillment queue is not served (busy elsewhere in a presale launch): the
 * paid order's settle job never runs, so nothing but the refund commits or gives back its stock.
 */
describe('a presale refunded by an operator while its balance is being paid', () => {
  let system: OrderSystem;
  let admin: string;

  beforeAll(async () => {
    system = await startOrderSystem('presale_refund_race', { PRESALE_DEPOSIT_PERCENT: '20', RECONCILE_INTERVAL_MS: '0', WORKER_QUEUES: 'orders,timers,payments' });
    admin = system.token('ops', 'admin');
    for (const skuId of ['NEXT-CAMERA', 'NEXT-LENS']) {
      await system.createSku({ skuId, priceCents: 50_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement', orderType: 'presale' });
    }
  });
  afterAll(async () => system?.close());

  const pay = (orderId: string, buyer: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
  const stock = (skuId: string) => system.stockOf(skuId);
  const statusOf = async (orderId: string) => (await system.env.db.selectFrom('orders').select('status').where('order_id', '=', orderId).executeTakeFirstOrThrow()).status;

  /**
   * Calls the order off by `callOff` while its balance is being paid: the request reads the
   * order with its deposit paid, then waits for the order lines while the balance commits.
   */
  async function calledOffWhileBalancePaid(orderId: string, buyer: string, callOff: () => Promise<{ status: number; body: any }>) {
    let answer!: Promise<{ status: number; body: any }>;
    const held = await holdTable(system.env.db, 'order_items');
    try {
      answer = callOff();
      await waitFor(async () => (await tableLockWaits(system.env.db)) > 0, { what: 'the call-off waiting for the order lines' });
      expect((await pay(orderId, buyer)).body).toMatchObject({ purpose: 'balance', amountCents: 40_000 });
      await waitFor(async () => (await statusOf(orderId)) === 'PAID', { what: 'the balance paid', timeoutMs: 10_000 });
    } finally {
      await held.release();
    }
    return answer;
  }

  for (const [route, reason, skuId] of [
    ['refunds', 'refund', 'NEXT-CAMERA'],
    ['cancel', 'cancel', 'NEXT-LENS'],
  ] as const) {
    it(`gives back the deposit and the balance, and puts the ${skuId} back on sale, when the balance lands between an operator's ${route} reading the order and refunding it`, async () => {
      const buyer = `${route}-buyer`;
      const orderId = await system.checkout(buyer, [{ skuId, qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
      expect((await pay(orderId, buyer)).body).toMatchObject({ purpose: 'deposit', amountCents: 10_000 });
      await system.waitForStatus(orderId, 'DEPOSIT_PAID');
      expect(await stock(skuId)).toEqual({ available: 4, reserved: 1, sold: 0 });

      const calledOff = await calledOffWhileBalancePaid(orderId, buyer, () =>
        system.request('POST', `/v1/orders/${orderId}/${route}`, { token: admin, body: { reason: 'production cancelled' } }),
      );
      expect(calledOff.status).toBe(route === 'refunds' ? 202 : 200);
      // decided again on the paid order: a refund of the unit, drawn from the balance then the deposit
      const [refund] = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: admin })).body.items;
      expect([refund.amountCents, refund.items.map((i: any) => [i.skuId, i.qty, i.cents])]).toEqual([50_000, [[skuId, 1, 50_000]]]);

      const closed = await system.waitForStatus(orderId, 'REFUNDED');
      expect(closed.amounts.refundedCents).toBe(50_000);
      expect(closed.items.map((i: any) => [i.skuId, i.refundedQty, i.refundedCents])).toEqual([[skuId, 1, 50_000]]);
      expect(closed.history.map((h: any) => `${h.from} -${h.action}-> ${h.to}`)).toEqual([
        'null -checkout-> ACCEPTED',
        'ACCEPTED -persist-> PENDING_DEPOSIT',
        'PENDING_DEPOSIT -pay_deposit-> DEPOSIT_PAID',
        'DEPOSIT_PAID -pay-> PAID',
        'PAID -refund-> REFUNDING',
        'REFUNDING -refund_succeeded-> REFUNDED',
      ]);
      // sold when the balance was paid, then back on sale: nothing left reserved or sold
      expect(await stock(skuId)).toEqual({ available: 5, reserved: 0, sold: 0 });
      const ledger = await system.env.db.selectFrom('stock_ledger').select(['kind', 'qty', 'reason']).where('order_id', '=', orderId).orderBy('id').execute();
      expect(ledger.map((row) => [row.kind, Number(row.qty), row.reason])).toEqual([
        ['reserve', -1, 'checkout'],
        ['commit', 0, 'payment'],
        ['restock', 1, reason],
      ]);
      // every cent the payment system took went back, each payment what it took
      const { payments } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
      expect(payments.filter((p: any) => p.orderId === orderId).map((p: any) => [p.amountCents, p.refundedCents])).toEqual([
        [10_000, 10_000],
        [40_000, 40_000],
      ]);
    });
  }
});

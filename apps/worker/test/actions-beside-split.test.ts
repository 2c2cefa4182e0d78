/* eslint-disable @typescript-eslint/no-explicit-any */
import { holdRow, rowLockWaits, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A buyer, a merchant or an admin acts on a paid order as the worker splits it: the request read
 * the order PAID and whole, and by the time it writes, the order is split into its children (PAID
 * still, a version on). The action is carried out on the order as it stands then (on its
 * children), not refused because it moved on. The fulfilment queue, whose settle job splits the
 * order, is paused until the order's row is held, so the split's write and then the request's
 * queue behind it in that order.
 */
describe('a refund or a cancel written just after the split it did not see', () => {
  let system: OrderSystem;
  beforeAll(async () => {
    system = await startOrderSystem('actions_beside_split');
    // one merchant's lines in two warehouses: the order splits in two children, each of them the merchant's alone
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  /** How many of this file's database's transactions wait for a row lock (polled every 200 ms: faster holds them up). */
  const waiting = (count: number, what: string) => waitFor(async () => (await rowLockWaits(system.env.db)).length === count || null, { what, timeoutMs: 10_000, intervalMs: 200 });

  /** A paid order of 1 lamp and 1 rug whose split, once let go, writes the order just before `send` does. */
  async function sentBesideSplit(buyer: string, send: (orderId: string) => Promise<{ status: number; body: any }>) {
    const { fulfillment } = system.workers.deps.queues;
    await fulfillment.pause();
    let orderId!: string;
    let answer!: Promise<{ status: number; body: any }>;
    try {
      orderId = await system.checkout(buyer, [
        { skuId: 'LAMP', qty: 1 },
        { skuId: 'RUG', qty: 1 },
      ]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
      await system.waitForStatus(orderId, 'PAID');
      // another session holds the order's row: the split's write queues behind it, then the request's
      const row = await holdRow(system.env.db, 'orders', 'order_id', orderId);
      try {
        await fulfillment.resume();
        await waiting(1, "the split's write waiting");
        expect((await system.order(orderId)).subOrders).toEqual([]);
        answer = send(orderId);
        await waiting(2, "the request's write waiting behind it");
      } finally {
        // released whatever happened: held, it would keep the file's clean-up from dropping the database
        await row.release();
      }
    } finally {
      await fulfillment.resume();
    }
    return { orderId, answer: await answer };
  }

  /** What the payment system gave back of the order's charge, once every refund of it is confirmed. */
  async function refundedOfCharge(orderId: string): Promise<{ charged: number; refunded: number }> {
    const { payments, refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    const [charge] = payments.filter((p: any) => p.orderId === orderId);
    return { charged: charge.amountCents, refunded: refunds.filter((r: any) => r.paymentId === charge.paymentId).reduce((sum: number, r: any) => sum + r.amountCents, 0) };
  }

  it("refunds both children in full when the buyer's refund of every unit was read before the split", async () => {
    const { orderId, answer } = await sentBesideSplit('ada', (id) => system.request('POST', `/v1/orders/${id}/refunds`, { token: system.token('ada'), body: { reason: 'not needed' } }));
    expect([answer.status, answer.body.refunds?.length], JSON.stringify(answer.body)).toEqual([202, 2]);
    const children = (await system.order(orderId)).subOrders as string[];
    expect(children).toHaveLength(2);
    expect(answer.body.refunds.map((r: any) => r.orderId).sort()).toEqual([...children].sort());
    await system.waitForStatus(orderId, 'REFUNDED', 30_000);
    const { charged, refunded } = await refundedOfCharge(orderId);
    expect([charged, refunded]).toEqual([5_000, 5_000]);
  });

  it("refunds the lamp's child alone when the merchant's refund of the lamp was read before the split", async () => {
    const { orderId, answer } = await sentBesideSplit('bea', (id) =>
      system.request('POST', `/v1/orders/${id}/refunds`, { token: system.token('shop', 'merchant'), body: { reason: 'lamp out of stock', items: [{ skuId: 'LAMP', qty: 1 }] } }),
    );
    expect([answer.status, answer.body.refunds?.length], JSON.stringify(answer.body)).toEqual([202, 1]);
    const children = await Promise.all(((await system.order(orderId)).subOrders as string[]).map((child) => system.order(child)));
    const [lampChild, rugChild] = ['LAMP', 'RUG'].map((sku) => children.find((child) => child.items.some((item: any) => item.skuId === sku)));
    expect(answer.body.refunds[0].orderId).toBe(lampChild.orderId);
    // the lamp is its child's every unit: that child is refunded whole, the rug's is left to ship
    await system.waitForStatus(lampChild.orderId, 'REFUNDED', 30_000);
    expect((await system.order(lampChild.orderId)).amounts.refundedCents).toBe(lampChild.amounts.payableCents);
    expect((await system.waitForStatus(rugChild.orderId, 'IN_FULFILLMENT')).amounts.refundedCents).toBe(0);
  });

  it("refunds both children in full when the merchant's cancel was read before the split", async () => {
    const { orderId, answer } = await sentBesideSplit('cy', (id) => system.request('POST', `/v1/orders/${id}/cancel`, { token: system.token('shop', 'merchant'), body: { reason: 'cannot ship' } }));
    expect([answer.status, answer.body.status, answer.body.subOrders?.length], JSON.stringify(answer.body)).toEqual([200, 'REFUNDING', 2]);
    await system.waitForStatus(orderId, 'REFUNDED', 30_000);
    const { charged, refunded } = await refundedOfCharge(orderId);
    expect([charged, refunded]).toEqual([5_000, 5_000]);
  });
});

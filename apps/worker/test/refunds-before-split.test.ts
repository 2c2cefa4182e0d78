// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A buyer refunds one warehouse's parcel of a paid order before the order is split. The
 * fulfillment queue is not served at first (busy elsewhere): the settle job, which splits the
 * order, waits until a worker serving it starts after the refund.
 */
describe('a parcel refunded before its order is split', () => {
  let system: OrderSystem;
  let fulfilment: RunningWorkers | undefined;
  let admin: string;

  beforeAll(async () => {
    system = await startOrderSystem('refunds_before_split', { WORKER_QUEUES: 'orders,timers,payments' });
    admin = system.token('ops', 'admin');
    for (const warehouseId of ['wh-east', 'wh-west']) {
      expect((await system.request('PUT', `/v1/admin/warehouses/${warehouseId}/shipping`, { token: admin, body: { feeCents: 500 } })).status).toBe(200);
    }
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 700, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 899, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await fulfilment?.close();
    await system?.close();
  });

  it("gives the parcel's shipping back with it, starts its child closed, and lets the buyer cancel the rest: all 2,700 paid comes back", async () => {
    const orderId = await system.checkout('ann', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ann'), body: { method: 'card' } })).status).toBe(202);
    // 1,000 + 700 of goods and 500 of shipping from each warehouse
    expect((await system.waitForStatus(orderId, 'PAID')).amounts.payableCents).toBe(2_700);

    // wh-east's whole parcel back while the order is unsplit: its goods and its shipping
    const lamp = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ann'), body: { reason: 'no lamp', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect([lamp.status, lamp.body.refunds.map((r: any) => r.amountCents)]).toEqual([202, [1_500]]);
    await system.waitForRefund(orderId);

    fulfilment = startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
    const children = (await waitFor(
      async () => {
        const order = await system.order(orderId);
        const subs = await Promise.all(order.subOrders.map((id: string) => system.order(id)));
        return subs.length === 2 && subs.some((s) => s.status === 'IN_FULFILLMENT') && subs;
      },
      { what: `order ${orderId} split, its rug in fulfilment`, timeoutMs: 15_000 },
    )) as any[];
    const [lampChild, rugChild] = ['LAMP', 'RUG'].map((sku) => children.find((c) => c.items[0].skuId === sku));
    // nothing of the lamp's parcel is left: its child starts closed, says why, and never reaches its warehouse
    expect([lampChild.status, lampChild.amounts.refundedCents, lampChild.history.map((h: any) => [h.action, h.to, h.detail])]).toEqual([
      'REFUNDED',
      1_500,
      [['split', 'REFUNDED', `split from order ${orderId}: every unit refunded before the split`]],
    ]);
    const { orders: atWarehouses } = (await system.warehouseSim.request('GET', '/__admin/orders')).body;
    expect(atWarehouses.map((o: any) => o.orderId)).toEqual([rugChild.orderId]);

    const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ann'), body: { reason: 'changed my mind' } });
    expect(cancelled.status).toBe(200);
    const closed = await system.waitForStatus(orderId, 'REFUNDED', 20_000);
    expect(closed.amounts.refundedCents).toBe(2_700);
    const { payments, refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    const [charge] = payments.filter((p: any) => p.orderId === orderId);
    expect([charge.amountCents, charge.refundedCents]).toEqual([2_700, 2_700]);
    expect(refunds.filter((r: any) => r.paymentId === charge.paymentId).map((r: any) => r.amountCents).sort()).toEqual([1_200, 1_500]);
    for (const child of await Promise.all(closed.subOrders.map((id: string) => system.order(id)))) {
      expect([child.orderId, child.status]).toEqual([child.orderId, 'REFUNDED']);
      expect(child.amounts.refundedCents).toBe(child.items.reduce((sum: number, item: any) => sum + item.refundedCents, 0));
      expect(child.amounts.refundedCents).toBe(child.amounts.payableCents);
    }
  });

  it("answers another merchant's refund opened before the split to no merchant sending the buyer's words again", async () => {
    // the split waits for the refund again
    await fulfilment?.close();
    fulfilment = undefined;
    const orderId = await system.checkout('ivy', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'MUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ivy'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'PAID');
    const mug = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ivy'), body: { reason: 'changed my mind', items: [{ skuId: 'MUG', qty: 1 }] } });
    expect(mug.status).toBe(202);
    fulfilment = startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
    await waitFor(async () => (await system.order(orderId)).subOrders.length === 2, { what: `order ${orderId} split`, timeoutMs: 15_000 });

    // shop guesses the words of the buyer's refund of potter's mug: told what any other words get, and nothing of potter's refund
    const refundOfMug = (reason: string) => system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('shop', 'merchant'), body: { reason, items: [{ skuId: 'MUG', qty: 1 }] } });
    const [guessed, other] = [await refundOfMug('changed my mind'), await refundOfMug('some other words')];
    expect(guessed.status).toBeGreaterThanOrEqual(400);
    expect([guessed.status, guessed.body.code]).toEqual([other.status, other.body.code]);
    expect(JSON.stringify(guessed.body)).not.toContain(mug.body.refundId);
    // the buyer's own request sent again still answers their refund
    const again = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ivy'), body: { reason: 'changed my mind', items: [{ skuId: 'MUG', qty: 1 }] } });
    expect([again.status, again.body.refundId, again.body.replayed]).toEqual([202, mug.body.refundId, true]);
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/** What an order's shipment says once every unit of it is refunded before the parcel leaves. */
describe('the shipment of a parcel refunded whole before it left the warehouse', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // the warehouse advances only when the test sends its events
    system = await startOrderSystem('refunded_parcel', { WAREHOUSE_SIM_STEP_MS: '0' });
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'TEA', priceCents: 1_250, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const atWarehouse = async (orderId: string) => (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
  const shipmentOf = async (orderId: string) => (await system.order(orderId)).shipments.map((s: any) => s.status);
  const waitForShipment = (orderId: string, status: string) =>
    waitFor(async () => (await shipmentOf(orderId))[0] === status, { what: `the shipment of ${orderId} to be ${status}`, timeoutMs: 15_000, explain: async () => JSON.stringify(await shipmentOf(orderId)) });
  const paid = async (buyer: string, items: Array<{ skuId: string; qty: number }>) => {
    const orderId = await system.checkout(buyer, items);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    return orderId;
  };

  it('reads CANCELLED once the warehouse drops it, not ACCEPTED as a parcel still going out; a late SHIPPED changes nothing', async () => {
    const orderId = await paid('ada', [{ skuId: 'KETTLE', qty: 2 }]);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(await shipmentOf(orderId)).toEqual(['ACCEPTED']);
    // one of two kettles back: the parcel still goes out, with one
    const one = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ada'), body: { reason: 'one is enough', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect(one.status).toBe(202);
    await waitFor(async () => (await atWarehouse(orderId)).items[0].qty === 1, { what: 'the warehouse to pack one kettle' });
    expect(await shipmentOf(orderId)).toEqual(['ACCEPTED']);

    // the other one too: nothing is left to send
    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ada'), body: { reason: 'changed my mind' } });
    expect(cancel.status).toBe(200);
    await system.waitForStatus(orderId, 'REFUNDED');
    await waitFor(async () => (await atWarehouse(orderId)).cancelled, { what: 'the warehouse to drop the parcel' });
    await waitForShipment(orderId, 'CANCELLED');

    // the warehouse reporting it shipped after all is an event the order has passed
    const late = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } });
    expect(late.body.callbackStatus).toBe(200);
    const order = await system.order(orderId);
    expect([order.status, order.shipments[0].status]).toEqual(['REFUNDED', 'CANCELLED']);
  });

  it('records a parcel the warehouse shipped before it read the drop of its order refunded whole: SHIPPED, counted and never turned CANCELLED by the drop', async () => {
    const { fulfillment } = system.workers.deps.queues;
    const fulfilmentWorker = system.workers.workers.find((worker) => worker.name === fulfillment.name)!;
    const orderId = await paid('cy', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the drop waits in its queue (the warehouse's breaker open, a backlog) while the parcel leaves
    await fulfilmentWorker.pause();
    try {
      expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('cy'), body: { reason: 'changed my mind' } })).status).toBe(200);
      const shipped = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-GONE', at: new Date().toISOString() });
      expect([shipped.status, shipped.body.changed]).toEqual([200, true]);
    } finally {
      fulfilmentWorker.resume();
    }
    await system.waitForStatus(orderId, 'REFUNDED');
    // the drop's job has run, and found nothing left in the warehouse to drop
    await waitFor(async () => (await fulfillment.getJobs(['waiting', 'prioritized', 'delayed', 'active'])).every((job) => job.data.orderId !== orderId), { what: "the drop's job to have run" });
    const order = await system.order(orderId);
    expect(order.shipments).toEqual([expect.objectContaining({ status: 'SHIPPED', trackingNo: 'TRK-GONE' })]);
    expect((await system.request('GET', '/metrics')).body).toMatch(/^parcels_shipped_after_refund_total(\{[^}]*\})? 1$/m);
  });

  it("cancels the shipment of a split order's child refunded whole, and leaves its sibling's parcel going out", async () => {
    const orderId = await paid('bo', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 1 }]);
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the split' })) as string[];
    const split = await Promise.all(children.map((child) => system.waitForStatus(child, 'IN_FULFILLMENT')));
    const childOf = (skuId: string) => split.find((child) => child.items[0].skuId === skuId).orderId as string;
    const [kettleChild, teaChild] = [childOf('KETTLE'), childOf('TEA')];
    const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('bo'), body: { reason: 'no tea', items: [{ skuId: 'TEA', qty: 1 }] } });
    expect(refund.status).toBe(202);
    await system.waitForStatus(teaChild, 'REFUNDED');
    await waitForShipment(teaChild, 'CANCELLED');
    expect(await shipmentOf(kettleChild)).toEqual(['ACCEPTED']);
    // the split order has no parcel of its own: each child ships (or drops) its own
    expect(await shipmentOf(orderId)).toEqual([]);
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, channelOrder, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('an imported order cancelled before its parcel left: the warehouse drops the parcel', () => {
  let system: OrderSystem;
  let admin: string;

  beforeAll(async () => {
    // a 1 s breaker timeout, retries 200 ms apart and a breaker probing again after 500 ms: the outage below passes quickly
    system = await startOrderSystem('imported_parcel_cancel', { WAREHOUSE_BREAKER_TIMEOUT_MS: '1000', WAREHOUSE_BREAKER_RESET_MS: '500', EXTERNAL_RETRY_DELAY_MS: '200' });
    admin = system.token('ops', 'admin');
  });
  afterAll(async () => {
    await system?.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    await system?.close();
  });

  const atWarehouse = async (orderId: string) => (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
  const shipmentOf = async (orderId: string) => (await system.order(orderId)).shipments.map((s: any) => s.status);
  /** The channel's order imported, its parcel at the warehouse as the channel left it (its callbacks come to us). */
  const importedAtWarehouse = async (externalOrderId: string) => {
    const answer = await system.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'tmall', orders: [channelOrder(externalOrderId, { qty: 2 })] } });
    expect(answer.status).toBe(200);
    const orderId = answer.body.results[0].orderId as string;
    const handedOver = await system.warehouseSim.request('POST', '/v1/fulfilment-orders', {
      body: { orderId, warehouseId: 'wh-east', items: [{ skuId: 'KETTLE', qty: 2 }], address: buyerAddress, notifyUrl: new URL('/v1/callbacks/warehouse', system.env.config.CALLBACK_BASE_URL).toString() },
    });
    expect(handedOver.status).toBe(202);
    return orderId;
  };
  const waitForDropped = (orderId: string) =>
    waitFor(async () => ((await atWarehouse(orderId))?.cancelled ? atWarehouse(orderId) : false), {
      what: `the warehouse to drop the parcel of ${orderId}`,
      timeoutMs: 10_000,
      explain: async () => JSON.stringify(await atWarehouse(orderId)),
    });

  it('cancelled by an admin: the warehouse is told to ship nothing, then the parcel reads CANCELLED; a SHIPPED after all is recorded and counted', async () => {
    const orderId = await importedAtWarehouse('TM-W1');
    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: admin, body: { reason: 'the channel called it off' } });
    expect([cancel.status, cancel.body.status]).toEqual([200, 'CANCELLED']);

    const parcel = await waitForDropped(orderId);
    expect(parcel.items).toEqual([]);
    await waitFor(async () => (await shipmentOf(orderId))[0] === 'CANCELLED', { what: 'the shipment to read CANCELLED' });

    // the warehouse ships it though it took the drop: the parcel left, the order stays cancelled, and the shop is told
    const shippedAfterCancel = async () => Number(/^parcels_shipped_after_refund_total(?:\{[^}]*\})? (\d+)$/m.exec((await system.request('GET', '/metrics')).body)?.[1]);
    const shippedBefore = await shippedAfterCancel();
    const late = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-AFTER-CANCEL', at: new Date().toISOString() });
    expect([late.status, late.body]).toEqual([200, { changed: true, status: 'CANCELLED' }]);
    const order = await system.order(orderId);
    expect([order.status, order.shipments[0].status]).toEqual(['CANCELLED', 'SHIPPED']);
    const again = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-AFTER-CANCEL', at: new Date().toISOString() });
    expect(again.body.changed).toBe(false);
    expect(await shippedAfterCancel()).toBe(shippedBefore + 1);
  });

  it('cancelled by its merchant while the warehouse is off the network: the parcel reads ACCEPTED until the warehouse is back and drops it', async () => {
    const orderId = await importedAtWarehouse('TM-W2');
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('shop', 'merchant'), body: { reason: 'out of kettles' } });
      expect([cancel.status, cancel.body.status]).toEqual([200, 'CANCELLED']);
      // the warehouse may still ship it: the shipment does not claim otherwise
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await shipmentOf(orderId)).toEqual(['ACCEPTED']);
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    expect((await waitForDropped(orderId)).items).toEqual([]);
    await waitFor(async () => (await shipmentOf(orderId))[0] === 'CANCELLED', { what: 'the shipment to read CANCELLED' });
  });

  it('cancelled by its channel with nothing queued to tell the warehouse (a process died after the commit): its next event gets it dropped', async () => {
    const orderId = await importedAtWarehouse('TM-W3');
    await system.workers.deps.orders.applyTransition({ orderId, action: 'cancel', actor: 'system', at: new Date(), detail: 'cancelled in tmall' });
    expect(await shipmentOf(orderId)).toEqual(['ACCEPTED']);

    const picked = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'PICKED' } });
    expect(picked.body.callbackStatus).toBe(200);
    expect((await waitForDropped(orderId)).items).toEqual([]);
    await waitFor(async () => (await shipmentOf(orderId))[0] === 'CANCELLED', { what: 'the shipment to read CANCELLED' });
    expect((await system.order(orderId)).status).toBe('CANCELLED');
  });

  it('cancelled when the warehouse never had its parcel (handed over under the channel’s own reference): the parcel reads CANCELLED, nothing retried or dead-lettered', async () => {
    const answer = await system.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'tmall', orders: [channelOrder('TM-W4', { qty: 1 })] } });
    const orderId = answer.body.results[0].orderId as string;
    expect(await atWarehouse(orderId)).toBeUndefined();
    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: admin, body: { reason: 'the channel called it off' } });
    expect([cancel.status, cancel.body.status]).toEqual([200, 'CANCELLED']);
    await waitFor(async () => (await shipmentOf(orderId))[0] === 'CANCELLED', { what: 'the shipment to read CANCELLED' });
    const { fulfillment } = system.workers.deps.queues;
    // the job commits the shipment before BullMQ marks it completed: it may read active a moment longer, never delayed (a retry) or failed
    await expect.poll(() => fulfillment.getJobCounts('wait', 'delayed', 'active', 'failed')).toEqual({ wait: 0, delayed: 0, active: 0, failed: 0 });
  });

  it('delivered with its SHIPPED lost: the order reads DELIVERED, its parcel too', async () => {
    const orderId = await importedAtWarehouse('TM-W5');
    const delivered = await system.signedCallback('warehouse', { orderId, event: 'DELIVERED', at: new Date().toISOString() });
    expect([delivered.status, delivered.body]).toEqual([200, { changed: true, status: 'DELIVERED' }]);
    const order = await system.order(orderId);
    expect([order.status, order.shipments[0].status]).toEqual(['DELIVERED', 'DELIVERED']);
  });

  it('refuses its buyer’s cancel as a cancel: it was paid in its channel, nothing of it is ours to refund', async () => {
    const answer = await system.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'tmall', orders: [channelOrder('TM-W6', { qty: 1 })] } });
    const order = await system.order(answer.body.results[0].orderId);
    const cancel = await system.request('POST', `/v1/orders/${order.orderId}/cancel`, { token: system.token(order.userId), body: { reason: 'changed my mind' } });
    expect([cancel.status, cancel.body.code, cancel.body.detail]).toEqual([409, 'ILLEGAL_TRANSITION', "Action 'cancel' by buyer is not allowed while the order is PAID"]);
  });
});

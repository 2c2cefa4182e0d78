// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * What an order's shipment says once every unit of it is refunded before the parcel leaves; and
 * what becomes of a refund whose parcel left with its units before the warehouse took them out.
 */
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
  /**
   * A paid kettle in fulfilment, cancelled while the drop of its parcel waits in its queue (the
   * warehouse's breaker open, a backlog), and the warehouse's `reported` event of the parcel
   * leaving, taken (changed) before the drop runs. Returns the order's id.
   */
  const cancelledBeforeItsDrop = async (buyer: string, reported: { event: 'SHIPPED' | 'DELIVERED'; trackingNo?: string }) => {
    const { fulfillment } = system.workers.deps.queues;
    const fulfilmentWorker = system.workers.workers.find((worker) => worker.name === fulfillment.name)!;
    const orderId = await paid(buyer, [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    await fulfilmentWorker.pause();
    try {
      expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(buyer), body: { reason: 'changed my mind' } })).status).toBe(200);
      const answer = await system.signedCallback('warehouse', { orderId, ...reported, at: new Date().toISOString() });
      expect([answer.status, answer.body.changed]).toEqual([200, true]);
    } finally {
      fulfilmentWorker.resume();
    }
    return orderId;
  };
  /** The api's count of parcels shipped after their refund (ParcelsShippedAfterRefund). */
  const shippedAfterRefund = async () => Number(/^parcels_shipped_after_refund_total(?:\{[^}]*\})? (\d+)$/m.exec((await system.request('GET', '/metrics')).body)?.[1]);
  /** The workers' count of changes the warehouse refused as too late (FulfilmentChangesTooLate). */
  const changesTooLate = async () => (await system.workers.deps.metrics.registry.getSingleMetric('fulfilment_changes_too_late_total')!.get()).values[0]?.value ?? 0;
  const kettles = async () => (await system.request('GET', '/v1/admin/skus/KETTLE', { token: system.token('ops', 'admin') })).body.stock;
  /** The order's units back on sale in the ledger (its restock rows). */
  const restockedInLedger = async (orderId: string) =>
    (await system.env.db.selectFrom('stock_ledger').select(['sku_id', 'qty']).where('order_id', '=', orderId).where('kind', '=', 'restock').execute()).map((row) => `${row.sku_id}x${row.qty}`);
  /** What the payment system paid back for the order. */
  const paidBack = async (orderId: string) => (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds.filter((refund: any) => refund.refundId.startsWith(orderId));
  const refundsOf = async (orderId: string, buyer: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer) })).body.items;
  /** Withdrawn, nothing paid back: the units left with the parcel, and nothing counts as refunded. */
  const expectWithdrawn = async (orderId: string, buyer: string) => {
    const [refund] = await refundsOf(orderId, buyer);
    expect([refund.status, refund.restockHeld, refund.parts.map((part: any) => part.status)]).toEqual(['WITHDRAWN', false, ['WITHDRAWN']]);
    expect(await paidBack(orderId)).toEqual([]);
    const order = await system.order(orderId);
    expect([order.amounts.refundedCents, order.items.map((item: any) => [item.refundedQty, item.refundedCents])]).toEqual([0, [[0, 0]]]);
  };
  const paid = async (buyer: string, items: Array<{ skuId: string; qty: number }>) => {
    const orderId = await system.checkout(buyer, items);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    return orderId;
  };

  it('reads CANCELLED once the warehouse drops it, not ACCEPTED as a parcel still going out; a SHIPPED after the drop is a parcel that left anyway, counted', async () => {
    const orderId = await paid('ada', [{ skuId: 'KETTLE', qty: 2 }]);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(await shipmentOf(orderId)).toEqual(['ACCEPTED']);
    // one of two kettles back: the parcel still goes out, with one; the other goes back on sale once the warehouse took it out
    const stockBefore = await kettles();
    const one = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ada'), body: { reason: 'one is enough', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect(one.status).toBe(202);
    await waitFor(async () => (await atWarehouse(orderId)).items[0].qty === 1, { what: 'the warehouse to pack one kettle' });
    expect(await shipmentOf(orderId)).toEqual(['ACCEPTED']);
    await waitFor(async () => (await kettles()).available === stockBefore.available + 1, { what: 'the kettle taken out to be on sale again' });
    expect(await kettles()).toEqual({ ...stockBefore, available: stockBefore.available + 1, sold: stockBefore.sold - 1 });
    expect(await restockedInLedger(orderId)).toEqual(['KETTLEx1']);

    // the other one too: nothing is left to send
    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ada'), body: { reason: 'changed my mind' } });
    expect(cancel.status).toBe(200);
    await system.waitForStatus(orderId, 'REFUNDED');
    await waitFor(async () => (await atWarehouse(orderId)).cancelled, { what: 'the warehouse to drop the parcel' });
    await waitForShipment(orderId, 'CANCELLED');
    expect(await kettles()).toEqual({ ...stockBefore, available: stockBefore.available + 2, sold: stockBefore.sold - 2 });
    expect(await restockedInLedger(orderId)).toEqual(['KETTLEx1', 'KETTLEx1']);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ada') })).body.items.map((refund: any) => refund.restockHeld)).toEqual([false, false]);

    // the warehouse reporting it shipped after all (it took the drop, and the parcel left anyway): it left, and is counted
    const before = await shippedAfterRefund();
    const late = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } });
    expect(late.body.callbackStatus).toBe(200);
    const order = await system.order(orderId);
    expect([order.status, order.shipments[0].status]).toEqual(['REFUNDED', 'SHIPPED']);
    expect(await shippedAfterRefund()).toBe(before + 1);
  });

  it('withdraws the refund, paying nothing back, when the warehouse refuses the drop because the parcel left: the order ships after all once its delayed SHIPPED comes', async () => {
    const orderId = await paid('dee', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the parcel leaves; its SHIPPED callback is held up on the way
    await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
    const [tooLate, shippedBefore, stockBefore] = [await changesTooLate(), await shippedAfterRefund(), await kettles()];

    const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('dee'), body: { reason: 'changed my mind' } });
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
    await waitFor(async () => (await changesTooLate()) === tooLate + 1, { what: 'the drop refused as too late' });
    // the kettle left with the parcel: the refund is withdrawn, nothing paid back, and the order goes on to ship
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    await expectWithdrawn(orderId, 'dee');
    expect((await atWarehouse(orderId)).cancelled).toBe(false);
    expect(await shipmentOf(orderId)).toEqual(['ACCEPTED']);
    expect(await kettles()).toEqual(stockBefore);
    expect(await restockedInLedger(orderId)).toEqual([]);

    const shipped = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-LATE', at: new Date().toISOString() });
    expect([shipped.status, shipped.body.changed, shipped.body.status]).toEqual([200, true, 'SHIPPED']);
    expect(await shipmentOf(orderId)).toEqual(['SHIPPED']);
    // a parcel of an order that is not refunded: no parcel shipped after a refund
    expect(await shippedAfterRefund()).toBe(shippedBefore);
    expect((await system.order(orderId)).history.map((step: any) => step.action).slice(-3)).toEqual(['refund', 'withdraw_refund', 'ship']);
    // the refund job sends the drop again: the parcel refused again is not counted again
    const { fulfillment } = system.workers.deps.queues;
    await waitFor(async () => (await fulfillment.getJobs(['waiting', 'prioritized', 'delayed', 'active'])).every((job) => job.data.orderId !== orderId), { what: 'the drop jobs to have run' });
    expect(await changesTooLate()).toBe(tooLate + 1);
    expect(await kettles()).toEqual(stockBefore);
    expect(await paidBack(orderId)).toEqual([]);
  });

  it('takes a DELIVERED for a parcel whose refund waited for the warehouse, and whose SHIPPED was lost, as the parcel having left: the refund withdrawn, the order delivered', async () => {
    const before = await shippedAfterRefund();
    const orderId = await cancelledBeforeItsDrop('eve', { event: 'DELIVERED' });
    await system.waitForStatus(orderId, 'DELIVERED');
    expect(await shipmentOf(orderId)).toEqual(['DELIVERED']);
    await expectWithdrawn(orderId, 'eve');
    expect(await shippedAfterRefund()).toBe(before);
    // the buyer has the kettle: a return is theirs to ask for
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('eve'), body: { reason: 'I had cancelled it', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect([asked.status, asked.body.status]).toEqual([202, 'REQUESTED']);
  });

  it('counts a parcel whose address change the warehouse refused because it had left, once however many changes follow, and leaves the parcel going out', async () => {
    const orderId = await paid('fay', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
    const before = await changesTooLate();
    const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('fay'), body: { address: { ...buyerAddress, line1: '1 New Road' } } });
    expect(moved.status).toBe(200);
    await waitFor(async () => (await changesTooLate()) === before + 1, { what: 'the change refused as too late' });
    expect((await atWarehouse(orderId)).address.line1).toBe(buyerAddress.line1);
    expect(await shipmentOf(orderId)).toEqual(['ACCEPTED']);
    // another change of the same parcel is refused alike, and the parcel is not counted again
    expect((await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('fay'), body: { address: { ...buyerAddress, line1: '2 Newer Road' } } })).status).toBe(200);
    const { fulfillment } = system.workers.deps.queues;
    await waitFor(async () => (await fulfillment.getJobs(['waiting', 'prioritized', 'delayed', 'active'])).every((job) => job.data.orderId !== orderId), { what: 'the second change sent' });
    expect(await changesTooLate()).toBe(before + 1);
  });

  it('ships an order refunded whole whose parcel the warehouse shipped before it read the drop: the refund withdrawn, nothing paid back, the shipment never turned CANCELLED by the drop', async () => {
    const { fulfillment } = system.workers.deps.queues;
    const [before, stockBefore] = [await shippedAfterRefund(), await kettles()];
    const orderId = await cancelledBeforeItsDrop('cy', { event: 'SHIPPED', trackingNo: 'TRK-GONE' });
    await system.waitForStatus(orderId, 'SHIPPED');
    // the drop's job has run, and found nothing left in the warehouse to drop
    await waitFor(async () => (await fulfillment.getJobs(['waiting', 'prioritized', 'delayed', 'active'])).every((job) => job.data.orderId !== orderId), { what: "the drop's job to have run" });
    const order = await system.order(orderId);
    expect(order.shipments).toEqual([expect.objectContaining({ status: 'SHIPPED', trackingNo: 'TRK-GONE' })]);
    expect(order.status).toBe('SHIPPED');
    await expectWithdrawn(orderId, 'cy');
    expect(await shippedAfterRefund()).toBe(before);
    // the kettle bought for it left with the parcel: never on sale again (its reservation was taken by this order)
    expect(await kettles()).toEqual({ ...stockBefore, available: stockBefore.available - 1, sold: stockBefore.sold + 1 });
    expect(await restockedInLedger(orderId)).toEqual([]);
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
    // the split order has no parcel of its own: each child ships (or drops) its own, listed on it under the child's id
    const listed = (await system.order(orderId)).shipments.map((shipment: { orderId: string; status: string }) => [shipment.orderId, shipment.status]);
    expect(listed.sort()).toEqual([[kettleChild, 'ACCEPTED'], [teaChild, 'CANCELLED']].sort());
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { jobId } from '@orders/queues';
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * An order whose hand-over reached its warehouse while the worker never recorded it (the answer
 * lost, the worker killed, the job held by the breaker and then lost): the warehouse's own events
 * are all the order system hears of the parcel, and whatever changed meanwhile must reach it.
 */
describe('an order handed over to its warehouse without the hand-over recorded', () => {
  let system: OrderSystem;
  let callbackUrl: string;

  beforeAll(async () => {
    // the warehouse advances only when the test sends its events; no sweep hands a lost hand-over over again
    system = await startOrderSystem('hand_over_unrecorded', { WAREHOUSE_SIM_STEP_MS: '0', OVERDUE_SWEEP_INTERVAL_MS: '0' });
    callbackUrl = `http://127.0.0.1:${(system.api.server.address() as { port: number }).port}/v1/callbacks/warehouse`;
    await system.createSku({ skuId: 'RUG', priceCents: 12_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const atWarehouse = async (orderId: string) => (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
  const fulfilmentIdle = () =>
    waitFor(async () => Object.values(await system.workers.deps.queues.fulfillment.getJobCounts('wait', 'delayed', 'active', 'prioritized')).every((count) => count === 0), {
      what: 'the fulfilment queue to run dry',
    });
  /** The api's count of parcels shipped after their refund (ParcelsShippedAfterRefund). */
  const shippedAfterRefund = async () => Number(/^parcels_shipped_after_refund_total(?:\{[^}]*\})? (\d+)$/m.exec((await system.request('GET', '/metrics')).body)?.[1]);

  /**
   * `qty` rugs paid for, which the warehouse took as the hand-over sent them (to the buyer's
   * address as it was then) and whose hand-over job is gone before it recorded anything.
   */
  async function handedOverUnrecorded(buyer: string, qty: number): Promise<string> {
    const { fulfillment } = system.workers.deps.queues;
    const orderId = await system.checkout(buyer, [{ skuId: 'RUG', qty }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // the warehouse answers nothing the worker can record: its hand-over job waits to ask again, and is lost there
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
      await system.waitForStatus(orderId, 'PAID');
      await waitFor(
        async () => {
          const handOver = await fulfillment.getJob(jobId.sendToWarehouse(orderId));
          if (!handOver || (await handOver.getState()) !== 'delayed') return false;
          // taken up again meanwhile: it is removed while it waits next time
          return handOver.remove().then(
            () => true,
            () => false,
          );
        },
        { what: 'the hand-over job to wait, and be lost' },
      );
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    const accepted = await system.warehouseSim.request('POST', '/v1/fulfilment-orders', {
      body: { orderId, warehouseId: 'wh-east', items: [{ skuId: 'RUG', qty }], address: buyerAddress, notifyUrl: callbackUrl },
    });
    expect(accepted.status).toBe(202);
    await fulfilmentIdle();
    return orderId;
  }

  it('tells the warehouse of the new address and the units refunded while the order was PAID once its first event records the hand-over, before the parcel leaves', async () => {
    const orderId = await handedOverUnrecorded('ana', 3);
    const moved = { ...buyerAddress, line1: '9 Harbour Road' };
    expect((await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('ana'), body: { address: moved } })).status).toBe(200);
    const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ana'), body: { reason: 'two are enough', items: [{ skuId: 'RUG', qty: 1 }] } });
    expect(refund.status).toBe(202);
    // their updates found no parcel handed over: the warehouse still has the first hand-over
    await fulfilmentIdle();
    expect(await atWarehouse(orderId)).toMatchObject({ items: [{ skuId: 'RUG', qty: 3 }], address: { line1: buyerAddress.line1 } });
    expect((await system.order(orderId)).status).toBe('PAID');

    const picked = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'PICKED' } });
    expect(picked.body.callbackStatus).toBe(200);
    expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');
    await waitFor(async () => (await atWarehouse(orderId)).address.line1 === moved.line1, {
      what: 'the warehouse to have the new address',
      explain: async () => JSON.stringify(await atWarehouse(orderId)),
    });
    expect((await atWarehouse(orderId)).items).toEqual([{ skuId: 'RUG', qty: 2 }]);
  });

  it('opens the shipment of an order refunded whole while PAID whose parcel the warehouse shipped anyway, and counts it', async () => {
    const orderId = await handedOverUnrecorded('bea', 1);
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('bea'), body: { reason: 'changed my mind' } })).status).toBe(200);
    await system.waitForStatus(orderId, 'REFUNDED');
    expect((await system.order(orderId)).shipments).toEqual([]);

    const before = await shippedAfterRefund();
    const shipped = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } });
    expect(shipped.body.callbackStatus).toBe(200);
    const order = await system.order(orderId);
    expect(order.status).toBe('REFUNDED');
    expect(order.shipments).toEqual([expect.objectContaining({ status: 'SHIPPED', trackingNo: (await atWarehouse(orderId)).trackingNo, warehouseId: 'wh-east' })]);
    expect(await shippedAfterRefund()).toBe(before + 1);

    // sent again, it is the same parcel: counted once
    await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } });
    expect((await system.order(orderId)).shipments).toHaveLength(1);
    expect(await shippedAfterRefund()).toBe(before + 1);
  });
});

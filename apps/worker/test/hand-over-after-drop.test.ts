// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A hand-over whose answer was lost to a timeout may still reach the warehouse after the order was
 * refunded whole and the warehouse, not having it yet, answered its drop 404: the drop is sent again
 * until such a request is long past, so no parcel of a refunded order is left live there to ship.
 */
describe('a hand-over landing at the warehouse after its order was refunded', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('hand_over_after_drop', {
      WAREHOUSE_SIM_STEP_MS: '0',
      OVERDUE_SWEEP_INTERVAL_MS: '0',
      WAREHOUSE_BREAKER_TIMEOUT_MS: '1000',
      WAREHOUSE_BREAKER_RESET_MS: '500',
      EXTERNAL_RETRY_DELAY_MS: '200',
    });
    await system.createSku({ skuId: 'RV-CUP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0, outage: false } });
    await system?.close();
  });
  const atWarehouse = async (orderId: string) => (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
  const counted = async (metric: string) => Number(new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec((await system.request('GET', '/metrics')).body)?.[1] ?? 0);

  it('leaves no live parcel at the warehouse when a hand-over timed out, the order was cancelled and the drop overtook the hand-over (404), which then landed', async () => {
    const orderId = await system.checkout('rv-dan', [{ skuId: 'RV-CUP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // the warehouse is slow: the hand-over's request reaches it only after the 1 s client timeout
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 5_000 } });
    try {
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('rv-dan'), body: { method: 'card' } })).status).toBe(202);
      await waitFor(async () => (await system.workers.deps.queues.fulfillment.getJob(`ship-${orderId}`))?.isActive() ?? false, { what: 'the hand-over under way', intervalMs: 20 });
      // the warehouse answers quickly again (the slow request is still in its hands); the buyer cancels
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
      const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('rv-dan'), body: { reason: 'changed my mind' } });
      expect(cancel.status).toBe(200);
      await system.waitForStatus(orderId, 'REFUNDED', 20_000);
      // the slow hand-over lands at the warehouse after the drop was answered 404
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      await waitFor(async () => Object.values(await system.workers.deps.queues.fulfillment.getJobCounts('wait', 'delayed', 'active', 'prioritized')).every((count) => count === 0), { what: 'fulfilment idle' });
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
    const order = await system.order(orderId);
    expect([order.status, order.amounts.refundedCents]).toEqual(['REFUNDED', order.amounts.payableCents]);
    const parcel = await atWarehouse(orderId);
    const alarmsBefore = await counted('parcels_shipped_after_refund_total');
    // should the warehouse hold a live parcel, it ships it: the goods leave for a buyer paid back in full
    if (parcel?.cancelled === false) {
      const shipped = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } });
      expect(shipped.body.callbackStatus).toBe(200);
      expect(await counted('parcels_shipped_after_refund_total')).toBe(alarmsBefore + 1);
      expect((await system.order(orderId)).status).toBe('REFUNDED');
    }
    // the buyer has their money back: the warehouse must not hold a parcel it will ship
    expect(parcel?.cancelled === false ? { items: parcel.items, cancelled: parcel.cancelled, shipped: parcel.shipped } : null).toBeNull();
  });
});

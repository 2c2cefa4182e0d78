// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { holdRow, rowLockWaits, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe("the warehouse's callbacks committing beside a step of the buyer or the merchant", () => {
  let system: OrderSystem;
  const counted = async (metric: string) => Number(new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec((await system.request('GET', '/metrics')).body)?.[1] ?? 0);

  beforeAll(async () => {
    system = await startOrderSystem('warehouse_callbacks_beside_buyer_steps', { WAREHOUSE_SIM_STEP_MS: '0', OVERDUE_SWEEP_INTERVAL_MS: '0', AFTER_SALES_WINDOW_MS: '600000' });
    await system.createSku({ skuId: 'VASE', priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it("ships the order, its refund withdrawn and no alarm raised, when the buyer's cancel commits between the SHIPPED callback's read and its step", async () => {
    const orderId = await system.checkout('zoe', [{ skuId: 'VASE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('zoe'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the parcel leaves; its SHIPPED callback is sent below, beside the cancel
    await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
    const alarmsBefore = await counted('parcels_shipped_after_refund_total');
    const held = await holdRow(system.env.db, 'orders', 'order_id', orderId);
    let cancelled: Promise<{ status: number; body: any }> | undefined;
    let shipped: Promise<{ status: number; body: any }> | undefined;
    try {
      cancelled = system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('zoe'), body: { reason: 'changed my mind' } });
      await waitFor(async () => (await rowLockWaits(system.env.db)).length >= 1, { what: 'the cancel to wait for the row', intervalMs: 200 });
      shipped = system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-1', at: new Date().toISOString() });
      await waitFor(async () => (await rowLockWaits(system.env.db)).length >= 2, { what: 'the ship step to wait for the row', intervalMs: 200 });
    } finally {
      await held.release();
    }
    expect((await cancelled!).status).toBe(200);
    expect((await shipped!).status).toBe(200);
    await waitFor(async () => Object.values(await system.workers.deps.queues.fulfillment.getJobCounts('wait', 'delayed', 'active', 'prioritized')).every((count) => count === 0), { what: 'fulfilment idle' });
    await waitFor(async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('zoe') })).body.items[0]?.status === 'WITHDRAWN', { what: 'the refund withdrawn' });
    const order = await system.order(orderId);
    expect([order.status, order.shipments[0]?.status]).toEqual(['SHIPPED', 'SHIPPED']);
    // nothing was paid back: no parcel for staff to stop
    expect(await counted('parcels_shipped_after_refund_total')).toBe(alarmsBefore);
  });

  it('counts the parcel of a return staff closed while its receipt was being recorded', async () => {
    const orderId = await system.shipped('fay', [{ skuId: 'LAMP', qty: 1 }]);
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'DELIVERED' } })).body.callbackStatus).toBe(200);
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('fay'), body: { reason: 'flickers', items: [{ skuId: 'LAMP', qty: 1 }] } });
    const returnId = asked.body.returnId as string;
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: system.token('shop', 'merchant') })).status).toBe(200);
    const before = await counted('return_parcels_after_close_total');
    const held = await holdRow(system.env.db, 'orders', 'order_id', orderId);
    let closed: Promise<{ status: number; body: any }> | undefined;
    let received: Promise<{ status: number; body: any }> | undefined;
    try {
      // by staff: a merchant may close it only once its parcel's window has run
      closed = system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/close`, { token: system.token('ops', 'admin') });
      await waitFor(async () => (await rowLockWaits(system.env.db)).length >= 1, { what: 'the close to wait for the row', intervalMs: 200 });
      received = system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', returnId, at: new Date().toISOString() });
      await waitFor(async () => (await rowLockWaits(system.env.db)).length >= 2, { what: 'the receipt to wait for the row', intervalMs: 200 });
    } finally {
      await held.release();
    }
    expect([(await closed!).status, (await closed!).body.status]).toEqual([200, 'CLOSED']);
    expect([(await received!).status, (await received!).body.changed]).toEqual([200, false]);
    // the units are back and nothing was paid back: for staff to settle
    expect(await counted('return_parcels_after_close_total')).toBe(before + 1);
  });
});

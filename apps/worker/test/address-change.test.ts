// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('changing the delivery address', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('address_change');
    await system.createSku({ skuId: 'DESK', priceCents: 15_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('changes it before payment and in fulfilment (the warehouse is told), records each change, repeats change nothing, and refuses once shipped', async () => {
    const fay = system.token('fay');
    const orderId = await system.checkout('fay', [{ skuId: 'DESK', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const patch = (line1: string) => system.request('PATCH', `/v1/orders/${orderId}/address`, { token: fay, body: { address: { ...buyerAddress, line1 } } });

    const unpaid = await patch('2 Elm Street');
    expect([unpaid.status, unpaid.body.address.line1]).toEqual([200, '2 Elm Street']);
    expect(unpaid.body.history.at(-1)).toMatchObject({ from: 'PENDING_PAYMENT', action: 'change_address', to: 'PENDING_PAYMENT', actor: 'buyer' });

    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: fay, body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const atWarehouse = async () => (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
    expect((await atWarehouse()).address.line1).toBe('2 Elm Street');

    const moved = await patch('9 Oak Avenue');
    expect(moved.status).toBe(200);
    await waitFor(async () => (await atWarehouse()).address.line1 === '9 Oak Avenue', { what: 'the warehouse to have the new address' });
    const again = await patch('9 Oak Avenue');
    expect(again.body.history).toHaveLength(moved.body.history.length);
    expect(moved.body.history.filter((h: any) => h.action === 'change_address')).toHaveLength(2);
    // the repeat may tell the warehouse again (the update's job may have been lost with the first answer): the same address
    const { fulfillment } = system.workers.deps.queues;
    await waitFor(async () => Object.values(await fulfillment.getJobCounts('waiting', 'active', 'prioritized', 'delayed')).every((count) => count === 0), { what: "the warehouse's updates sent" });
    expect([(await atWarehouse()).address.line1, (await atWarehouse()).changes <= 2]).toEqual(['9 Oak Avenue', true]);

    await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } });
    await system.waitForStatus(orderId, 'SHIPPED');
    // the same address sent again once shipped, its fields in another order (a client that builds its JSON differently): 200, nothing changes
    const reordered = Object.fromEntries(Object.entries({ ...buyerAddress, line1: '9 Oak Avenue' }).reverse());
    const repeated = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: fay, body: { address: reordered } });
    expect([repeated.status, repeated.body.history.length]).toEqual([200, (await system.order(orderId)).history.length]);
    expect(repeated.body.history.filter((h: any) => h.action === 'change_address')).toHaveLength(2);
    const late = await patch('1 Late Lane');
    expect([late.status, late.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect((await system.order(orderId)).address.line1).toBe('9 Oak Avenue');
    // someone else's order is not found
    expect((await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('gus'), body: { address: buyerAddress } })).status).toBe(404);
  });

  it('counts, logs and shows on its parcel a change whose update waited out the warehouse while the parcel left: it goes to the old address', async () => {
    const changesTooLate = async () => (await system.workers.deps.metrics.registry.getSingleMetric('fulfilment_changes_too_late_total')!.get()).values[0]?.value ?? 0;
    const orderId = await system.checkout('fay', [{ skuId: 'DESK', qty: 1 }], 'fay-late-change');
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('fay'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const before = await changesTooLate();
    const { fulfillment } = system.workers.deps.queues;
    // the warehouse answers "not now" a moment: the change's update waits to be sent again
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('fay'), body: { address: { ...buyerAddress, line1: '1 New Road' } } });
      expect(moved.status).toBe(200);
      await waitFor(async () => (await fulfillment.getJobs(['delayed'])).some((job) => job.data.orderId === orderId), { what: 'the update waiting to be sent again' });
      // meanwhile the parcel leaves, to the address the warehouse has
      await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
      const shipped = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-OLD', at: new Date().toISOString() });
      expect([shipped.status, shipped.body.status]).toEqual([200, 'SHIPPED']);
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    await waitFor(async () => (await fulfillment.getJobs(['waiting', 'prioritized', 'delayed', 'active'])).every((job) => job.data.orderId !== orderId), { what: 'the update job to have run', timeoutMs: 20_000 });
    const atWarehouse = (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
    expect(atWarehouse.address.line1).toBe(buyerAddress.line1);
    expect(await changesTooLate()).toBe(before + 1);
    // the buyer (and the console) reads on the parcel that the change came too late
    const seen = (await system.request('GET', `/v1/orders/${orderId}`, { token: system.token('fay') })).body;
    expect([seen.address.line1, seen.shipments.map((parcel: { changeRefusedAt: string | null }) => parcel.changeRefusedAt !== null)]).toEqual(['1 New Road', [true]]);
  });
});

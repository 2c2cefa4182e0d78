// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { JOB } from '@orders/queues';
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('two quick changes of an order the warehouse has', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // the warehouse answers slowly in this test, but within the breaker's timeout, so no call is retried
    system = await startOrderSystem('fulfilment_updates_in_order', { WAREHOUSE_BREAKER_TIMEOUT_MS: '10000' });
    await system.createSku({ skuId: 'SOFA', priceCents: 49_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const atWarehouse = async (orderId: string) => (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
  const updatesUnderWay = async (orderId: string) =>
    (await system.workers.deps.queues.fulfillment.getJobs(['active'])).filter((job) => job.name === JOB.updateFulfilment && (job.data as { orderId: string }).orderId === orderId);

  /** A sofa `buyer` paid for, at the warehouse, and how to move it to another street. */
  const atWarehouseFor = async (buyer: string) => {
    const token = system.token(buyer);
    const orderId = await system.checkout(buyer, [{ skuId: 'SOFA', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token, body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const moveTo = async (line1: string) => {
      const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token, body: { address: { ...buyerAddress, line1 } } });
      expect(moved.status).toBe(200);
    };
    return { orderId, moveTo };
  };

  it('leaves the warehouse with the last address when the first update is still on its way as the second is made', async () => {
    const { orderId, moveTo } = await atWarehouseFor('ada');

    // the warehouse takes 4 s to take the first change: its update has read the order and waits on the answer
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 4_000 } });
    await moveTo('2 Elm Street');
    await waitFor(async () => (await updatesUnderWay(orderId)).length === 1, { what: 'the first update to be under way' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    await moveTo('9 Oak Avenue');

    await waitFor(async () => (await atWarehouse(orderId)).changes === 2 && (await updatesUnderWay(orderId)).length === 0, {
      what: 'the warehouse to have heard both changes',
      timeoutMs: 15_000,
      intervalMs: 200,
    });
    expect((await system.order(orderId)).address.line1).toBe('9 Oak Avenue');
    expect((await atWarehouse(orderId)).address.line1).toBe('9 Oak Avenue');
  });

  it('sends each change with the order’s version: one older than the warehouse has (sent before, its answer timed out, arriving late) changes nothing there', async () => {
    const { orderId, moveTo } = await atWarehouseFor('bo');
    await moveTo('5 Pine Road');
    await waitFor(async () => (await atWarehouse(orderId)).changes === 1 && (await updatesUnderWay(orderId)).length === 0, { what: 'the change at the warehouse', timeoutMs: 15_000, intervalMs: 200 });
    const { version } = await system.env.db.selectFrom('orders').select('version').where('order_id', '=', orderId).executeTakeFirstOrThrow();
    expect((await atWarehouse(orderId)).version).toBe(version);

    const late = await system.warehouseSim.request('POST', `/v1/fulfilment-orders/${orderId}/changes`, { body: { items: [{ skuId: 'SOFA', qty: 1 }], address: { ...buyerAddress, line1: '1 Old Lane' }, version: version - 1 } });
    expect(late.status).toBe(200);
    const held = await atWarehouse(orderId);
    expect([held.address.line1, held.version, held.changes, held.staleChanges]).toEqual(['5 Pine Road', version, 1, 1]);
  });
});

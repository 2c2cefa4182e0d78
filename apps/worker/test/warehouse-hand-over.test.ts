// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { ProcessRepository } from '@orders/persistence';
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('refunds that commit while an order is being handed to its warehouse', () => {
  let system: OrderSystem;
  let admin: string;

  beforeAll(async () => {
    // a 1 s breaker timeout, retries 200 ms apart and a breaker probing again after 500 ms: the faults below pass quickly
    system = await startOrderSystem('warehouse_hand_over', { WAREHOUSE_BREAKER_TIMEOUT_MS: '1000', WAREHOUSE_BREAKER_RESET_MS: '500', EXTERNAL_RETRY_DELAY_MS: '200' });
    admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'TV', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0, outage: false } });
    await system?.close();
  });

  const stock = async (skuId: string) => (await system.request('GET', `/v1/admin/skus/${skuId}`, { token: admin })).body.stock;
  const atWarehouse = async (orderId: string) => (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
  const pay = async (buyer: string, orderId: string) => {
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'PAID');
  };

  // the warehouse takes the order and answers after the cancel committed, within the breaker's 1 s timeout or after it (the answer lost)
  it.each([
    { buyer: 'bea', latencyMs: 600, answer: 'its answer came after the cancel' },
    { buyer: 'bob', latencyMs: 1_500, answer: 'its answer lost to a timeout' },
  ])('tells the warehouse to drop an order cancelled while its hand-over was under way: $answer', async ({ buyer, latencyMs }) => {
    const before = (await stock('TV')).available;
    const orderId = await system.checkout(buyer, [{ skuId: 'TV', qty: 1 }]);
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs } });
    try {
      await pay(buyer, orderId);
      // the hand-over job is waiting on the slow warehouse, which will accept the order
      await waitFor(async () => (await system.workers.deps.queues.fulfillment.getJob(`ship-${orderId}`))?.isActive() ?? false, { what: 'the hand-over under way', intervalMs: 20 });
      const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(buyer), body: { reason: 'changed my mind' } });
      expect(cancel.status).toBe(200);
      // the warehouse may have the parcel: nothing is paid back, nor put back on sale, until it has dropped it
      const [refund] = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer) })).body.items;
      expect([refund.status, refund.restockHeld]).toEqual(['PENDING', true]);
      expect((await stock('TV')).available).toBe(before - 1);
      // the warehouse answers in time again: told to drop the order
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
      await system.waitForStatus(orderId, 'REFUNDED', 20_000);
      const parcel = await waitFor(async () => ((await atWarehouse(orderId))?.cancelled ? atWarehouse(orderId) : false), { what: 'the warehouse to drop the order', timeoutMs: 20_000 });
      expect(parcel.items).toEqual([]);
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
    const order = await system.order(orderId);
    expect([order.status, order.shipments, order.amounts.refundedCents]).toEqual(['REFUNDED', [], order.amounts.payableCents]);
    // the unit is back on sale once, and nobody ships it to the refunded buyer
    expect(await stock('TV')).toEqual({ available: before, reserved: 0, sold: 0 });
  });

  it('sends the warehouse the new address of an order moved while the warehouse was still answering its hand-over', async () => {
    const orderId = await system.checkout('dot', [{ skuId: 'TV', qty: 1 }]);
    // the warehouse answers within the breaker's timeout, after the new address committed
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 600 } });
    try {
      await pay('dot', orderId);
      await waitFor(async () => (await system.workers.deps.queues.fulfillment.getJob(`ship-${orderId}`))?.isActive() ?? false, { what: 'the hand-over under way', intervalMs: 20 });
      const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('dot'), body: { address: { ...buyerAddress, line1: '99 Moved Road' } } });
      expect(moved.status).toBe(200);
      await system.waitForStatus(orderId, 'IN_FULFILLMENT', 20_000);
      const parcel = await waitFor(async () => ((await atWarehouse(orderId))?.address.line1 === '99 Moved Road' ? atWarehouse(orderId) : false), { what: 'the new address at the warehouse', timeoutMs: 20_000 });
      expect([parcel.items, parcel.cancelled]).toEqual([[{ skuId: 'TV', qty: 1 }], false]);
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
  });

  // the warehouse took the order, and answered after the breaker's 1 s timeout; the buyer then moved it and had 2 of its 3 rugs refunded
  it.each([
    { buyer: 'eve', diedAfterHandOver: false, retry: 'the retried hand-over gets through' },
    { buyer: 'fay', diedAfterHandOver: true, retry: 'a retry finds the hand-over committed by an attempt that died before telling the warehouse' },
  ])('tells the warehouse the new address and the units left of an order changed after it took the hand-over: $retry', async ({ buyer, diedAfterHandOver }) => {
    const orderId = await system.checkout(buyer, [{ skuId: 'RUG', qty: 3 }]);
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 1_500 } });
    try {
      await pay(buyer, orderId);
      await waitFor(async () => (await atWarehouse(orderId)) ?? false, { what: 'the warehouse to take the order', timeoutMs: 10_000 });
      const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token(buyer), body: { address: { ...buyerAddress, line1: '7 New Street' } } });
      expect(moved.status).toBe(200);
      const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), body: { reason: 'two too many', items: [{ skuId: 'RUG', qty: 2 }] } });
      // the warehouse has the parcel: the refund waits for it to take the two rugs out
      expect([refund.status, refund.body.refunds[0].restockHeld]).toEqual([202, true]);
      expect((await system.order(orderId)).status).toBe('PAID');
      if (diedAfterHandOver) {
        // what an attempt that got the warehouse's answer committed before its worker was SIGKILLed
        await system.workers.deps.orders.applyTransition({
          orderId,
          action: 'fulfil',
          actor: 'system',
          detail: 'accepted by warehouse wh-east',
          at: new Date(),
          effects: async (trx, current) => ProcessRepository.openShipment(trx, current, 'wh-east', new Date()),
        });
      }
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
    const fulfilling = await system.waitForStatus(orderId, 'IN_FULFILLMENT', 20_000);
    expect([fulfilling.address.line1, fulfilling.amounts.refundedCents]).toEqual(['7 New Street', 2_000]);
    const parcel = await waitFor(async () => ((await atWarehouse(orderId)).changes > 0 ? atWarehouse(orderId) : false), { what: 'the warehouse to hear of the change', timeoutMs: 20_000 });
    expect([parcel.items, parcel.address.line1, parcel.cancelled]).toEqual([[{ skuId: 'RUG', qty: 1 }], '7 New Street', false]);
    // paid back once the warehouse took them out
    await system.waitForRefund(orderId);
  });

  it('tells the warehouse the new address when a hand-over reached it and its job was lost, and the job the sweep enqueued again finds the order moved', async () => {
    const { fulfillment } = system.workers.deps.queues;
    const fulfilmentWorker = system.workers.workers.find((worker) => worker.name === fulfillment.name)!;
    const orderId = await system.checkout('gil', [{ skuId: 'TV', qty: 1 }]);
    await fulfilmentWorker.pause();
    try {
      await pay('gil', orderId);
      // what the lost job's attempt had handed over: the order as it was when paid
      const { version } = await system.env.db.selectFrom('orders').select('version').where('order_id', '=', orderId).executeTakeFirstOrThrow();
      const handedOver = await system.warehouseSim.request('POST', '/v1/fulfilment-orders', {
        body: { orderId, warehouseId: 'wh-east', items: [{ skuId: 'TV', qty: 1 }], address: buyerAddress, version, notifyUrl: `${system.env.config.CALLBACK_BASE_URL}/v1/callbacks/warehouse` },
      });
      expect(handedOver.status).toBe(202);
      const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('gil'), body: { address: { ...buyerAddress, line1: '12 Found Lane' } } });
      expect(moved.status).toBe(200);
    } finally {
      fulfilmentWorker.resume();
    }
    // this hand-over, a first attempt of its own, is answered with the older one the warehouse holds
    await system.waitForStatus(orderId, 'IN_FULFILLMENT', 20_000);
    const parcel = await waitFor(async () => ((await atWarehouse(orderId)).address.line1 === '12 Found Lane' ? atWarehouse(orderId) : false), { what: 'the new address at the warehouse', timeoutMs: 20_000 });
    expect([parcel.items, parcel.changes, parcel.cancelled]).toEqual([[{ skuId: 'TV', qty: 1 }], 1, false]);
  });

  it('hands the warehouse only the units not refunded while it was away', async () => {
    const orderId = await system.checkout('cal', [{ skuId: 'LAMP', qty: 3 }]);
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      await pay('cal', orderId);
      const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('cal'), body: { reason: 'two too many', items: [{ skuId: 'LAMP', qty: 2 }] } });
      expect(refund.status).toBe(202);
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    // paid at once when the hand-over certainly did nothing; on a loaded box its 503 can come after the client's
    // 1 s timeout, the warehouse may then hold the parcel, and the refund waits for it to take the units out
    await system.waitForRefund(orderId);
    const fulfilling = await system.waitForStatus(orderId, 'IN_FULFILLMENT', 30_000);
    expect(fulfilling.items.map((i: any) => [i.skuId, i.qty])).toEqual([['LAMP', 3]]);
    const parcel = await atWarehouse(orderId);
    expect([parcel.items, parcel.cancelled]).toEqual([[{ skuId: 'LAMP', qty: 1 }], false]);
    // two lamps back on sale, one sold: none shipped twice over
    expect(await stock('LAMP')).toEqual({ available: 9, reserved: 0, sold: 1 });
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

/**
 * A split order one of whose children has left the warehouse: a refund of that child's lines
 * and a new address for the whole order are refused, each naming that child (in the detail and
 * in `childOrderId`), as the cancel is, whatever the child became since it shipped (delivered,
 * completed, returned). A child refunded whole before it shipped, its refund confirmed or still
 * awaiting the payment system, keeps no other child from taking a new address.
 */
describe('a split order one of whose children has shipped', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // the warehouse advances only when the test sends its events; a 2 s after-sales window to see a delivered child complete
    system = await startOrderSystem('split_order_shipped_children', { WAREHOUSE_SIM_STEP_MS: '0', AFTER_SALES_WINDOW_MS: '2000' });
    // one shop, two warehouses: an order of both splits into a kettle child and a tea child
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'TEA', priceCents: 1_250, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const warehouse = async (orderId: string, event: string) => expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
  const newAddress = { name: 'Ada Lovelace', phone: '+44 20 7946 0000', line1: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' };

  /** A paid order of a kettle and 2 teas, split in two children in fulfilment: [order, kettle child, tea child]. */
  async function paidAndSplit(buyer: string): Promise<[string, string, string]> {
    const orderId = await system.checkout(buyer, [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the split', timeoutMs: 15_000 })) as string[];
    const split = await Promise.all(children.map((child) => system.waitForStatus(child, 'IN_FULFILLMENT')));
    const childOf = (skuId: string) => split.find((child) => child.items[0].skuId === skuId).orderId as string;
    return [orderId, childOf('KETTLE'), childOf('TEA')];
  }

  it('refuses refunding the lines of the child that shipped, alone or with the other child’s, naming that child as the cancel does, and refunds nothing', async () => {
    const [orderId, kettleChild, teaChild] = await paidAndSplit('ada');
    const ada = system.token('ada');
    await warehouse(teaChild, 'SHIPPED');
    await system.waitForStatus(teaChild, 'SHIPPED');

    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: ada, body: { reason: 'changed my mind' } });
    expect([cancel.status, cancel.body.code, cancel.body.detail, cancel.body.childOrderId]).toEqual([409, 'ILLEGAL_TRANSITION', `Action 'cancel' by buyer is not allowed while its child order ${teaChild} is SHIPPED`, teaChild]);
    for (const items of [[{ skuId: 'TEA', qty: 1 }], [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 1 }]]) {
      const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: ada, body: { reason: 'too much', items } });
      expect([refund.status, refund.body.code, refund.body.detail, refund.body.childOrderId]).toEqual([409, 'ILLEGAL_TRANSITION', `Action 'refund' by buyer is not allowed while its child order ${teaChild} is SHIPPED`, teaChild]);
    }
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: ada })).body.items).toEqual([]);
    const kettle = await system.order(kettleChild);
    expect([kettle.status, kettle.items[0].refundedQty]).toEqual(['IN_FULFILLMENT', 0]);
  });

  it.each([
    ['delivered and past its after-sales window', 'COMPLETED'],
    ['delivered and returned', 'RETURNED'],
  ])('refuses a new address for the whole order once a child was %s (%s), naming that child, and moves no other child', async (_how, closed) => {
    const buyer = `bo-${closed.toLowerCase()}`;
    const [orderId, kettleChild, teaChild] = await paidAndSplit(buyer);
    await warehouse(teaChild, 'SHIPPED');
    await warehouse(teaChild, 'DELIVERED');
    if (closed === 'RETURNED') {
      const asked = await system.request('POST', `/v1/orders/${teaChild}/returns`, { token: system.token(buyer), body: { reason: 'too bitter', items: [{ skuId: 'TEA', qty: 2 }] } });
      expect(asked.status).toBe(202);
      expect((await system.request('POST', `/v1/orders/${teaChild}/returns/${asked.body.returnId}/approve`, { token: system.token('shop', 'merchant') })).status).toBe(200);
      await warehouse(teaChild, 'RETURN_RECEIVED');
    }
    await system.waitForStatus(teaChild, closed, 10_000);
    // the tea's child is closed, the kettle's still in the warehouse: the order reads as the kettle's
    expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');

    const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token(buyer), body: { address: newAddress } });
    expect([moved.status, moved.body.code, moved.body.detail, moved.body.childOrderId]).toEqual([409, 'ILLEGAL_TRANSITION', `Action 'change_address' by buyer is not allowed while its child order ${teaChild} is ${closed}`, teaChild]);
    for (const id of [orderId, kettleChild, teaChild]) {
      const part = await system.order(id);
      expect([part.address, part.history.some((step: any) => step.action === 'change_address')]).toEqual([buyerAddress, false]);
    }
  });

  it('changes the address of the children left to ship when the other was refunded before it shipped, that child keeping its own', async () => {
    const [orderId, kettleChild, teaChild] = await paidAndSplit('cy');
    const cy = system.token('cy');
    expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: cy, body: { reason: 'no tea', items: [{ skuId: 'TEA', qty: 2 }] } })).status).toBe(202);
    await system.waitForStatus(teaChild, 'REFUNDED', 20_000);

    const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: cy, body: { address: newAddress } });
    expect([moved.status, moved.body.address]).toEqual([200, newAddress]);
    expect((await system.order(kettleChild)).address).toEqual(newAddress);
    expect((await system.order(teaChild)).address).toEqual(buyerAddress);
  });

  it('refuses a refund of everything left once one child shipped and the other was refunded, naming the child that shipped, not the order', async () => {
    const [orderId, kettleChild, teaChild] = await paidAndSplit('di');
    const di = system.token('di');
    expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: di, body: { reason: 'no kettle', items: [{ skuId: 'KETTLE', qty: 1 }] } })).status).toBe(202);
    await system.waitForStatus(kettleChild, 'REFUNDED', 20_000);
    await warehouse(teaChild, 'SHIPPED');
    await system.waitForStatus(teaChild, 'SHIPPED');
    expect((await system.order(orderId)).status).toBe('SHIPPED');

    const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: di, body: { reason: 'all of it' } });
    expect([refund.status, refund.body.code, refund.body.detail, refund.body.childOrderId]).toEqual([409, 'ILLEGAL_TRANSITION', `Action 'refund' by buyer is not allowed while its child order ${teaChild} is SHIPPED`, teaChild]);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: di })).body.items).toHaveLength(1);
  });

  // last: the payment system is down for it, its breaker opening, until the refunds are confirmed at the end
  it('changes the address of a child partly refunded while the other, refunded whole, awaits the payment system (REFUNDING), that child keeping its own', async () => {
    const orderId = await system.checkout('eve', [{ skuId: 'KETTLE', qty: 2 }, { skuId: 'TEA', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const eve = system.token('eve');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: eve, body: { method: 'card' } })).status).toBe(202);
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the split', timeoutMs: 15_000 })) as string[];
    const split = await Promise.all(children.map((child) => system.waitForStatus(child, 'IN_FULFILLMENT')));
    const kettleChild = split.find((child) => child.items[0].skuId === 'KETTLE').orderId as string;
    const teaChild = split.find((child) => child.items[0].skuId === 'TEA').orderId as string;
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      // one of the 2 kettles and both teas: the kettle's child still ships its other kettle, the tea's child has nothing left to ship
      const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: eve, body: { reason: 'fewer', items: [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 2 }] } });
      expect(refund.status).toBe(202);
      expect([(await system.order(kettleChild)).status, (await system.order(teaChild)).status, (await system.order(orderId)).status]).toEqual(['IN_FULFILLMENT', 'REFUNDING', 'REFUNDING']);
      const offered = await system.request('GET', `/v1/orders/${orderId}/actions`, { token: system.token('ops', 'admin') });
      expect(offered.body.actions.map((a: any) => a.action)).toContain('change_address');

      const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: eve, body: { address: newAddress } });
      expect([moved.status, moved.body.address, moved.body.status]).toEqual([200, newAddress, 'REFUNDING']);
      expect((await system.order(kettleChild)).address).toEqual(newAddress);
      const tea = await system.order(teaChild);
      expect([tea.status, tea.address, tea.history.some((step: any) => step.action === 'change_address')]).toEqual(['REFUNDING', buyerAddress, false]);

      // the last kettle refunded too: no child is left to ship, and no address is taken
      expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: eve, body: { reason: 'none at all' } })).status).toBe(202);
      await system.waitForStatus(kettleChild, 'REFUNDING');
      const again = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: eve, body: { address: { ...newAddress, line1: '1 Other Street' } } });
      expect([again.status, again.body.code, again.body.detail]).toEqual([409, 'ILLEGAL_TRANSITION', `Action 'change_address' by buyer is not allowed while its child order ${again.body.childOrderId} is REFUNDING`]);
      expect(children).toContain(again.body.childOrderId);
      expect((await system.order(orderId)).address).toEqual(newAddress);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    for (const child of [kettleChild, teaChild]) await system.waitForStatus(child, 'REFUNDED', 30_000);
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

/**
 * A split order's children hold no payment of their own: the buyer paid the order once, and
 * that payment, on the parent, is what paid each child.
 */
describe('the payment a split order’s child shows', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('split_child_payment');
    // the shop's goods in two warehouses and the potter's: an order of all three splits in three
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'TEA', priceCents: 1_250, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 899, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it("shows the buyer and the child's merchant the buyer's one payment on a paid child, in the order and in their lists, and the merchant nothing of the other merchant's part", async () => {
    const [buyer, shop, potter, admin] = [system.token('ada'), system.token('shop', 'merchant'), system.token('potter', 'merchant'), system.token('ops', 'admin')];
    const orderId = await system.checkout('ada', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 2 }, { skuId: 'MUG', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: buyer, body: { method: 'card' } })).status).toBe(202);
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 3 && (await system.order(orderId)).subOrders, { what: 'the split', timeoutMs: 15_000 })) as string[];
    const split = await Promise.all(children.map((child) => system.waitForStatus(child, 'IN_FULFILLMENT')));
    const childOf = (skuId: string) => split.find((child) => child.items[0].skuId === skuId).orderId as string;
    const [kettleChild, teaChild, mugChild] = [childOf('KETTLE'), childOf('TEA'), childOf('MUG')];

    const seenBy = async (token: string, id: string) => {
      const answer = await system.request('GET', `/v1/orders/${id}`, { token });
      expect(answer.status).toBe(200);
      return answer.body;
    };
    // the one payment of the whole order: 3,999 + 2 × 1,250 + 2 × 899
    const parent = await seenBy(buyer, orderId);
    expect(parent.payments).toEqual([expect.objectContaining({ amountCents: 8_297, status: 'SUCCEEDED' })]);
    const paid = parent.payment;
    expect(paid).toEqual({ paymentId: parent.payments[0].paymentId, transactionId: expect.stringMatching(/^txn_/), paidAt: parent.payments[0].paidAt, method: 'card' });
    expect(paid.paidAt).not.toBeNull();

    // the buyer's children are each paid by it; the attempts, each of the whole order's amount, stay on the parent
    for (const child of children) expect(await seenBy(buyer, child)).toMatchObject({ parentOrderId: orderId, payment: paid, payments: [] });

    // the shop sees its kettle's child paid the same way, and of the order's amounts only the kettle's
    const kettle = await seenBy(shop, kettleChild);
    expect(kettle).toMatchObject({ payment: paid, payments: [], amounts: { payableCents: 3_999 } });
    expect(kettle.items.map((item: any) => item.skuId)).toEqual(['KETTLE']);
    expect(JSON.stringify(kettle)).not.toContain('MUG');
    expect(JSON.stringify(kettle)).not.toContain(mugChild);
    expect(JSON.stringify(kettle)).not.toContain('8297');
    // the potter may not read the shop's child at all
    expect((await system.request('GET', `/v1/orders/${kettleChild}`, { token: potter })).status).toBe(404);
    expect((await seenBy(potter, mugChild)).payment).toEqual(paid);

    // the shop's list holds its two children (not the order they were split from), each paid
    const shopList = (await system.request('GET', '/v1/orders?limit=100', { token: shop })).body.items;
    expect(shopList.map((order: any) => order.orderId).toSorted()).toEqual([kettleChild, teaChild].toSorted());
    for (const listed of shopList) expect(listed).toMatchObject({ payment: paid, payments: [] });
    expect(JSON.stringify(shopList)).not.toContain('MUG');
    // an admin's list of the buyer's orders: the order and its three children, each paid by it
    const adminList = (await system.request('GET', '/v1/admin/orders?userId=ada', { token: admin })).body.items;
    expect(adminList.map((order: any) => order.orderId).toSorted()).toEqual([orderId, ...children].toSorted());
    for (const listed of adminList) expect(listed.payment).toEqual(paid);
  });
});

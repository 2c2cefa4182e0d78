// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

/**
 * A split order's actions as an operator sees them: what GET /v1/orders/:id/actions offers
 * on the order as a whole is what its routes then carry out on the children.
 */
describe("the actions offered on a split order, from its children's statuses", () => {
  let system: OrderSystem;
  let admin: string;

  beforeAll(async () => {
    // the warehouse advances only when the test sends its events
    system = await startOrderSystem('split_order_actions', { WAREHOUSE_SIM_STEP_MS: '0' });
    admin = system.token('ops', 'admin');
    // one shop, two warehouses: an order of both splits into two children the admin acts on alike
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'TEA', priceCents: 1_250, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const actionsOf = async (orderId: string) => {
    const answer = await system.request('GET', `/v1/orders/${orderId}/actions`, { token: admin });
    expect(answer.status).toBe(200);
    return answer.body.actions as Array<{ action: string; href: string }>;
  };
  const newAddress = { name: 'Ada Lovelace', phone: '+44 20 7946 0000', line1: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' };

  /** The buyer's order of `items` (one SKU per child), paid and split, its children in `childStatus`: the order, and its child holding a SKU. */
  async function splitWhenPaid(buyer: string, items: Array<{ skuId: string; qty: number }>, childStatus: string): Promise<{ orderId: string; childOf: (skuId: string) => string }> {
    const orderId = await system.checkout(buyer, items);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === items.length && (await system.order(orderId)).subOrders, { what: 'the split', timeoutMs: 15_000 })) as string[];
    const split = await Promise.all(children.map((child) => system.waitForStatus(child, childStatus)));
    return { orderId, childOf: (skuId) => split.find((child) => child.items[0].skuId === skuId).orderId as string };
  }

  /** A paid order of a kettle and tea, split in two: [parent, kettle child, tea child], the children in `childStatus`. */
  async function paidAndSplit(buyer: string, childStatus: string): Promise<[string, string, string]> {
    const { orderId, childOf } = await splitWhenPaid(buyer, [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 2 }], childStatus);
    return [orderId, childOf('KETTLE'), childOf('TEA')];
  }

  it('offers the admin no cancel and no address change on a split order one of whose children has shipped, and the refusal names that child', async () => {
    const [orderId, kettleChild, teaChild] = await paidAndSplit('ada', 'IN_FULFILLMENT');
    // before any parcel leaves, both are offered on the order as a whole
    expect((await actionsOf(orderId)).map((a) => a.action)).toEqual(expect.arrayContaining(['refund', 'change_address']));

    expect((await system.warehouseSim.request('POST', `/__admin/orders/${teaChild}/events`, { body: { event: 'SHIPPED' } })).body.callbackStatus).toBe(200);
    await system.waitForStatus(teaChild, 'SHIPPED');
    expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');

    // the tea has left: neither cancelling with a refund nor a new address can be carried out on the whole order now
    const offered = (await actionsOf(orderId)).map((a) => a.action);
    expect(offered).not.toContain('refund');
    expect(offered).not.toContain('change_address');
    // the kettle's child alone still takes both
    expect((await actionsOf(kettleChild)).map((a) => a.action)).toEqual(expect.arrayContaining(['refund', 'change_address']));

    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: admin, body: { reason: 'buyer called' } });
    expect([cancel.status, cancel.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect(cancel.body.detail).toBe(`Action 'cancel' by admin is not allowed while its child order ${teaChild} is SHIPPED`);
    const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: admin, body: { address: newAddress } });
    expect([moved.status, moved.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect(moved.body.detail).toBe(`Action 'change_address' by admin is not allowed while its child order ${teaChild} is SHIPPED`);
    // nothing moved
    expect((await system.order(kettleChild)).status).toBe('IN_FULFILLMENT');

    // the kettle's lines are still refunded on the order as a whole: its refunds route takes them from the kettle's child
    const lines = (await actionsOf(orderId)).find((a) => a.action === 'refund_lines');
    expect(lines?.href).toBe(`/v1/orders/${orderId}/refunds`);
    const refunded = await system.request('POST', lines!.href, { token: admin, body: { reason: 'buyer called', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect(refunded.status).toBe(202);
    await system.waitForStatus(kettleChild, 'REFUNDED');
    expect((await actionsOf(orderId)).map((a) => a.action)).not.toContain('refund_lines');
  });

  it("offers a merchant, on a split order holding another merchant's lines too, the cancel its route carries out on its own child, and nothing once that child is closed", async () => {
    await system.createSku({ skuId: 'MUG', priceCents: 900, merchantId: 'potter', channel: 'self', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
    const { orderId, childOf } = await splitWhenPaid('dee', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }], 'IN_FULFILLMENT');
    const shop = system.token('shop', 'merchant');
    const offeredToShop = async () => (await system.request('GET', `/v1/orders/${orderId}/actions`, { token: shop })).body.actions as Array<{ action: string; href: string }>;

    expect((await offeredToShop()).map((a) => a.action).sort()).toEqual(['refund', 'refund_lines']);
    const cancel = (await offeredToShop()).find((a) => a.action === 'refund')!;
    expect((await system.request('POST', cancel.href, { token: shop, body: { reason: 'cannot ship it' } })).status).toBe(200);
    await system.waitForStatus(childOf('KETTLE'), 'REFUNDED');
    // the potter's mug goes on
    expect((await system.order(childOf('MUG'))).status).toBe('IN_FULFILLMENT');
    expect(await offeredToShop()).toEqual([]);
    // each merchant reads the order's status from its own child: the shop its kettle refunded, the potter its mug in fulfilment
    const seenBy = async (token: string) => {
      const { status, merchantStatus } = (await system.request('GET', `/v1/orders/${orderId}`, { token })).body;
      return [status, merchantStatus];
    };
    expect(await seenBy(shop)).toEqual(['REFUNDED', 'Refunded']);
    expect(await seenBy(system.token('potter', 'merchant'))).toEqual(['IN_FULFILLMENT', 'In fulfilment']);
    expect(await seenBy(admin)).toEqual(['IN_FULFILLMENT', 'In fulfilment']);
  });

  it("offers a merchant the refund of its own child still in fulfilment while another merchant's child is under a return review, and the refund goes through", async () => {
    const { orderId, childOf } = await splitWhenPaid('eve', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }], 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${childOf('MUG')}/events`, { body: { event } });
    await system.waitForStatus(childOf('MUG'), 'DELIVERED');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('eve'), body: { reason: 'chipped', items: [{ skuId: 'MUG', qty: 1 }] } });
    expect(asked.status).toBe(202);
    // the whole order reads as its child under review; the shop's own child is still at its warehouse
    expect((await system.order(orderId)).status).toBe('RETURN_REQUESTED');
    const shop = system.token('shop', 'merchant');
    const answer = await system.request('GET', `/v1/orders/${orderId}/actions`, { token: shop });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const offered = answer.body.actions as Array<{ action: string; href: string }>;
    expect(offered.map((a) => a.action).sort()).toEqual(['refund', 'refund_lines']);
    const refund = offered.find((a) => a.action === 'refund')!;
    expect((await system.request('POST', refund.href, { token: shop, body: { reason: 'out of kettles' } })).status).toBe(200);
    await system.waitForStatus(childOf('KETTLE'), 'REFUNDED');
    expect((await system.order(childOf('MUG'))).status).toBe('RETURN_REQUESTED');
  });

  it("offers a merchant, on a split order holding another merchant's lines too, the decision on its own child's return, which the return's route takes, and none on the other merchant's", async () => {
    const { orderId, childOf } = await splitWhenPaid('gil', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }], 'IN_FULFILLMENT');
    for (const child of [childOf('KETTLE'), childOf('MUG')]) {
      for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${child}/events`, { body: { event } });
      await system.waitForStatus(child, 'DELIVERED');
    }
    const askReturn = async (skuId: string) => {
      const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('gil'), body: { reason: 'not as pictured', items: [{ skuId, qty: 1 }] } });
      expect(asked.status).toBe(202);
      return asked.body.returnId as string;
    };
    const [shop, potter] = [system.token('shop', 'merchant'), system.token('potter', 'merchant')];
    const offeredTo = async (token: string) => ((await system.request('GET', `/v1/orders/${orderId}/actions`, { token })).body.actions as Array<{ action: string; href: string }>).map((a) => `${a.action} ${a.href}`);

    const kettleReturn = await askReturn('KETTLE');
    const review = (returnId: string) => [`approve_return /v1/orders/${orderId}/returns/${returnId}/approve`, `refuse_return /v1/orders/${orderId}/returns/${returnId}/refuse`];
    expect(await offeredTo(shop)).toEqual(review(kettleReturn));
    // the potter's mug is delivered, no return of it asked: nothing for the potter, and the kettle's return is not its to decide
    expect(await offeredTo(potter)).toEqual([]);
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${kettleReturn}/approve`, { token: potter })).status).toBe(404);

    const mugReturn = await askReturn('MUG');
    expect(await offeredTo(potter)).toEqual(review(mugReturn));
    const approved = await system.request('POST', (await offeredTo(shop))[0]!.split(' ')[1]!, { token: shop, body: { reason: 'fair' } });
    expect([approved.status, approved.body.status]).toEqual([200, 'APPROVED']);
    expect((await system.order(childOf('KETTLE'))).status).toBe('RETURNING');
    // its close is the shop's only once the parcel's window has run (RETURN_PARCEL_WINDOW_MS after the approval)
    expect(await offeredTo(shop)).toEqual([]);
    expect(await offeredTo(potter)).toEqual(review(mugReturn));
  });

  it('offers the admin the refund of lines still in a warehouse while another child is under a return review, and carries it out on their child', async () => {
    const [orderId, kettleChild, teaChild] = await paidAndSplit('fay', 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${teaChild}/events`, { body: { event } });
    await system.waitForStatus(teaChild, 'DELIVERED');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('fay'), body: { reason: 'stale', items: [{ skuId: 'TEA', qty: 2 }] } });
    expect(asked.status).toBe(202);
    // the whole order reads as its child under review, which its table alone would take no refund of lines in
    expect((await system.order(orderId)).status).toBe('RETURN_REQUESTED');
    const offered = await actionsOf(orderId);
    expect(offered.find((a) => a.action === 'refund_lines')).toMatchObject({ to: 'RETURN_REQUESTED', href: `/v1/orders/${orderId}/refunds` });
    // the tea under review keeps the order from being cancelled whole
    expect(offered.map((a) => a.action)).not.toContain('refund');
    const refunded = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: admin, body: { reason: 'dented in the warehouse', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect(refunded.status).toBe(202);
    expect(refunded.body.refunds.map((refund: any) => refund.orderId)).toEqual([kettleChild]);
    await system.waitForStatus(kettleChild, 'REFUNDED');
    expect((await system.order(teaChild)).status).toBe('RETURN_REQUESTED');
  });

  it("refunds the buyer's whole split order, with the reason one merchant gave for refunding its own child before, the other merchant's child too", async () => {
    await system.createSku({ skuId: 'VASE', priceCents: 2_400, merchantId: 'glazier', channel: 'self', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
    const { orderId, childOf } = await splitWhenPaid('eve', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'VASE', qty: 1 }], 'IN_FULFILLMENT');

    // the glazier's refund of the order reaches its own child alone
    const glazier = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('glazier', 'merchant'), body: { reason: 'out of stock' } });
    expect(glazier.status).toBe(202);
    expect(glazier.body.refunds.map((refund: any) => refund.orderId)).toEqual([childOf('VASE')]);
    await system.waitForStatus(childOf('VASE'), 'REFUNDED');

    // the buyer's, in the same words, is no repeat of it: the kettle's child is refunded too
    const buyer = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('eve'), body: { reason: 'out of stock' } });
    expect(buyer.status).toBe(202);
    expect(buyer.body.replayed).toBe(false);
    expect(buyer.body.refunds.map((refund: any) => refund.orderId).sort()).toEqual([childOf('KETTLE'), childOf('VASE')].sort());
    await system.waitForStatus(childOf('KETTLE'), 'REFUNDED');
    expect((await system.waitForStatus(orderId, 'REFUNDED')).amounts.refundedCents).toBe((await system.order(orderId)).amounts.payableCents);
  });

  it("lists a split order and its children each with what ties them, so an admin's sum counts no payable twice", async () => {
    const [orderId, kettleChild, teaChild] = await paidAndSplit('cy', 'IN_FULFILLMENT');
    const listed = (await system.request('GET', '/v1/admin/orders?userId=cy', { token: admin })).body.items;
    const byId = new Map(listed.map((order: any) => [order.orderId, order]));
    expect(byId.get(orderId)).toMatchObject({ parentOrderId: null, subOrders: [kettleChild, teaChild].sort() });
    for (const child of [kettleChild, teaChild]) expect(byId.get(child)).toMatchObject({ parentOrderId: orderId, subOrders: [] });
    // the order's payable is its children's added up
    const payable = (id: string) => (byId.get(id) as any).amounts.payableCents as number;
    expect(payable(orderId)).toBe(payable(kettleChild) + payable(teaChild));
  });

  it('offers the admin a refund and an address change on a split order whose children wait for their warehouse, and carries each out on them', async () => {
    // the warehouse is down: the children stay PAID, and so does the order
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      const [orderId, kettleChild, teaChild] = await paidAndSplit('bo', 'PAID');
      expect((await system.order(orderId)).status).toBe('PAID');
      const offered = async (action: string) => (await actionsOf(orderId)).find((a) => a.action === action);

      const address = await offered('change_address');
      expect(address?.href).toBe(`/v1/orders/${orderId}/address`);
      expect((await system.request('PATCH', address!.href, { token: admin, body: { address: newAddress } })).status).toBe(200);
      for (const child of [kettleChild, teaChild]) expect((await system.order(child)).address).toEqual(newAddress);

      const refund = await offered('refund');
      expect(refund?.href).toBe(`/v1/orders/${orderId}/cancel`);
      expect((await system.request('POST', refund!.href, { token: admin, body: { reason: 'out of stock' } })).status).toBe(200);
      for (const child of [kettleChild, teaChild]) await system.waitForStatus(child, 'REFUNDED');
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
  });
});

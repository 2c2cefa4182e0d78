// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

/**
 * One shop's order of a kettle (wh-east) and a lamp (wh-west), split in two children, both
 * delivered and both sent back: a return on each child, decided each from its own child's status.
 */
describe("the decisions offered on the returns of a split order's children", () => {
  let system: OrderSystem;
  let shop: string;
  let admin: string;

  beforeAll(async () => {
    // the warehouse advances only when the test sends its events
    system = await startOrderSystem('split_order_return_decisions', { WAREHOUSE_SIM_STEP_MS: '0', AFTER_SALES_WINDOW_MS: '600000' });
    [shop, admin] = [system.token('shop', 'merchant'), system.token('ops', 'admin')];
    // one merchant, two warehouses: a paid order of both splits into two children, both the shop's
    await system.createSku({ skuId: 'KETTLE', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const offered = async (orderId: string, token: string) =>
    ((await system.request('GET', `/v1/orders/${orderId}/actions`, { token })).body.actions as Array<{ action: string; href: string }>).map((a) => `${a.action} ${a.href}`);

  it("are listed for every child holding a return to decide, whatever child the order's status follows: the second parcel's approve and refuse once the first's return was approved, and the first's close (for staff)", async () => {
    const { orderId } = await system.delivered('ann', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'LAMP', qty: 1 }]);
    const children = [...(await system.order(orderId)).subOrders].sort() as string[];
    expect(children).toHaveLength(2);
    // the buyer sends both back: one return per parcel (child), each to review
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('ann'), body: { reason: 'not as pictured', items: [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    const returnOf = (child: string) => asked.body.returns.find((r: any) => r.orderId === child).refundId as string;
    const [first, second] = [returnOf(children[0]!), returnOf(children[1]!)];
    const review = (returnId: string) => [`approve_return /v1/orders/${orderId}/returns/${returnId}/approve`, `refuse_return /v1/orders/${orderId}/returns/${returnId}/refuse`];
    // the shop approves the first parcel's return: its buyer sends it back
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${first}/approve`, { token: shop })).status).toBe(200);
    await system.waitForStatus(children[0]!, 'RETURNING');
    expect((await system.order(children[1]!)).status).toBe('RETURN_REQUESTED');
    const shown = { shop: await offered(orderId, shop), admin: await offered(orderId, admin) };
    expect(shown.shop).toEqual(expect.arrayContaining(review(second)));
    // the second parcel's return still waits for the shop's decision, which its route takes
    const refused = await system.request('POST', `/v1/orders/${orderId}/returns/${second}/refuse`, { token: shop, body: { reason: 'worn' } });
    expect({ ...shown, refused: [refused.status, refused.body.status] }).toEqual({
      // the first's close is the shop's only once its parcel's window has run (RETURN_PARCEL_WINDOW_MS after the approval)
      shop: expect.not.arrayContaining([`close_return /v1/orders/${orderId}/returns/${first}/close`]),
      admin: expect.arrayContaining([...review(second), `close_return /v1/orders/${orderId}/returns/${first}/close`]),
      refused: [200, 'REFUSED'],
    });
  });
});

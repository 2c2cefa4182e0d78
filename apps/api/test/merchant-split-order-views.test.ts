// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

/**
 * One order of two merchants' SKUs, split in three: the shop's kettle (wh-east) and tea
 * (wh-west), each a child of its own, and the weaver's rug (wh-north). The shop's view of the
 * order is its own part: the statuses its two children gave it, and when they last changed.
 */
describe("a merchant's view of an order split between it and another merchant", () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // the warehouse advances only when the test sends its events
    system = await startOrderSystem('merchant_split_order_views', { WAREHOUSE_SIM_STEP_MS: '0' });
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'TEA', priceCents: 1_250, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 8_000, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-north', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const view = async (orderId: string, token: string) => {
    const answer = await system.request('GET', `/v1/orders/${orderId}`, { token });
    expect(answer.status).toBe(200);
    return answer.body;
  };
  const shipped = async (orderId: string) => {
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } })).body.callbackStatus).toBe(200);
    await system.waitForStatus(orderId, 'SHIPPED');
  };

  /** A paid order of a kettle, a tea and a rug, split: [order, the shop's two children by id, the weaver's child]. */
  async function splitInThree(buyer: string): Promise<[string, [string, string], string]> {
    const { orderId, children } = await system.paidAndSplit(buyer, [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    const parts = await Promise.all(children.map((child) => system.order(child)));
    const shops = parts.filter((part) => part.items[0].merchantId === 'shop').map((part) => part.orderId as string);
    const rug = parts.find((part) => part.items[0].skuId === 'RUG').orderId as string;
    return [orderId, shops.sort() as [string, string], rug];
  }

  it("shows the shop its part leaving the warehouse when its second child ships in the same millisecond as its first, whichever child's id sorts first", async () => {
    const [orderId, [first, second], rug] = await splitInThree('ada');
    // the rug leaves first; then the shop's child of the larger id, then the one of the smaller id, which takes the whole order to SHIPPED
    await shipped(rug);
    await shipped(second);
    await shipped(first);
    expect((await system.order(orderId)).status).toBe('SHIPPED');
    // the two steps written in the same millisecond, as two warehouse callbacks may be
    const [last] = await system.env.db.selectFrom('order_history').select('at').where('order_id', '=', first).where('action', '=', 'ship').execute();
    await system.env.db.updateTable('order_history').set({ at: last!.at }).where('order_id', '=', second).where('action', '=', 'ship').execute();

    const asShop = await view(orderId, system.token('shop', 'merchant'));
    expect(asShop.status).toBe('SHIPPED');
    // the tea's and the kettle's child shipped: the shop's part went from IN_FULFILLMENT to SHIPPED with the last of them
    expect(asShop.history.at(-1)).toMatchObject({ action: 'ship', from: 'IN_FULFILLMENT', to: 'SHIPPED', detail: `derived from child order ${first}` });
    const afterSplit = asShop.history.slice(asShop.history.findIndex((step: any) => step.action === 'split') + 1);
    for (const [index, step] of afterSplit.entries()) if (index > 0) expect([step.action, step.from]).toEqual([step.action, afterSplit[index - 1].to]);
  });

  it("keeps the shop's updatedAt at its own children's last change when the weaver's child moves the whole order", async () => {
    const [orderId, shops, rug] = await splitInThree('bea');
    const asShop = async () => view(orderId, system.token('shop', 'merchant'));
    const ownLastChange = async () => (await Promise.all(shops.map((child) => system.order(child)))).map((child) => child.updatedAt as string).sort().at(-1);
    expect((await asShop()).updatedAt).toBe(await ownLastChange());

    // the weaver calls its rug off: its child is refunded, and the whole order reads REFUNDING meanwhile
    expect((await system.request('POST', `/v1/orders/${rug}/cancel`, { token: system.token('weaver', 'merchant'), body: { reason: 'out of stock' } })).status).toBe(200);
    await system.waitForRefund(rug);
    const whole = await system.order(orderId);
    expect(whole.updatedAt > (await ownLastChange())!).toBe(true);

    const seen = await asShop();
    expect([seen.status, seen.updatedAt]).toEqual(['IN_FULFILLMENT', await ownLastChange()]);
  });
  it("lists its children's parcels on the split order, each naming its child: every one to the buyer (whose list holds the split order alone), the shop's own to the shop", async () => {
    const [orderId, [first, second], rug] = await splitInThree('eva');
    await shipped(rug);
    const trackingOf = async (child: string) => (await system.order(child)).shipments[0].trackingNo as string | null;
    const parcel = async (child: string, status: string) => ({ orderId: child, warehouseId: (await system.order(child)).items[0].warehouseId, trackingNo: await trackingOf(child), status, shipmentId: expect.any(String), changeRefusedAt: null });

    const buyer = system.token('eva');
    const listed = (await system.request('GET', '/v1/orders', { token: buyer })).body.items;
    expect(listed.map((order: any) => order.orderId)).toEqual([orderId]);
    const everyParcel = [await parcel(first, 'ACCEPTED'), await parcel(second, 'ACCEPTED'), await parcel(rug, 'SHIPPED')];
    for (const shipments of [(await view(orderId, buyer)).shipments, listed[0].shipments]) {
      expect([...shipments].sort((a: any, b: any) => (a.orderId < b.orderId ? -1 : 1))).toEqual(everyParcel.sort((a, b) => (a.orderId < b.orderId ? -1 : 1)));
    }
    expect(everyParcel.find((shipment) => shipment.orderId === rug)?.trackingNo).not.toBeNull();
    // the shop sees the parcels of its own children, not the weaver's
    const asShop = await view(orderId, system.token('shop', 'merchant'));
    expect(asShop.shipments.map((shipment: any) => shipment.orderId).sort()).toEqual([first, second]);
  });
});

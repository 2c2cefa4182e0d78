// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childOrderId } from '../src/processors/child-order-id.js';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * One order of two merchants' SKUs: the shop's lamp (wh-east) and the weaver's rug (wh-west).
 * The buyer refunds the lamp with a reason of their own, before the split and after it. The
 * fulfillment queue is not served at first, so the order stays unsplit until a worker serving
 * it starts after the first refund.
 */
describe("a buyer's refund reason about one merchant's goods, in another merchant's view of the order", () => {
  let system: OrderSystem;
  let fulfilment: RunningWorkers | undefined;
  let admin: string;

  beforeAll(async () => {
    system = await startOrderSystem('merchant_history_privacy', { WORKER_QUEUES: 'orders,timers,payments' });
    admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 700, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await fulfilment?.close();
    await system?.close();
  });

  const view = async (orderId: string, token: string) => {
    const answer = await system.request('GET', `/v1/orders/${orderId}`, { token });
    expect(answer.status).toBe(200);
    return answer.body;
  };
  const details = (order: any): Array<string | null> => order.history.map((step: any) => step.detail);
  const mentions = (order: any, text: string) => details(order).some((detail) => detail?.includes(text) === true);

  it("shows the weaver none of the buyer's reasons for refunding the shop's lamps, before the split or after it, and the shop, the buyer and an admin all of them", async () => {
    const before = 'lamp flickers, smells of burnt plastic';
    const after = 'second lamp arrived with a cracked shade';
    const orderId = await system.checkout('ann', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ann'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'PAID');

    // 1 of the 2 lamps back while the order is unsplit: the step lands on the order itself
    const first = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ann'), body: { reason: before, items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect([first.status, first.body.refunds.map((r: any) => r.orderId)]).toEqual([202, [orderId]]);
    await system.waitForRefund(orderId);

    fulfilment = startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
    const children = (await waitFor(
      async () => {
        const order = await system.order(orderId);
        const subs = await Promise.all(order.subOrders.map((id: string) => system.order(id)));
        return subs.length === 2 && subs.every((s) => s.status === 'IN_FULFILLMENT') && subs;
      },
      { what: `order ${orderId} split in two children in fulfilment`, timeoutMs: 15_000 },
    )) as any[];
    const [lamp, rug] = ['LAMP', 'RUG'].map((sku) => children.find((c) => c.items[0].skuId === sku));

    // the other lamp back after the split, asked on the parent: the step lands on the lamp's child
    const second = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ann'), body: { reason: after, items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect([second.status, second.body.refunds.map((r: any) => r.orderId)]).toEqual([202, [lamp.orderId]]);
    await system.waitForStatus(lamp.orderId, 'REFUNDED', 20_000);
    const refundIds = [first.body.refunds[0].refundId, second.body.refunds[0].refundId] as string[];

    // the weaver sees the order, its rug and its child, the whole order's steps, and no word of the lamps' refunds: not
    // the refund's step before the split, nor the steps the order took from the lamp's child (its refund, when)
    const weaver = system.token('weaver', 'merchant');
    const asWeaver = await view(orderId, weaver);
    const whole = await view(orderId, admin);
    expect(asWeaver.items.map((i: any) => i.skuId)).toEqual(['RUG']);
    expect(asWeaver.subOrders).toEqual([rug.orderId]);
    const theShops = (step: any) => step.detail !== null && [lamp.orderId, ...refundIds].some((id) => step.detail.includes(id)) && !step.detail.includes(rug.orderId);
    expect(whole.history.filter(theShops).map((step: any) => step.action)).toEqual(expect.arrayContaining(['refund_lines', 'refund']));
    const wholeButTheShops = whole.history.filter((step: any) => !theShops(step)).map((step: any) => [step.action, step.to]);
    // the rug's hand-over is the weaver's own part's move, shown whether the order's step of it names the rug's child or,
    // the lamp's child handed over last, that one (not shown)
    if (!wholeButTheShops.some(([action]: string[]) => action === 'fulfil')) wholeButTheShops.splice(wholeButTheShops.findIndex(([action]: string[]) => action === 'split') + 1, 0, ['fulfil', 'IN_FULFILLMENT']);
    expect(asWeaver.history.map((step: any) => [step.action, step.to])).toEqual(wholeButTheShops);
    for (const text of [before, after, ...refundIds]) expect([text, mentions(asWeaver, text)]).toEqual([text, false]);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: weaver })).body.items).toEqual([]);
    expect(mentions(await view(rug.orderId, weaver), before)).toBe(false);
    expect((await system.request('GET', `/v1/orders/${lamp.orderId}`, { token: weaver })).status).toBe(404);

    // the shop, the buyer and an admin read the reason on the parent (before the split) and on the lamp's child (after it)
    const shop = system.token('shop', 'merchant');
    for (const token of [shop, system.token('ann'), admin]) {
      expect(mentions(await view(orderId, token), `refund ${refundIds[0]}: ${before}`)).toBe(true);
      expect(mentions(await view(lamp.orderId, token), `refund ${refundIds[1]}: ${after}`)).toBe(true);
    }
    // the shop's view of the parent hides only what names the weaver's part: its history as whole, but for those details
    const asShop = await view(orderId, shop);
    expect(asShop.items.map((i: any) => i.skuId)).toEqual(['LAMP']);
    expect(details(asShop).filter((detail) => detail !== null && !details(whole).includes(detail))).toEqual([]);
    expect(await view(orderId, system.token('ann'))).toEqual(whole);
  });

  it("shows a merchant the statuses its own part went through, never the return the buyer asked of the other merchant's goods that the whole order took", async () => {
    fulfilment ??= startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
    const orderId = await system.checkout('bea', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    // the split order takes its after-sales status from its first open child (by id): that child's merchant calls its part
    // off while the buyer returns the other merchant's goods
    const parts = [
      { child: childOrderId(orderId, 'self/shop/wh-east'), sku: 'LAMP', merchant: 'shop' },
      { child: childOrderId(orderId, 'third_party/weaver/wh-west'), sku: 'RUG', merchant: 'weaver' },
    ];
    const [calledOff, returned] = parts.sort((a, b) => (a.child < b.child ? -1 : 1)) as [(typeof parts)[number], (typeof parts)[number]];
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('bea'), body: { method: 'card' } })).status).toBe(202);
    for (const { child } of parts) await system.waitForStatus(child, 'IN_FULFILLMENT', 15_000);
    for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${returned.child}/events`, { body: { event } });
    await system.waitForStatus(returned.child, 'DELIVERED');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('bea'), body: { reason: 'not as pictured', items: [{ skuId: returned.sku, qty: 1 }] } });
    expect(asked.status).toBe(202);
    const merchant = system.token(calledOff.merchant, 'merchant');
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: merchant, body: { reason: 'out of stock' } })).status).toBe(200);
    // the whole order went from the other part's RETURN_REQUESTED to this part's REFUNDING
    expect((await view(orderId, admin)).history.at(-1)).toMatchObject({ from: 'RETURN_REQUESTED', to: 'REFUNDING', detail: `derived from child order ${calledOff.child}` });

    const asCaller = await view(orderId, merchant);
    expect(asCaller.status).toBe('REFUNDING');
    expect(asCaller.history.flatMap((step: any) => [step.from, step.to])).not.toContain('RETURN_REQUESTED');
    expect(asCaller.history.at(-1)).toMatchObject({ from: 'IN_FULFILLMENT', action: 'refund', to: 'REFUNDING', detail: `derived from child order ${calledOff.child}` });
    // and the other merchant its part under the return, nothing of the refund
    const asOther = await view(orderId, system.token(returned.merchant, 'merchant'));
    expect(asOther.status).toBe('RETURN_REQUESTED');
    expect(asOther.history.flatMap((step: any) => [step.from, step.to])).not.toContain('REFUNDING');
  });
});

/**
 * One order of the shop's kettle (wh-east) and the potter's mug (wh-west), split: each
 * merchant's view of it follows its own child, whichever child moved the whole order.
 */
describe("a merchant's own part of an order split between it and another merchant, in its view of the order", () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // a short after-sales window: the potter's mug completes while the shop's kettle is still on its way
    system = await startOrderSystem('merchant_history_own_part', { WAREHOUSE_SIM_STEP_MS: '0', AFTER_SALES_WINDOW_MS: '3000' });
    await system.createSku({ skuId: 'KETTLE', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 1_000, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const warehouse = async (child: string, event: string) =>
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${child}/events`, { body: { event } })).body.callbackStatus).toBe(200);

  it("shows each merchant the step that took its own part into fulfilment, though the other's child moved the whole order: its history ends in the status the view says", async () => {
    const { orderId } = await system.paidAndSplit('dee', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }]);
    const seen = async (merchant: string) => {
      const view = (await system.request('GET', `/v1/orders/${orderId}`, { token: system.token(merchant, 'merchant') })).body;
      return { status: view.status, lastStep: `${view.history.at(-1).from} -${view.history.at(-1).action}-> ${view.history.at(-1).to}` };
    };
    // both parcels are with their warehouses: each merchant's part went from PAID to IN_FULFILLMENT
    expect({ shop: await seen('shop'), potter: await seen('potter') }).toEqual({
      shop: { status: 'IN_FULFILLMENT', lastStep: 'PAID -fulfil-> IN_FULFILLMENT' },
      potter: { status: 'IN_FULFILLMENT', lastStep: 'PAID -fulfil-> IN_FULFILLMENT' },
    });
  });

  it("shows the potter nothing of the shop's returned kettle: no step of the kettle's refund being paid back, which closed the whole order", async () => {
    const { orderId, children } = await system.paidAndSplit('cy', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }]);
    const kettleChild = (await system.order(children[0]!)).items[0].skuId === 'KETTLE' ? children[0]! : children[1]!;
    const mugChild = children.find((child) => child !== kettleChild)!;
    for (const event of ['SHIPPED', 'DELIVERED']) await warehouse(mugChild, event);
    await system.waitForStatus(mugChild, 'COMPLETED', 20_000);
    // the kettle arrives, and the buyer sends it back at once
    for (const event of ['SHIPPED', 'DELIVERED']) await warehouse(kettleChild, event);
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('cy'), body: { reason: 'the lid does not close', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect(asked.status).toBe(202);
    const returnId = asked.body.returnId as string;
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: system.token('shop', 'merchant') })).status).toBe(200);
    await warehouse(kettleChild, 'RETURN_RECEIVED');
    await system.waitForStatus(kettleChild, 'RETURNED');
    await waitFor(async () => (await system.order(orderId)).status !== 'REFUNDING' && (await system.order(orderId)).status !== 'RETURNING', { what: 'the order closed once the return was paid back', timeoutMs: 20_000 });
    const seen = (await system.request('GET', `/v1/orders/${orderId}`, { token: system.token('potter', 'merchant') })).body;
    const admin = (await system.order(orderId)).history.map((h: any) => `${h.from} -${h.action}/${h.actor}-> ${h.to} ${h.detail}`);
    const steps = seen.history.map((h: any) => `${h.from} -${h.action}/${h.actor}-> ${h.to} ${h.detail}`);
    expect({ admin, steps }).toEqual({ admin, steps: steps.filter((step: string) => !step.includes(returnId) && !step.includes('refund_succeeded')) });
  });
});

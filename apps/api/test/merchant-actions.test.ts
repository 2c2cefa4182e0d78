// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WindowCounters } from '@orders/stock';
import { buyerAddress, createTestEnv, waitFor } from '@orders/testing';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authPlugin } from '../src/plugins/auth.js';
import { consolePlugin } from '../src/plugins/console.js';
import { problemDetailsPlugin } from '../src/plugins/problem-details.js';
import { rateLimitPlugin } from '../src/plugins/rate-limit.js';
import { securityHeadersPlugin } from '../src/plugins/security-headers.js';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

const step = (h: { from: string | null; action: string; to: string; actor: string }) => `${h.from} -${h.action}/${h.actor}-> ${h.to}`;

describe("a merchant's and an operator's actions, from the order type's state table", () => {
  let system: OrderSystem;
  let shop: string;
  let potter: string;
  let admin: string;
  const startedAt = new Date();

  async function importPaid(externalOrderId: string, userId: string): Promise<string> {
    const answer = await system.request('POST', '/v1/admin/orders/import', {
      token: admin,
      body: {
        channel: 'partner',
        orders: [
          {
            externalOrderId,
            userId,
            placedAt: new Date().toISOString(),
            status: 'PAID',
            items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_999 }],
            address: buyerAddress,
          },
        ],
      },
    });
    expect(answer.status).toBe(200);
    return answer.body.results[0].orderId;
  }

  beforeAll(async () => {
    // the warehouse advances only when the test sends its events
    system = await startOrderSystem('merchant_actions', { WAREHOUSE_SIM_STEP_MS: '0' });
    [shop, potter, admin] = [system.token('shop', 'merchant'), system.token('potter', 'merchant'), system.token('ops', 'admin')];
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 899, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('lets the merchant ship an imported order paid in its channel, and refuses shipping it twice with 409 ILLEGAL_TRANSITION', async () => {
    const orderId = await importPaid('ext-1', 'ivy');

    const allowed = await system.request('GET', `/v1/orders/${orderId}/actions`, { token: shop });
    expect(allowed.status).toBe(200);
    expect(allowed.body).toMatchObject({ orderId, type: 'imported', status: 'PAID', actor: 'merchant' });
    expect(allowed.body.actions).toEqual([
      { action: 'ship', to: 'SHIPPED', merchantLabel: 'Shipped', href: `/v1/orders/${orderId}/actions/ship` },
      { action: 'cancel', to: 'CANCELLED', merchantLabel: 'Cancelled', href: `/v1/orders/${orderId}/cancel` },
    ]);
    // the imported table lets an admin cancel, not ship: the warehouse or the merchant ships
    const asAdmin = await system.request('GET', `/v1/orders/${orderId}/actions`, { token: admin });
    expect(asAdmin.body.actions.map((a: any) => a.action)).toEqual(['cancel']);
    const adminShips = await system.request('POST', `/v1/orders/${orderId}/actions/ship`, { token: admin, body: {} });
    expect([adminShips.status, adminShips.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);

    const shipped = await system.request('POST', `/v1/orders/${orderId}/actions/ship`, { token: shop, body: { reason: 'handed to the courier' } });
    expect(shipped.status).toBe(200);
    expect(shipped.body).toMatchObject({ orderId, status: 'SHIPPED', merchantStatus: 'Shipped' });
    // its parcel with it, as the warehouse's SHIPPED would have moved it
    expect(shipped.body.shipments.map((shipment: any) => shipment.status)).toEqual(['SHIPPED']);
    expect(shipped.body.history.map(step).at(-1)).toBe('PAID -ship/merchant-> SHIPPED');

    const again = await system.request('POST', `/v1/orders/${orderId}/actions/ship`, { token: shop });
    expect(again.status).toBe(409);
    expect(again.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(again.body).toMatchObject({ code: 'ILLEGAL_TRANSITION', status: 409 });
    expect(again.body.detail).toMatch(/ship/);
    expect((await system.request('GET', `/v1/orders/${orderId}/actions`, { token: shop })).body.actions.map((a: any) => a.action)).toEqual(['deliver']);
    const delivered = await system.request('POST', `/v1/orders/${orderId}/actions/deliver`, { token: shop });
    expect([delivered.status, delivered.body.status, delivered.body.shipments.map((shipment: any) => shipment.status)]).toEqual([200, 'DELIVERED', ['DELIVERED']]);
  });

  it("answers 404 for an order without the merchant's SKUs and 403 for a buyer's token, so ids cannot be probed", async () => {
    const orderId = await importPaid('ext-2', 'ivy');
    for (const [method, url] of [['GET', `/v1/orders/${orderId}/actions`], ['POST', `/v1/orders/${orderId}/actions/ship`]] as const) {
      expect((await system.request(method, url, { token: potter })).status).toBe(404);
      expect((await system.request(method, url, { token: system.token('ivy') })).status).toBe(403);
    }
    expect((await system.request('GET', '/v1/orders/01ARZ3NDEKTSV4RRFFQ69G5FAV/actions', { token: admin })).status).toBe(404);
    expect((await system.request('POST', `/v1/orders/${orderId}/actions/Ship-It`, { token: shop })).body.code).toBe('VALIDATION_FAILED');
    expect((await system.order(orderId)).status).toBe('PAID');
  });

  it("refuses a merchant any action on an order holding another merchant's lines too (unpaid, cancelled), which the buyer or an admin acts on, and an import of one still to be shipped", async () => {
    const unpaid = await system.checkout('di', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }]);
    await system.waitForStatus(unpaid, 'PENDING_PAYMENT');
    expect((await system.request('GET', `/v1/orders/${unpaid}/actions`, { token: potter })).body.actions).toEqual([]);
    const cancelled = await system.request('POST', `/v1/orders/${unpaid}/cancel`, { token: potter, body: { reason: 'out of mugs' } });
    expect([cancelled.status, cancelled.body.code]).toEqual([403, 'FORBIDDEN']);
    const refunded = await system.request('POST', `/v1/orders/${unpaid}/refunds`, { token: potter, body: { reason: 'out of mugs' } });
    expect([refunded.status, refunded.body.code]).toEqual([403, 'FORBIDDEN']);
    expect((await system.order(unpaid)).status).toBe('PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${unpaid}/cancel`, { token: system.token('di'), body: { reason: 'changed my mind' } })).status).toBe(200);
    // cancelled by its buyer, it is no more the potter's to cancel than before
    const afterwards = await system.request('POST', `/v1/orders/${unpaid}/cancel`, { token: potter, body: { reason: 'out of mugs' } });
    expect([afterwards.status, afterwards.body.code]).toEqual([403, 'FORBIDDEN']);

    // imported orders are never split: one holding both merchants' goods could never be shipped, so it is refused
    const mixed = {
      externalOrderId: 'ext-mixed',
      userId: 'di',
      placedAt: new Date().toISOString(),
      status: 'PAID',
      items: [
        { skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_999 },
        { skuId: 'MUG', title: 'Mug', merchantId: 'potter', warehouseId: 'wh-west', qty: 1, unitPriceCents: 899 },
      ],
      address: buyerAddress,
    };
    const imported = await system.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'partner', orders: [mixed] } });
    expect([imported.status, imported.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(imported.body.detail).toMatch(/ext-mixed.*merchants potter, shop.*as an order of its own/);
  });

  it("shows a merchant only its own lines of an order holding another merchant's too, amounts summed over them, and of a split order only its own child and that child's refunds and returns", async () => {
    await system.createSku({ skuId: 'TEAPOT', priceCents: 5_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-north', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'BOWL', priceCents: 1_500, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-south', stock: 10, deduction: 'placement' });
    const always = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    const setUp: Array<[string, string, unknown]> = [
      ['PUT', '/v1/admin/warehouses/wh-north/shipping', { feeCents: 400 }],
      ['PUT', '/v1/admin/warehouses/wh-south/shipping', { feeCents: 300 }],
      ['POST', '/v1/admin/promotions', { promotionId: 'TEA-SET', title: '1,000 off a tea set', thresholdCents: 0, offCents: 1_000, skuIds: ['TEAPOT', 'BOWL'], ...always }],
    ];
    for (const [method, url, body] of setUp) expect((await system.request(method, url, { token: admin, body })).status).toBeLessThan(300);
    const lu = system.token('lu');
    // the promotion's 1,000 goes 5,000 : 3,000 over the lines, each warehouse's fee to its own line
    const orderId = await system.checkout('lu', [{ skuId: 'TEAPOT', qty: 1 }, { skuId: 'BOWL', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const seenBy = async (token: string) => (await system.request('GET', `/v1/orders/${orderId}`, { token })).body;
    const skus = (order: any) => order.items.map((item: any) => item.skuId);
    const teapot = { subtotalCents: 5_000, discountCents: 625, shippingCents: 400, payableCents: 4_775, refundedCents: 0 };
    const bowls = { subtotalCents: 3_000, discountCents: 375, shippingCents: 300, payableCents: 2_925, refundedCents: 0 };

    for (const token of [lu, admin]) {
      const whole = await seenBy(token);
      expect(skus(whole)).toEqual(['TEAPOT', 'BOWL']);
      expect(whole.amounts).toEqual({ subtotalCents: 8_000, discountCents: 1_000, shippingCents: 700, payableCents: 7_700, refundedCents: 0 });
    }
    for (const [token, sku, amounts, promotion] of [[shop, 'TEAPOT', teapot, 625], [potter, 'BOWL', bowls, 375]] as const) {
      const own = await seenBy(token);
      expect(skus(own)).toEqual([sku]);
      expect(own.amounts).toEqual(amounts);
      expect(own.amounts.payableCents).toBe(own.items.reduce((sum: number, item: any) => sum + item.payableCents, 0));
      expect(own.benefits.promotions).toEqual([{ promotionId: 'TEA-SET', discountCents: promotion }]);
      // the merchant's own list (unsplit orders and children) shows it the same way
      const listed = (await system.request('GET', '/v1/orders?limit=100', { token })).body.items.find((order: any) => order.orderId === orderId);
      expect([skus(listed), listed.amounts]).toEqual([[sku], amounts]);
    }
    const searched = (await system.request('GET', '/v1/admin/orders?userId=lu', { token: admin })).body.items;
    expect(searched.map(skus)).toEqual([['TEAPOT', 'BOWL']]);

    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: lu, body: { method: 'card' } })).status).toBe(202);
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the split' })) as string[];
    for (const child of children) await system.waitForStatus(child, 'IN_FULFILLMENT');
    const childOf = async (sku: string) => (await Promise.all(children.map(async (child) => ((await system.order(child)).items[0].skuId === sku ? child : null)))).find((child) => child !== null)!;
    const [teapotChild, bowlChild] = [await childOf('TEAPOT'), await childOf('BOWL')];
    const buyerSees = await seenBy(lu);
    expect(buyerSees.subOrders.toSorted()).toEqual(children.toSorted());
    expect(buyerSees.payments).toEqual([expect.objectContaining({ amountCents: 7_700, status: 'SUCCEEDED' })]);
    for (const [token, sku, amounts, own, other] of [[shop, 'TEAPOT', teapot, teapotChild, bowlChild], [potter, 'BOWL', bowls, bowlChild, teapotChild]] as const) {
      const parent = await seenBy(token);
      expect([skus(parent), parent.amounts, parent.subOrders]).toEqual([[sku], amounts, [own]]);
      // paid, by what and when; not how much the whole order took
      expect([parent.payment?.method, parent.payments]).toEqual(['card', []]);
      // every step of the whole order, none naming the other merchant's child or SKU; the steps the order took
      // from the other merchant's child (its hand-over, its refund) are that merchant's
      const othersChildSteps = buyerSees.history.filter((h: any) => h.detail?.includes(other) && !h.detail.includes(own));
      // and a move of the merchant's own part the whole order took no step of its own for (it moved with the other's child) is a step of its own
      const ownPartMoves = parent.history.filter((h: any) => h.detail === `derived from child order ${own}` && !buyerSees.history.some((b: any) => b.at === h.at && b.detail === h.detail));
      expect(othersChildSteps.length + parent.history.length - ownPartMoves.length).toBe(buyerSees.history.length);
      expect(parent.history.filter((h: any) => !ownPartMoves.includes(h)).map(step)).toEqual(buyerSees.history.filter((h: any) => !othersChildSteps.includes(h)).map(step));
      expect(parent.history.at(-1)).toMatchObject({ action: 'fulfil', to: 'IN_FULFILLMENT' });
      expect(JSON.stringify(parent.history)).not.toContain(other);
      expect(JSON.stringify(parent)).not.toContain(sku === 'TEAPOT' ? 'BOWL' : 'TEAPOT');
      expect((await system.request('GET', '/v1/orders?limit=100', { token })).body.items.map((order: any) => order.orderId)).toEqual(expect.arrayContaining([own]));
    }

    // the shop cancels its own child: the parent it answers with still holds the shop's part alone
    const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: shop, body: { reason: 'teapot cracked in store' } });
    expect(cancelled.status).toBe(200);
    expect([skus(cancelled.body), cancelled.body.subOrders, cancelled.body.amounts.refundedCents]).toEqual([['TEAPOT'], [teapotChild], 4_775]);
    expect((await seenBy(potter)).amounts.refundedCents).toBe(0);
    expect((await seenBy(lu)).amounts.refundedCents).toBe(4_775);

    // the buyer refunds 1 of the potter's 2 bowls (their 2,625 of goods: 1,312 for the first)
    const bowlRefund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: lu, body: { reason: 'one bowl is enough', items: [{ skuId: 'BOWL', qty: 1 }] } });
    expect(bowlRefund.status).toBe(202);
    const refundsSeenBy = async (token: string, of = orderId) => {
      const answer = await system.request('GET', `/v1/orders/${of}/refunds`, { token });
      expect(answer.status).toBe(200);
      return answer.body.items;
    };
    const refunded = (refunds: any[]) => refunds.map((refund) => [refund.kind, refund.orderId, refund.items.map((item: any) => `${item.skuId} x${item.qty}`), refund.amountCents]);
    const teapotCancelled = ['refund', teapotChild, ['TEAPOT x1'], 4_775];
    const bowlRefunded = ['refund', bowlChild, ['BOWL x1'], 1_312];
    for (const token of [lu, admin]) expect(refunded(await refundsSeenBy(token))).toEqual([teapotCancelled, bowlRefunded]);
    // each merchant sees the refunds of its own child alone, on the parent as on the child
    expect(refunded(await refundsSeenBy(shop))).toEqual([teapotCancelled]);
    expect(refunded(await refundsSeenBy(potter))).toEqual([bowlRefunded]);
    expect(refunded(await refundsSeenBy(potter, bowlChild))).toEqual([bowlRefunded]);
    expect(JSON.stringify(await refundsSeenBy(shop))).not.toMatch(new RegExp(`BOWL|${bowlChild}`));
    expect(JSON.stringify(await refundsSeenBy(potter))).not.toMatch(new RegExp(`TEAPOT|${teapotChild}`));
    expect((await system.request('GET', `/v1/orders/${bowlChild}/refunds`, { token: shop })).status).toBe(404);

    // the other bowl arrives, and the buyer asks to return it: a return for the potter to review, not for the shop
    await system.waitForStatus(bowlChild, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${bowlChild}/events`, { body: { event } });
    await system.waitForStatus(bowlChild, 'DELIVERED');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: lu, body: { reason: 'chipped', items: [{ skuId: 'BOWL', qty: 1 }] } });
    expect(asked.status).toBe(202);
    // the last bowl brings the child's every unit back: the rest of the goods, 1,313, and its parcel's 300
    const bowlReturned = ['return', bowlChild, ['BOWL x1'], 1_613];
    expect(refunded(await refundsSeenBy(lu))).toEqual([teapotCancelled, bowlRefunded, bowlReturned]);
    expect(refunded(await refundsSeenBy(shop))).toEqual([teapotCancelled]);
    expect(refunded(await refundsSeenBy(potter))).toEqual([bowlRefunded, bowlReturned]);
    const toReview = async (token: string) => (await system.request('GET', '/v1/orders?status=RETURN_REQUESTED&limit=100', { token })).body.items.map((order: any) => order.orderId);
    expect(await toReview(potter)).toEqual([bowlChild]);
    expect(await toReview(shop)).toEqual([]);
  });

  it("shows a merchant only its own lines of a refund opened before the order split, and what they give back", async () => {
    const jo = system.token('jo');
    const orderId = await system.checkout('jo', [{ skuId: 'KETTLE', qty: 2 }, { skuId: 'MUG', qty: 3 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const { queues } = system.workers.deps;
    // the split waits behind a paused fulfilment queue: the buyer refunds while the order holds both merchants' lines
    await queues.fulfillment.pause();
    try {
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: jo, body: { method: 'card' } })).status).toBe(202);
      await system.waitForStatus(orderId, 'PAID');
      const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: jo, body: { reason: 'one of each is enough', items: [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }] } });
      expect(refund.status).toBe(202);
      const seenBy = async (token: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token })).body.items;
      const refunded = (refunds: any[]) => refunds.map((r) => [r.items.map((item: any) => `${item.skuId} x${item.qty}: ${item.cents}`), r.amountCents, r.parts.map((part: any) => part.amountCents)]);
      // one kettle of 3,999 and one mug of 899, drawn from the order's one payment
      for (const token of [jo, admin]) expect(refunded(await seenBy(token))).toEqual([[['KETTLE x1: 3999', 'MUG x1: 899'], 4_898, [4_898]]]);
      // each merchant its own line and what it gives back; not the payment's whole share
      expect(refunded(await seenBy(shop))).toEqual([[['KETTLE x1: 3999'], 3_999, []]]);
      expect(refunded(await seenBy(potter))).toEqual([[['MUG x1: 899'], 899, []]]);
      expect((await seenBy(shop))[0]).toMatchObject({ refundId: refund.body.refundId, kind: 'refund', reason: 'one of each is enough' });
    } finally {
      await queues.fulfillment.resume();
    }
  });

  it("does not list to a merchant a presale's deposit given back whole, of an order holding another merchant's lines too, and counts the deposit on the lines by what each pays: each merchant's view says its share went back", async () => {
    await system.createSku({ skuId: 'PRE-LAMP', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement', orderType: 'presale' });
    await system.createSku({ skuId: 'PRE-VASE', priceCents: 5_000, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 5, deduction: 'placement', orderType: 'presale' });
    const orderId = await system.checkout('pia', [{ skuId: 'PRE-LAMP', qty: 1 }, { skuId: 'PRE-VASE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('pia'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    const calledOff = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: admin, body: { reason: 'the lamp maker went bust' } });
    expect(calledOff.status).toBe(202);
    const seenBy = async (token: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token })).body.items;
    // 20 % of 15,000: the deposit paid for both merchants' lines, naming none of them
    for (const token of [system.token('pia'), admin]) expect((await seenBy(token)).map((r: any) => [r.items, r.amountCents])).toEqual([[[], 3_000]]);
    for (const token of [shop, potter]) expect(await seenBy(token)).toEqual([]);

    // the deposit's 3,000 counts on the lines as on the order, by what each pays: the lamp 10,000, the vase 5,000
    const refunded = await system.waitForStatus(orderId, 'REFUNDED');
    expect([refunded.amounts.refundedCents, refunded.items.map((i: any) => [i.skuId, i.refundedQty, i.refundedCents])]).toEqual([
      3_000,
      [
        ['PRE-LAMP', 0, 2_000],
        ['PRE-VASE', 0, 1_000],
      ],
    ]);
    const amountsSeenBy = async (token: string) => (await system.request('GET', `/v1/orders/${orderId}`, { token })).body.amounts;
    expect(await amountsSeenBy(shop)).toMatchObject({ payableCents: 10_000, refundedCents: 2_000 });
    expect(await amountsSeenBy(potter)).toMatchObject({ payableCents: 5_000, refundedCents: 1_000 });
    // nothing is left to give back: the deposit was all the order paid
    for (const body of [{ reason: 'again' }, { reason: 'the lamp', items: [{ skuId: 'PRE-LAMP', qty: 1 }] }]) {
      expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: admin, body })).body.code).toBe('ILLEGAL_TRANSITION');
    }
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: admin, body: { reason: 'again' } })).body.code).toBe('ILLEGAL_TRANSITION');
    expect((await system.order(orderId)).amounts.refundedCents).toBe(3_000);
  });

  it("lists to a merchant a presale's deposit given back whole, of an order of its own lines alone: the refund names no line, and is all its own", async () => {
    await system.createSku({ skuId: 'PRE-DESK', priceCents: 20_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement', orderType: 'presale' });
    const orderId = await system.checkout('pat', [{ skuId: 'PRE-DESK', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('pat'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: admin, body: { reason: 'the desk maker went bust' } })).status).toBe(202);
    const seenBy = async (token: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token })).body.items;
    // 20 % of 20,000, the one payment's whole share
    for (const token of [system.token('pat'), admin, shop]) expect((await seenBy(token)).map((r: any) => [r.items, r.amountCents, r.parts.map((part: any) => part.amountCents)])).toEqual([[[], 4_000, [4_000]]]);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: potter })).status).toBe(404);
  });

  it('lists cancelling an unpaid order with the cancel route of the reverse flows, which also give coupons back, and does not fire it itself', async () => {
    const orderId = await system.checkout('bo', [{ skuId: 'KETTLE', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('GET', `/v1/orders/${orderId}/actions`, { token: shop })).body.actions).toEqual([
      { action: 'cancel', to: 'CANCELLED', merchantLabel: 'Cancelled', href: `/v1/orders/${orderId}/cancel` },
    ]);
    const fired = await system.request('POST', `/v1/orders/${orderId}/actions/cancel`, { token: shop, body: { reason: 'buyer phoned' } });
    expect([fired.status, fired.body.code]).toEqual([409, 'CONFLICT']);
    expect(fired.body.detail).toContain(`POST /v1/orders/${orderId}/cancel`);
    expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/actions/constructor`, { token: shop })).body.code).toBe('ILLEGAL_TRANSITION');
  });

  it('offers a refund (by the cancel route) while the order is being fulfilled, and approve or refuse once the buyer asks to return it; refusing brings it back to DELIVERED', async () => {
    const orderId = await system.checkout('cy', [{ skuId: 'MUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('cy'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const refunds = (await system.request('GET', `/v1/orders/${orderId}/actions`, { token: potter })).body.actions;
    expect(refunds).toContainEqual({ action: 'refund', to: 'REFUNDING', merchantLabel: 'Refunding', href: `/v1/orders/${orderId}/cancel` });

    for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } });
    await system.waitForStatus(orderId, 'DELIVERED');
    const requested = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('cy'), body: { reason: 'too small', items: [{ skuId: 'MUG', qty: 1 }] } });
    expect(requested.status).toBe(202);
    const { returnId } = requested.body as { returnId: string };

    // approving or refusing also settles the return record, so it goes through the return's own route
    const allowed = await system.request('GET', `/v1/orders/${orderId}/actions`, { token: potter });
    expect(allowed.body.actions).toEqual([
      { action: 'approve_return', to: 'RETURNING', merchantLabel: 'Return in transit', href: `/v1/orders/${orderId}/returns/${returnId}/approve` },
      { action: 'refuse_return', to: 'DELIVERED', merchantLabel: 'Delivered', href: `/v1/orders/${orderId}/returns/${returnId}/refuse` },
    ]);
    expect((await system.request('POST', `/v1/orders/${orderId}/actions/refuse_return`, { token: potter, body: { reason: 'used' } })).body.code).toBe('CONFLICT');
    const refused = await system.request('POST', allowed.body.actions[1].href, { token: potter });
    expect([refused.status, refused.body.status]).toEqual([200, 'REFUSED']);
    const order = await system.order(orderId);
    expect(order.status).toBe('DELIVERED');
    expect(order.history.map(step).slice(-2)).toEqual(['DELIVERED -request_return/buyer-> RETURN_REQUESTED', 'RETURN_REQUESTED -refuse_return/merchant-> DELIVERED']);
  });

  it('closes an approved return whose parcel never came back: DELIVERED again, nothing paid back nor restocked, and the parcel turning up after all changes nothing', async () => {
    const orderId = await system.checkout('cyd', [{ skuId: 'MUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('cyd'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } });
    await system.waitForStatus(orderId, 'DELIVERED');
    const { returnId } = (await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('cyd'), body: { reason: 'wrong colour', items: [{ skuId: 'MUG', qty: 1 }] } })).body;
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: potter })).body.status).toBe('APPROVED');
    const stockBefore = await system.stockOf('MUG');

    // the merchant closes it no sooner than the system would (RETURN_PARCEL_WINDOW_MS after the approval): staff may at once
    expect((await system.request('GET', `/v1/orders/${orderId}/actions`, { token: potter })).body.actions).toEqual([]);
    const tooEarly = await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/close`, { token: potter });
    expect([tooEarly.status, tooEarly.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    const allowed = (await system.request('GET', `/v1/orders/${orderId}/actions`, { token: admin })).body.actions;
    expect(allowed).toEqual([{ action: 'close_return', to: 'DELIVERED', merchantLabel: 'Delivered', href: `/v1/orders/${orderId}/returns/${returnId}/close` }]);
    expect((await system.request('POST', `/v1/orders/${orderId}/actions/close_return`, { token: admin })).body.code).toBe('CONFLICT');
    // the buyer cannot close it, nor can a refusal come now
    expect((await system.request('POST', allowed[0].href, { token: system.token('cyd') })).status).toBe(403);
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/refuse`, { token: potter })).body.code).toBe('ILLEGAL_TRANSITION');
    const closed = await system.request('POST', allowed[0].href, { token: admin, body: { reason: 'the carrier lost the parcel' } });
    expect([closed.status, closed.body.status]).toEqual([200, 'CLOSED']);
    // asked again, by the merchant too: the return as it stands
    expect((await system.request('POST', allowed[0].href, { token: potter })).body.status).toBe('CLOSED');
    expect((await system.request('GET', '/metrics')).body).toMatch(/^order_returns_total\{[^}]*stage="closed"[^}]*\} 1$/m);
    const order = await system.order(orderId);
    expect([order.status, order.amounts.refundedCents]).toEqual(['DELIVERED', 0]);
    expect(order.history.map(step).at(-1)).toBe('RETURNING -close_return/admin-> DELIVERED');
    expect(order.history.at(-1).detail).toBe(`return ${returnId} closed: the carrier lost the parcel`);

    const late = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'RETURN_RECEIVED', returnId } });
    expect(late.body.callbackStatus).toBe(200);
    // and one naming no return: no other is open, so it is the closed one's too; both counted for staff to settle
    expect((await system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', at: new Date().toISOString() })).body.changed).toBe(false);
    expect((await system.request('GET', '/metrics')).body).toMatch(/^return_parcels_after_close_total(\{[^}]*\})? 2$/m);
    const after = await system.order(orderId);
    expect([after.status, after.amounts.refundedCents, after.history.length]).toEqual(['DELIVERED', 0, order.history.length]);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: potter })).body.items.map((r: any) => r.status)).toEqual(['CLOSED']);
    expect(await system.stockOf('MUG')).toEqual(stockBefore);
    // the buyer, whose parcel is lost, asks again the same way (no Idempotency-Key): a new return, not the closed one answered again
    const again = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('cyd'), body: { reason: 'wrong colour', items: [{ skuId: 'MUG', qty: 1 }] } });
    expect([again.status, again.body.status, again.body.replayed, again.body.returnId === returnId]).toEqual([202, 'REQUESTED', false, false]);
  });

  it('refunds one more unit with the same reason under a new Idempotency-Key, answers the same refund (replayed) for the same key, and 422 IDEMPOTENCY_CONFLICT for the same key with another body', async () => {
    const orderId = await system.checkout('kim', [{ skuId: 'KETTLE', qty: 3 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('kim'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const oneUnit = { reason: 'Refund of 1 unit', items: [{ skuId: 'KETTLE', qty: 1 }] };
    const refund = (key: string | null, body: object = oneUnit) =>
      system.request('POST', `/v1/orders/${orderId}/refunds`, { token: admin, body, headers: key === null ? {} : { 'idempotency-key': key } });

    const first = await refund('console-1');
    expect([first.status, first.body.replayed]).toEqual([202, false]);
    const retried = await refund('console-1');
    expect([retried.status, retried.body.refundId, retried.body.replayed]).toEqual([202, first.body.refundId, true]);
    const second = await refund('console-2');
    expect([second.status, second.body.replayed]).toEqual([202, false]);
    expect(second.body.refundId).not.toBe(first.body.refundId);
    expect((await system.order(orderId)).items[0].refundedQty).toBe(2);

    const conflict = await refund('console-1', { reason: 'Refund of 1 unit', items: [{ skuId: 'KETTLE', qty: 2 }] });
    expect([conflict.status, conflict.body.code]).toEqual([422, 'IDEMPOTENCY_CONFLICT']);
    // without the header, as before: the reason and the units name the refund
    const unkeyed = await refund(null);
    expect([unkeyed.status, unkeyed.body.replayed]).toEqual([202, false]);
    expect((await refund(null)).body).toMatchObject({ refundId: unkeyed.body.refundId, replayed: true });
    expect((await system.order(orderId)).items[0].refundedQty).toBe(3);
    const documented = (await system.request('GET', '/docs/json')).body.paths['/v1/orders/{orderId}/refunds'].post;
    expect(documented.description).toContain('Idempotency-Key');
    expect(documented.parameters.map((p: any) => p.name)).toContain('idempotency-key');
  });

  it("offers approving a split order's return on the order itself, takes a reason into the history, and lists the return once (on its child) among the leaves", async () => {
    const placed = await system.request('POST', '/v1/orders', { token: system.token('sam'), headers: { 'idempotency-key': 'sam-split' }, body: { items: [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 2 }], address: buyerAddress } });
    const parent = placed.body.orderId as string;
    await system.waitForStatus(parent, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${parent}/pay`, { token: system.token('sam'), body: { method: 'card' } });
    const children: string[] = (await waitFor(async () => (await system.order(parent)).subOrders.length === 2 && (await system.order(parent)).subOrders, { what: 'the split' })) as string[];
    for (const child of children) {
      await system.waitForStatus(child, 'IN_FULFILLMENT');
      for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${child}/events`, { body: { event } });
      await system.waitForStatus(child, 'DELIVERED');
    }
    const asked = await system.request('POST', `/v1/orders/${parent}/returns`, { token: system.token('sam'), body: { reason: 'chipped', items: [{ skuId: 'MUG', qty: 1 }] } });
    expect(asked.status).toBe(202);
    const mugChild = asked.body.returns[0].orderId as string;

    const approve = (await system.request('GET', `/v1/orders/${parent}/actions`, { token: admin })).body.actions.find((a: any) => a.action === 'approve_return');
    expect(approve.href).toBe(`/v1/orders/${parent}/returns/${asked.body.returnId}/approve`);
    const waiting = await system.request('GET', `/v1/admin/orders?status=RETURN_REQUESTED&leaf=true&userId=sam`, { token: admin });
    expect(waiting.body.items.map((o: any) => o.orderId)).toEqual([mugChild]);

    const approved = await system.request('POST', approve.href, { token: admin, body: { reason: 'photo shows the chip' } });
    expect([approved.status, approved.body.status]).toEqual([200, 'APPROVED']);
    const history = (await system.order(mugChild)).history;
    expect(history.at(-1)).toMatchObject({ action: 'approve_return', to: 'RETURNING', detail: `return ${asked.body.returnId} approved: photo shows the chip` });
    expect(history[0]).toHaveProperty('detail');
  });

  it('finds orders by buyer, SKU and the day they were placed in the admin search', async () => {
    const orderId = await importPaid('ext-3', 'dee');
    const search = async (params: string) => (await system.request('GET', `/v1/admin/orders?${params}`, { token: admin })).body;
    const from = encodeURIComponent(new Date(startedAt.getTime() - 60_000).toISOString());
    const until = encodeURIComponent(new Date(Date.now() + 60_000).toISOString());
    expect((await search(`userId=dee&skuId=KETTLE&createdFrom=${from}&createdTo=${until}`)).items.map((o: any) => o.orderId)).toEqual([orderId]);
    expect((await search(`userId=dee&createdTo=${from}`)).items).toEqual([]);
    expect((await search(`userId=dee&createdFrom=${until}`)).items).toEqual([]);
    expect((await search('createdFrom=yesterday')).code).toBe('VALIDATION_FAILED');
    // the bounds swapped: refused, not an empty page that reads as "no orders then"
    const swapped = await search(`userId=dee&createdFrom=${until}&createdTo=${from}`);
    expect([swapped.code, swapped.detail]).toEqual(['VALIDATION_FAILED', expect.stringMatching(/^createdFrom .* is after createdTo /)]);
    const documented = (await system.request('GET', '/docs/json')).body.paths['/v1/admin/orders'].get.parameters.map((p: any) => p.name);
    expect(documented).toEqual(expect.arrayContaining(['userId', 'skuId', 'createdFrom', 'createdTo']));
  });

  it('shows the job counts of every queue to merchants and admins, not to buyers', async () => {
    const answer = await system.request('GET', '/v1/admin/queues', { token: shop });
    expect(answer.status).toBe(200);
    const orders = answer.body.queues.find((q: any) => q.name === 'orders');
    expect(orders).toMatchObject({ waiting: expect.any(Number), active: expect.any(Number), delayed: expect.any(Number), failed: expect.any(Number), oldestWaitingSeconds: expect.any(Number) });
    expect((await system.request('GET', '/v1/admin/queues', { token: system.token('ivy') })).status).toBe(403);
  });
});

describe('the console without a build', () => {
  it('answers /console with a 503 problem saying to run npm run build', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'console-'));
    const env = await createTestEnv('console_unbuilt');
    const app = Fastify({ logger: false });
    try {
      await app.register(authPlugin, { signing: env.config, tokenCacheSize: 0, maxLifetimeMs: env.config.AUTH_JWT_MAX_LIFETIME_MS, clockToleranceMs: env.config.AUTH_CLOCK_TOLERANCE_MS });
      await app.register(rateLimitPlugin, { counters: new WindowCounters(env.redis), keyPrefix: env.config.REDIS_KEY_PREFIX, slotGroupOf: () => '{g0}', windowMs: 60_000, perUser: 100, perIp: 100, onUnchecked: () => {}, processes: 1 });
      await app.register(problemDetailsPlugin);
      await app.register(consolePlugin, { root: empty, currency: 'USD', refundConfirmationGiveUpMs: 86_400_000, paymentConfirmationGiveUpMs: 86_400_000 });
      for (const url of ['/console', '/console/orders/01ARZ3NDEKTSV4RRFFQ69G5FAV']) {
        const answer = await app.inject({ method: 'GET', url });
        expect(answer.statusCode).toBe(503);
        expect(answer.headers['content-type']).toMatch(/application\/problem\+json/);
        expect(answer.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE', detail: expect.stringMatching(/npm run build/) });
      }
    } finally {
      await app.close();
      await env.cleanup();
      await rm(empty, { recursive: true });
    }
  });
});

describe("the console's files", () => {
  it('answers index.html unhashed and uncached by any name, 404 for a missing asset, and a page policy that does not upgrade plain http', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'console-'));
    const env = await createTestEnv('console_files');
    const app = Fastify({ logger: false });
    try {
      await writeFile(path.join(root, 'index.html'), '<!doctype html><html><head><script type="module" src="/console/assets/index-NEW.js"></script></head></html>');
      await mkdir(path.join(root, 'assets'));
      await writeFile(path.join(root, 'assets', 'index-NEW.js'), 'console.log(1)');
      await app.register(authPlugin, { signing: env.config, tokenCacheSize: 0, maxLifetimeMs: env.config.AUTH_JWT_MAX_LIFETIME_MS, clockToleranceMs: env.config.AUTH_CLOCK_TOLERANCE_MS });
      await app.register(rateLimitPlugin, { counters: new WindowCounters(env.redis), keyPrefix: env.config.REDIS_KEY_PREFIX, slotGroupOf: () => '{g0}', windowMs: 60_000, perUser: 100, perIp: 100, onUnchecked: () => {}, processes: 1 });
      await app.register(problemDetailsPlugin);
      await app.register(securityHeadersPlugin);
      await app.register(consolePlugin, { root, currency: 'JPY', refundConfirmationGiveUpMs: 3_600_000, paymentConfirmationGiveUpMs: 7_200_000 });
      const get = (url: string) => app.inject({ method: 'GET', url });

      for (const url of ['/console', '/console/', '/console/index.html', '/console/orders/01ARZ3NDEKTSV4RRFFQ69G5FAV']) {
        const page = await get(url);
        expect([page.statusCode, page.headers['content-type'], page.headers['cache-control']], url).toEqual([200, expect.stringMatching(/^text\/html/), 'no-cache']);
        // over http on a shop's network the page's own scripts must load from where the page came
        expect(page.headers['content-security-policy'], url).toMatch(/script-src 'self'/);
        expect(page.headers['content-security-policy'], url).not.toMatch(/upgrade-insecure-requests/);
        // the shop's currency, which the console shows amounts in, and when it offers to ask again for a refund never confirmed
        expect(page.body, url).toContain('<meta name="shop-currency" content="JPY" /><meta name="refund-confirmation-give-up-ms" content="3600000" /><meta name="payment-confirmation-give-up-ms" content="7200000" /></head>');
      }
      const asset = await get('/console/assets/index-NEW.js');
      expect([asset.statusCode, asset.headers['cache-control']]).toEqual([200, 'public, max-age=31536000, immutable']);
      // a page of the build before asks for its own asset: a 404, not index.html as javascript
      for (const url of ['/console/assets/index-OLD.js', '/console/favicon.ico']) {
        const missing = await get(url);
        expect([missing.statusCode, missing.headers['content-type']], url).toEqual([404, expect.stringMatching(/^application\/problem\+json/)]);
      }
    } finally {
      await app.close();
      await env.cleanup();
      await rm(root, { recursive: true });
    }
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('refunds, returns and cancellations over the parts of a split order', () => {
  let system: OrderSystem;
  let admin: string;

  beforeAll(async () => {
    system = await startOrderSystem('split_order_refunds', { AFTER_SALES_WINDOW_MS: '60000' });
    admin = system.token('ops', 'admin');
    // two merchants, two warehouses: an order of both splits into two children
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 700, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 100, deduction: 'placement' });
    const window = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    const coupon = { code: 'WELCOME', kind: 'percent', percentOff: 10, minSpendCents: 1_000, perBuyerLimit: 1, ...window };
    expect((await system.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
  });
  afterAll(async () => system?.close());

  const stock = (skuId: string) => system.stockOf(skuId);
  const refundsOf = async (orderId: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: admin })).body.items;
  const warehouse = (orderId: string, event: string) => system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } });
  /** A paid order of both SKUs, split in two children in fulfilment: [lamp child, rug child]. */
  const paidAndSplit = async (buyer: string, items: Array<{ skuId: string; qty: number }>, couponCode?: string) => {
    const placed = await system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `${buyer}-1` }, body: { items, address: buyerAddress, ...(couponCode ? { couponCode } : {}) } });
    expect(placed.status).toBe(202);
    const orderId = placed.body.orderId as string;
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    const children = (await waitFor(
      async () => {
        const order = await system.order(orderId);
        if (order.subOrders.length !== 2) return false;
        const subs = await Promise.all(order.subOrders.map((id: string) => system.order(id)));
        return subs.every((s) => s.status === 'IN_FULFILLMENT') && subs;
      },
      { what: `order ${orderId} split in two children in fulfilment`, timeoutMs: 15_000 },
    )) as any[];
    const [lamp, rug] = ['LAMP', 'RUG'].map((sku) => children.find((c) => c.items[0].skuId === sku));
    return { orderId, lamp, rug };
  };

  it("lets a merchant refund and cancel only its own part of a split order, never another merchant's", async () => {
    const { orderId, lamp, rug } = await paidAndSplit('moe', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }], 'WELCOME');
    const shop = system.token('shop', 'merchant');
    // the lamp's merchant asks to refund the weaver's rug: not a SKU of its part
    const theirs = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: shop, body: { reason: 'not mine', items: [{ skuId: 'RUG', qty: 1 }] } });
    expect([theirs.status, theirs.body.code]).toEqual([422, 'REFUND_EXCEEDS_ORDER']);
    expect(await refundsOf(orderId)).toEqual([]);
    // a refund without items and a cancel through the parent touch the lamp's part alone
    const everything = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: shop, body: { reason: 'out of lamps' } });
    expect([everything.status, everything.body.refunds.map((r: any) => r.orderId)]).toEqual([202, [lamp.orderId]]);
    const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: shop, body: { reason: 'out of lamps' } });
    expect(cancelled.status).toBe(409);
    const weaver = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('weaver', 'merchant'), body: { reason: 'out of rugs' } });
    expect(weaver.status).toBe(200);
    await system.waitForStatus(lamp.orderId, 'REFUNDED', 20_000);
    await system.waitForStatus(rug.orderId, 'REFUNDED', 20_000);
    expect((await refundsOf(orderId)).map((r: any) => r.orderId).sort()).toEqual([lamp.orderId, rug.orderId].sort());
  });

  it('refuses a refund of 1 lamp and 5 rugs (or 5 lamps and 1 rug) when 2 lamps and 1 rug were bought, and opens nothing: nothing refunded, nothing back on sale', async () => {
    const { orderId, lamp, rug } = await paidAndSplit('ann', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }]);
    const before = { lamps: await stock('LAMP'), rugs: await stock('RUG') };

    // each child in turn is the one with too few units, whichever the refund opens first
    for (const items of [
      [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 5 }],
      [{ skuId: 'LAMP', qty: 5 }, { skuId: 'RUG', qty: 1 }],
    ]) {
      const refused = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ann'), body: { reason: 'too many', items } });
      expect([refused.status, refused.body.code]).toEqual([422, 'REFUND_EXCEEDS_ORDER']);
    }
    expect(await refundsOf(orderId)).toEqual([]);
    expect((await system.order(orderId)).amounts.refundedCents).toBe(0);
    for (const child of [lamp, rug]) {
      const now = await system.order(child.orderId);
      expect([now.status, now.items[0].refundedQty, now.history.length]).toEqual(['IN_FULFILLMENT', 0, child.history.length]);
    }
    expect({ lamps: await stock('LAMP'), rugs: await stock('RUG') }).toEqual(before);
    expect(await system.env.db.selectFrom('stock_ledger').select('id').where('kind', '=', 'restock').where('order_id', 'in', [lamp.orderId, rug.orderId]).execute()).toEqual([]);

    // 1 lamp and the 1 rug: one refund per child, in one request
    const refunded = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ann'), body: { reason: 'fewer', items: [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }] } });
    expect(refunded.status).toBe(202);
    expect(Object.fromEntries(refunded.body.refunds.map((r: any) => [r.orderId, r.items.map((i: any) => [i.skuId, i.qty])]))).toEqual({
      [lamp.orderId]: [['LAMP', 1]],
      [rug.orderId]: [['RUG', 1]],
    });
    expect((await system.order(lamp.orderId)).status).toBe('IN_FULFILLMENT');
    await system.waitForStatus(rug.orderId, 'REFUNDED');
  });

  it("refuses a warehouse event naming a split order rather than one of its children, 400 naming them, and changes nothing: the warehouse was sent the children", async () => {
    const { orderId, lamp, rug } = await paidAndSplit('quin', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    const misnamed = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-PARENT', at: new Date().toISOString() });
    expect([misnamed.status, misnamed.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(misnamed.body.detail).toContain(lamp.orderId);
    for (const id of [orderId, lamp.orderId, rug.orderId]) expect((await system.order(id)).status).toBe('IN_FULFILLMENT');
  });

  it('refuses a return of 1 lamp and 5 rugs (or 5 lamps and 1 rug) when 2 lamps and 1 rug were delivered, and opens nothing: both parts stay delivered', async () => {
    const { orderId, lamp, rug } = await paidAndSplit('bea', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }]);
    for (const child of [lamp, rug]) for (const event of ['SHIPPED', 'DELIVERED']) expect((await warehouse(child.orderId, event)).body.callbackStatus).toBe(200);

    for (const items of [
      [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 5 }],
      [{ skuId: 'LAMP', qty: 5 }, { skuId: 'RUG', qty: 1 }],
    ]) {
      const refused = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('bea'), body: { reason: 'too many', items } });
      expect([refused.status, refused.body.code]).toEqual([422, 'REFUND_EXCEEDS_ORDER']);
    }
    expect(await refundsOf(orderId)).toEqual([]);
    for (const child of [lamp, rug]) expect((await system.order(child.orderId)).status).toBe('DELIVERED');

    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('bea'), body: { reason: 'fewer', items: [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }] } });
    expect([asked.status, asked.body.returns.map((r: any) => r.status)]).toEqual([202, ['REQUESTED', 'REQUESTED']]);
    for (const child of [lamp, rug]) expect((await system.order(child.orderId)).status).toBe('RETURN_REQUESTED');
  });

  it("opens a return on each part a later return names, though one part's share repeats an earlier return of the same reason (received and paid back): the second lamp is paid back too", async () => {
    const { orderId, lamp, rug } = await paidAndSplit('ole', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }]);
    for (const child of [lamp, rug]) for (const event of ['SHIPPED', 'DELIVERED']) expect((await warehouse(child.orderId, event)).body.callbackStatus).toBe(200);
    const returnOf = (items: Array<{ skuId: string; qty: number }>) => system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('ole'), body: { reason: 'damaged', items } });
    const receive = async (returnId: string, child: { orderId: string }, merchant: string) => {
      expect((await system.request('POST', `/v1/orders/${child.orderId}/returns/${returnId}/approve`, { token: system.token(merchant, 'merchant') })).status).toBe(200);
      expect((await warehouse(child.orderId, 'RETURN_RECEIVED')).body.callbackStatus).toBe(200);
    };

    const first = await returnOf([{ skuId: 'LAMP', qty: 1 }]);
    await receive(first.body.returnId, lamp, 'shop');
    await waitFor(async () => (await system.order(lamp.orderId)).amounts.refundedCents === 1_000 && (await system.order(lamp.orderId)).status === 'DELIVERED', { what: 'the first lamp paid back' });

    const second = await returnOf([{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    expect([second.status, second.body.replayed, second.body.returns.map((r: any) => [r.orderId, r.status])]).toEqual([
      202,
      false,
      expect.arrayContaining([
        [lamp.orderId, 'REQUESTED'],
        [rug.orderId, 'REQUESTED'],
      ]),
    ]);
    expect(second.body.returns).toHaveLength(2);
    const lampReturn = second.body.returns.find((r: any) => r.orderId === lamp.orderId).refundId;
    await receive(lampReturn, lamp, 'shop');
    await waitFor(async () => (await system.order(lamp.orderId)).amounts.refundedCents === 2_000, { what: 'the second lamp paid back' });
  });

  it("refunds each part a later refund names, though one part's share repeats an earlier refund of the same reason: the second lamp is refunded too", async () => {
    const { orderId, lamp } = await paidAndSplit('pia', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }]);
    const refundOf = (items: Array<{ skuId: string; qty: number }>) => system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('pia'), body: { reason: 'changed my mind', items } });

    expect((await refundOf([{ skuId: 'LAMP', qty: 1 }])).status).toBe(202);
    const second = await refundOf([{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    expect([second.status, second.body.replayed, second.body.refunds.length]).toEqual([202, false, 2]);
    await waitFor(async () => (await system.order(lamp.orderId)).amounts.refundedCents === 2_000, { what: 'both lamps refunded' });
    expect(await refundsOf(orderId)).toHaveLength(3);
  });

  it('cancels a split order one of whose children was refunded already: the other child is refunded and the coupon use goes back; refused once a child has shipped', async () => {
    const { orderId, lamp, rug } = await paidAndSplit('cy', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }], 'WELCOME');
    const rugRefund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('cy'), body: { reason: 'no rug', items: [{ skuId: 'RUG', qty: 1 }] } });
    expect(rugRefund.status).toBe(202);
    await system.waitForStatus(rug.orderId, 'REFUNDED');

    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('cy'), body: { reason: 'changed my mind' } });
    expect(cancel.status).toBe(200);
    const refunded = await system.waitForStatus(orderId, 'REFUNDED');
    expect(refunded.amounts.refundedCents).toBe(lamp.amounts.payableCents + rug.amounts.payableCents);
    expect((await system.order(lamp.orderId)).history.map((h: any) => h.action)).toContain('refund');
    // the refunded rug child is left as it was: one refund of it, the buyer's
    expect((await refundsOf(orderId)).map((r: any) => [r.orderId, r.reason]).sort()).toEqual([[lamp.orderId, 'changed my mind'], [rug.orderId, 'no rug']].sort());
    expect(await system.env.db.selectFrom('coupon_redemptions').select('status').where('order_id', '=', orderId).execute()).toEqual([{ status: 'restored' }]);
    // cancelling again changes nothing
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('cy'), body: { reason: 'changed my mind' } })).status).toBe(200);
    expect(await refundsOf(orderId)).toHaveLength(2);

    // a lamp shipped cannot be cancelled, even with the rug refunded
    const shipped = await paidAndSplit('dov', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    expect((await system.request('POST', `/v1/orders/${shipped.orderId}/refunds`, { token: system.token('dov'), body: { reason: 'no rug', items: [{ skuId: 'RUG', qty: 1 }] } })).status).toBe(202);
    expect((await warehouse(shipped.lamp.orderId, 'SHIPPED')).body.callbackStatus).toBe(200);
    const late = await system.request('POST', `/v1/orders/${shipped.orderId}/cancel`, { token: system.token('dov'), body: { reason: 'too late' } });
    expect([late.status, late.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect((await refundsOf(shipped.orderId)).map((r: any) => r.reason)).toEqual(['no rug']);
  });

  it("returns a delivered child asked by its own id: the parent's payment pays back the child's lines, their coupon share taken off, and the units go back on sale", async () => {
    const { orderId, lamp, rug } = await paidAndSplit('noa', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }], 'WELCOME');
    for (const child of [lamp, rug]) for (const event of ['SHIPPED', 'DELIVERED']) expect((await warehouse(child.orderId, event)).body.callbackStatus).toBe(200);
    expect((await system.order(lamp.orderId)).status).toBe('DELIVERED');
    // 2,700 with 10 % off: the lamps' line carries 200 of the 270
    expect([lamp.items[0].discountCents, lamp.items[0].payableCents, lamp.amounts.payableCents]).toEqual([200, 1_800, 1_800]);
    const lampsBefore = await stock('LAMP');

    const asked = await system.request('POST', `/v1/orders/${lamp.orderId}/returns`, { token: system.token('noa'), body: { reason: 'too bright', items: [{ skuId: 'LAMP', qty: 2 }] } });
    expect([asked.status, asked.body.code, asked.body.status]).toEqual([202, undefined, 'REQUESTED']);
    expect(asked.body.returns).toEqual([expect.objectContaining({ orderId: lamp.orderId, kind: 'return', amountCents: 1_800, items: [expect.objectContaining({ skuId: 'LAMP', qty: 2, cents: 1_800 })] })]);
    const approved = await system.request('POST', `/v1/orders/${lamp.orderId}/returns/${asked.body.returnId}/approve`, { token: system.token('shop', 'merchant') });
    expect([approved.status, approved.body.status]).toEqual([200, 'APPROVED']);
    expect((await system.order(lamp.orderId)).status).toBe('RETURNING');

    expect((await warehouse(lamp.orderId, 'RETURN_RECEIVED')).body.callbackStatus).toBe(200);
    expect((await system.waitForStatus(lamp.orderId, 'RETURNED')).amounts.refundedCents).toBe(1_800);
    expect((await system.waitForRefund(lamp.orderId)).parts.map((part: any) => part.amountCents)).toEqual([1_800]);
    expect(await stock('LAMP')).toEqual({ ...lampsBefore, available: lampsBefore.available + 2, sold: lampsBefore.sold - 2 });
    // the money came back from the one charge, the parent's; the rug is still the buyer's
    const { payments, refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    const [charge] = payments.filter((p: any) => p.orderId === orderId);
    expect(refunds.filter((r: any) => r.paymentId === charge.paymentId).map((r: any) => [r.refundId, r.amountCents])).toEqual([[asked.body.returnId, 1_800]]);
    expect((await system.order(rug.orderId)).status).toBe('DELIVERED');
    expect((await system.order(orderId)).amounts.refundedCents).toBe(1_800);
  });

  it("gives the buyer's coupon use back once each merchant has cancelled its own part, once only; keeps it used while a part is live or once one has shipped", async () => {
    const [shop, weaver] = [system.token('shop', 'merchant'), system.token('weaver', 'merchant')];
    const cancel = (orderId: string, token: string) => system.request('POST', `/v1/orders/${orderId}/cancel`, { token, body: { reason: 'out of stock' } });
    /** A new order of one lamp (1,000, 10% off) with the coupon: 202 while the buyer's one use is theirs, 422 else. */
    const withCouponAgain = (buyer: string, key: string) =>
      system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: 'WELCOME' } });
    const redemption = async (orderId: string) => (await system.env.db.selectFrom('coupon_redemptions').select('status').where('order_id', '=', orderId).executeTakeFirstOrThrow()).status;

    const eve = await paidAndSplit('eve', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }], 'WELCOME');
    expect((await cancel(eve.orderId, shop)).status).toBe(200);
    await system.waitForStatus(eve.lamp.orderId, 'REFUNDED', 20_000);
    // the rug is still coming: the order is not cancelled, the use is still taken
    expect([(await withCouponAgain('eve', 'eve-early')).body.code, await redemption(eve.orderId)]).toEqual(['COUPON_LIMIT_EXCEEDED', 'used']);
    expect((await cancel(eve.orderId, weaver)).status).toBe(200);
    expect((await system.waitForStatus(eve.orderId, 'REFUNDED', 20_000)).amounts.refundedCents).toBe(eve.lamp.amounts.payableCents + eve.rug.amounts.payableCents);
    const next = await withCouponAgain('eve', 'eve-2');
    expect(next.status).toBe(202);
    expect((await system.waitForStatus(next.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'WELCOME', discountCents: 100 });

    // the lamp shipped: the order was partly fulfilled, and cancelling the rug keeps the use taken
    const fay = await paidAndSplit('fay', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }], 'WELCOME');
    expect((await warehouse(fay.lamp.orderId, 'SHIPPED')).body.callbackStatus).toBe(200);
    expect((await cancel(fay.orderId, weaver)).status).toBe(200);
    await system.waitForStatus(fay.rug.orderId, 'REFUNDED', 20_000);
    expect([(await withCouponAgain('fay', 'fay-2')).body.code, await redemption(fay.orderId)]).toEqual(['COUPON_LIMIT_EXCEEDED', 'used']);

    // an order whose merchants' cancels left the use taken (before they gave it back): the buyer's cancel, a
    // repeat that opens nothing, gives it back; once only, however often it is sent
    const gus = await paidAndSplit('gus', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }], 'WELCOME');
    for (const token of [shop, weaver]) expect((await cancel(gus.orderId, token)).status).toBe(200);
    await system.waitForStatus(gus.orderId, 'REFUNDED', 20_000);
    await system.env.db.updateTable('coupon_redemptions').set({ status: 'used' }).where('order_id', '=', gus.orderId).execute();
    for (let repeat = 0; repeat < 2; repeat++) {
      const again = await cancel(gus.orderId, system.token('gus'));
      expect([again.status, again.body.status]).toEqual([200, 'REFUNDED']);
    }
    expect(await redemption(gus.orderId)).toBe('restored');
    expect(await refundsOf(gus.orderId)).toHaveLength(2);
    expect((await withCouponAgain('gus', 'gus-2')).status).toBe(202);
    expect((await withCouponAgain('gus', 'gus-3')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
  });

  it("gives the coupon use back whether a merchant's cancel or the buyer's refund of the other part whole closes a split order, in either order or at once; keeps it used when refunds alone closed every part", async () => {
    const weaver = system.token('weaver', 'merchant');
    const both = [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }];
    const cancelRug = (orderId: string) => system.request('POST', `/v1/orders/${orderId}/cancel`, { token: weaver, body: { reason: 'out of rugs' } });
    const refund = (buyer: string, orderId: string, skuId: string) =>
      system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), body: { reason: `no ${skuId}`, items: [{ skuId, qty: 1 }] } });
    /** A new order of one lamp (1,000, 10% off) with the coupon: 202 while the buyer's one use is theirs, 422 else. */
    const withCouponAgain = (buyer: string) =>
      system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `${buyer}-again` }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: 'WELCOME' } });

    const [hal, ida, jo, kev] = await Promise.all([paidAndSplit('hal', both, 'WELCOME'), paidAndSplit('ida', both, 'WELCOME'), paidAndSplit('jo', both, 'WELCOME'), paidAndSplit('kev', both, 'WELCOME')]);
    // the rug cancelled by its merchant, then the lamp refunded whole by the buyer
    expect((await cancelRug(hal.orderId)).status).toBe(200);
    expect((await refund('hal', hal.orderId, 'LAMP')).status).toBe(202);
    // the lamp refunded whole, then the rug cancelled
    expect((await refund('ida', ida.orderId, 'LAMP')).status).toBe(202);
    expect((await cancelRug(ida.orderId)).status).toBe(200);
    // both at the same moment
    expect((await Promise.all([cancelRug(jo.orderId), refund('jo', jo.orderId, 'LAMP')])).map((a) => a.status)).toEqual([200, 202]);
    // the lamp and then the rug refunded whole, no cancel: the buyer's refunds keep it used, as a refund of lines does
    expect((await refund('kev', kev.orderId, 'LAMP')).status).toBe(202);
    expect((await refund('kev', kev.orderId, 'RUG')).status).toBe(202);

    for (const [buyer, { orderId }] of Object.entries({ hal, ida, jo, kev })) {
      expect((await system.waitForStatus(orderId, 'REFUNDED', 20_000)).amounts.refundedCents).toBe(1_530);
      const again = await withCouponAgain(buyer);
      expect([buyer, again.status, again.body.code]).toEqual(buyer === 'kev' ? [buyer, 422, 'COUPON_LIMIT_EXCEEDED'] : [buyer, 202, undefined]);
    }
  });

  it('refunds each of eight paid split orders exactly once when their eight buyers cancel them at the same moment: all 200', async () => {
    const orders = await Promise.all(Array.from({ length: 8 }, (_, n) => paidAndSplit(`crowd-${n}`, [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }])));
    const answers = await Promise.all(orders.map(({ orderId }, n) => system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(`crowd-${n}`), body: { reason: 'changed my mind' } })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200, 200, 200]);
    for (const { orderId } of orders) await system.waitForStatus(orderId, 'REFUNDED', 20_000);
    const { payments, refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    for (const { orderId, lamp, rug } of orders) {
      const [charge] = payments.filter((p: any) => p.orderId === orderId);
      // one refund per child at the payment system, under the cancel's refund id, together all the order paid
      const back = refunds.filter((r: any) => r.paymentId === charge.paymentId).map((r: any) => [r.refundId, r.amountCents]);
      expect(back.sort()).toEqual([[`${lamp.orderId}-cancel`, lamp.amounts.payableCents], [`${rug.orderId}-cancel`, rug.amounts.payableCents]].sort());
      expect([charge.charges, charge.refundedCents]).toEqual([1, charge.amountCents]);
    }
  });

  it('opens one refund when two refunds race with one Idempotency-Key and different units, on a whole order and on a split one: one 202, one 422, only the winner refunded', async () => {
    const lampsOnly = await system.checkout('kai', [{ skuId: 'LAMP', qty: 3 }]);
    await system.waitForStatus(lampsOnly, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${lampsOnly}/pay`, { token: system.token('kai'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(lampsOnly, 'IN_FULFILLMENT');
    const split = await paidAndSplit('kit', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }]);

    for (const [buyer, orderId, bodies] of [
      ['kai', lampsOnly, [[{ skuId: 'LAMP', qty: 1 }], [{ skuId: 'LAMP', qty: 2 }]]],
      ['kit', split.orderId, [[{ skuId: 'LAMP', qty: 1 }], [{ skuId: 'RUG', qty: 1 }]]],
    ] as const) {
      const answers = await Promise.all(
        bodies.map((items) => system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), headers: { 'idempotency-key': 'double-click' }, body: { reason: 'changed my mind', items } })),
      );
      expect(answers.map((a) => [a.status, a.body.code]).sort()).toEqual([[202, undefined], [422, 'IDEMPOTENCY_CONFLICT']]);
      const winner = bodies[answers.findIndex((a) => a.status === 202)]!;
      const refunds = await refundsOf(orderId);
      expect(refunds.flatMap((r: any) => r.items.map((i: any) => [i.skuId, i.qty]))).toEqual(winner.map((i) => [i.skuId, i.qty]));
      const order = await system.order(orderId);
      const parts = order.subOrders.length > 0 ? await Promise.all(order.subOrders.map((id: string) => system.order(id))) : [order];
      const refundedQty = parts.flatMap((part: any) => part.items).reduce((sum: number, item: any) => sum + item.refundedQty, 0);
      expect(refundedQty).toBe(winner[0]!.qty);
    }
  });

  it('opens one return when two returns race with one Idempotency-Key and different units of a split order: one 202, one 422', async () => {
    const { orderId, lamp, rug } = await paidAndSplit('kat', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }]);
    for (const child of [lamp, rug]) for (const event of ['SHIPPED', 'DELIVERED']) expect((await warehouse(child.orderId, event)).body.callbackStatus).toBe(200);
    const bodies = [[{ skuId: 'LAMP', qty: 1 }], [{ skuId: 'RUG', qty: 1 }]];

    const answers = await Promise.all(
      bodies.map((items) => system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('kat'), headers: { 'idempotency-key': 'double-click' }, body: { reason: 'broken', items } })),
    );
    expect(answers.map((a) => [a.status, a.body.code]).sort()).toEqual([[202, undefined], [422, 'IDEMPOTENCY_CONFLICT']]);
    const winner = bodies[answers.findIndex((a) => a.status === 202)]!;
    expect((await refundsOf(orderId)).map((r: any) => [r.kind, r.items.map((i: any) => i.skuId)])).toEqual([['return', [winner[0]!.skuId]]]);
    const statuses = { [lamp.orderId]: (await system.order(lamp.orderId)).status, [rug.orderId]: (await system.order(rug.orderId)).status };
    expect(Object.values(statuses).sort()).toEqual(['DELIVERED', 'RETURN_REQUESTED']);
  });

  it("keeps an Idempotency-Key the caller's: a merchant or an admin sending the buyer's key opens a refund of its own, never answered with the buyer's", async () => {
    const { orderId, lamp } = await paidAndSplit('lou', [{ skuId: 'LAMP', qty: 3 }, { skuId: 'RUG', qty: 1 }]);
    const oneLamp = { reason: 'Refund of 1 lamp', items: [{ skuId: 'LAMP', qty: 1 }] };
    const refund = (token: string, body: object) => system.request('POST', `/v1/orders/${orderId}/refunds`, { token, headers: { 'idempotency-key': 'refund-1' }, body });

    const buyers = await refund(system.token('lou'), oneLamp);
    expect([buyers.status, buyers.body.replayed]).toEqual([202, false]);
    const merchants = await refund(system.token('shop', 'merchant'), oneLamp);
    expect([merchants.status, merchants.body.replayed]).toEqual([202, false]);
    expect(merchants.body.refundId).not.toBe(buyers.body.refundId);
    // the same key with another body is another caller's key, not a conflict
    const admins = await refund(admin, { reason: 'Refund of 1 lamp', items: [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }] });
    expect([admins.status, admins.body.replayed, admins.body.refunds.length]).toEqual([202, false, 2]);
    expect((await system.order(lamp.orderId)).items[0].refundedQty).toBe(3);
    // each caller's key still answers its own refund
    expect((await refund(system.token('lou'), oneLamp)).body).toMatchObject({ refundId: buyers.body.refundId, replayed: true });
    expect((await refund(system.token('shop', 'merchant'), oneLamp)).body).toMatchObject({ refundId: merchants.body.refundId, replayed: true });
  });

  it('answers a repeated refund of everything left on a split order with the refunds it opened (202, replayed), with an Idempotency-Key or without', async () => {
    for (const [buyer, headers] of [
      ['max', { 'idempotency-key': 'everything-1' }],
      ['mia', {}],
    ] as const) {
      const { orderId, lamp, rug } = await paidAndSplit(buyer, [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
      const everything = () => system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), headers, body: { reason: 'changed my mind' } });
      const first = await everything();
      expect([first.status, first.body.replayed, first.body.refunds.map((r: any) => r.orderId).sort()]).toEqual([202, false, [lamp.orderId, rug.orderId].sort()]);
      const again = await everything();
      expect([again.status, again.body.code, again.body.refundId, again.body.replayed]).toEqual([202, undefined, first.body.refundId, true]);
      expect(again.body.refunds.map((r: any) => r.refundId).sort()).toEqual(first.body.refunds.map((r: any) => r.refundId).sort());
      expect(await refundsOf(orderId)).toHaveLength(2);
    }
  });

  it('closes an order of 2 lamps when 8 one-lamp refunds race for them: the one that takes the last lamp refunds the whole order, in each of 12 orders, and every lamp is back on sale', async () => {
    const orders = await Promise.all(
      Array.from({ length: 12 }, async (_, n) => {
        const buyer = `racer-${n}`;
        const orderId = await system.checkout(buyer, [{ skuId: 'LAMP', qty: 2 }]);
        await system.waitForStatus(orderId, 'PENDING_PAYMENT');
        expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
        await system.waitForStatus(orderId, 'IN_FULFILLMENT');
        return { buyer, orderId };
      }),
    );
    for (const { buyer, orderId } of orders) {
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) => system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), body: { reason: `refund ${i}`, items: [{ skuId: 'LAMP', qty: 1 }] } })),
      );
      expect(answers.filter((a) => a.status === 202)).toHaveLength(2);
      // the others find no lamp left, or the order already refunding
      expect(answers.filter((a) => a.status !== 202).every((a) => ['REFUND_EXCEEDS_ORDER', 'ILLEGAL_TRANSITION'].includes(a.body.code))).toBe(true);
      // no lamp is left: the order is refunding, not still in fulfilment
      expect(['REFUNDING', 'REFUNDED']).toContain((await system.order(orderId)).status);
    }
    for (const { orderId } of orders) {
      const closed = await system.waitForStatus(orderId, 'REFUNDED');
      expect(closed.history.map((h: any) => h.action).filter((action: string) => action.startsWith('refund'))).toEqual(['refund_lines', 'refund', 'refund_succeeded']);
      expect([closed.items[0].refundedQty, closed.amounts.refundedCents]).toEqual([2, closed.amounts.payableCents]);
    }
    // the warehouse took them out of the parcels (each dropped), whichever refund's update took them: each lamp back on sale, once
    const restocked = await system.env.db
      .selectFrom('stock_ledger')
      .select(['order_id', (eb) => eb.fn.sum<number>('qty').as('units')])
      .where('kind', '=', 'restock')
      .where('order_id', 'in', orders.map(({ orderId }) => orderId))
      .groupBy('order_id')
      .execute();
    expect(restocked.map((row) => Number(row.units))).toEqual(orders.map(() => 2));
  });

  it("settles by hand, through the split order's own id, the refunds the payment system declined on each of its children: each child REFUNDED, and so the order", async () => {
    const { orderId, lamp, rug } = await paidAndSplit('ines', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: true } });
    try {
      expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ines'), body: { reason: 'changed my mind' } })).status).toBe(200);
      const declined = await waitFor(async () => {
        const refunds = await refundsOf(orderId);
        return refunds.length === 2 && refunds.every((refund: any) => refund.parts[0]?.status === 'FAILED') && refunds;
      }, { what: "both children's refunds declined" });
      // the admin's list of orders owing such a refund names both children
      const owing = await system.request('GET', '/v1/admin/orders?refundDeclined=true&leaf=true', { token: admin });
      expect(owing.body.items.map((order: any) => order.orderId).sort()).toEqual([lamp.orderId, rug.orderId].sort());
      for (const refund of declined) {
        const settled = await system.request('POST', `/v1/orders/${orderId}/refunds/${refund.refundId}/settle-by-hand`, { token: admin, body: { reference: `voucher-${refund.orderId}` } });
        expect([settled.status, settled.body.status, settled.body.orderId]).toEqual([200, 'SUCCEEDED', refund.orderId]);
      }
      await system.waitForStatus(lamp.orderId, 'REFUNDED');
      await system.waitForStatus(rug.orderId, 'REFUNDED');
      await system.waitForStatus(orderId, 'REFUNDED');
      expect((await system.request('GET', '/v1/admin/orders?refundDeclined=true&leaf=true', { token: admin })).body.items).toEqual([]);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    }
  });
});

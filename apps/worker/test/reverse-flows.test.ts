// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { StockKeys } from '@orders/stock';
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('pricing at persist, cancel and refunds, exact to the cent', () => {
  let system: OrderSystem;
  let admin: string;

  beforeAll(async () => {
    system = await startOrderSystem('reverse_flows');
    admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'TEA', priceCents: 1_250, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 50, deduction: 'payment' });
    await system.createSku({ skuId: 'MUG', priceCents: 899, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
    const window = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    const setup: Array<[string, string, unknown, number]> = [
      ['PUT', '/v1/admin/member-levels/gold', { discountPercent: 5, freeShipping: false }, 200],
      ['PUT', '/v1/admin/members/ada', { level: 'gold' }, 200],
      ['POST', '/v1/admin/promotions', { promotionId: 'P-5000-500', title: '500 off 5,000', thresholdCents: 5_000, offCents: 500, ...window }, 201],
      ['POST', '/v1/admin/coupons', { code: 'TENOFF', kind: 'percent', percentOff: 10, minSpendCents: 6_000, perBuyerLimit: 1, ...window }, 201],
      ['PUT', '/v1/admin/warehouses/wh-east/shipping', { feeCents: 600 }, 200],
      ['PUT', '/v1/admin/warehouses/wh-west/shipping', { feeCents: 450 }, 200],
    ];
    for (const [method, path, body, status] of setup) expect((await system.request(method, path, { token: admin, body })).status).toBe(status);
  });
  afterAll(async () => system?.close());

  const stock = (skuId: string) => system.stockOf(skuId);
  const checkout = async (buyer: string, items: Array<{ skuId: string; qty: number }>, key: string, couponCode?: string) => {
    const answer = await system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items, address: buyerAddress, ...(couponCode ? { couponCode } : {}) } });
    expect([answer.status, answer.body.code]).toEqual([202, undefined]);
    return answer.body.orderId as string;
  };
  /** A checkout with the coupon while another order of the buyer holds its one use: refused. */
  const expectCouponTaken = async (buyer: string, key: string) => {
    const answer = await system.request('POST', '/v1/orders', {
      token: system.token(buyer),
      headers: { 'idempotency-key': key },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress, couponCode: 'TENOFF' },
    });
    expect([answer.status, answer.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  };
  const atWarehouse = async (orderId: string) => (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
  const ledger = (orderId: string) =>
    system.env.db.selectFrom('stock_ledger').select(['sku_id', 'kind', 'qty', 'reason']).where('order_id', '=', orderId).orderBy('id').execute();
  const payAndSplit = async (buyer: string, orderId: string, parts: number) => {
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    return (await waitFor(
      async () => {
        const order = await system.order(orderId);
        if (order.subOrders.length !== parts) return false;
        const subs = await Promise.all(order.subOrders.map((id: string) => system.order(id)));
        return subs.every((s) => s.status === 'IN_FULFILLMENT') ? subs : false;
      },
      { what: `${parts} children in fulfilment`, timeoutMs: 15_000 },
    )) as any[];
  };

  it('prices the worked cart as the domain does, cancels it unpaid and then paid, and gives back its stock and its coupon each time; a second cancel changes nothing', async () => {
    const ada = system.token('ada');
    const orderId = await checkout('ada', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 2 }, { skuId: 'MUG', qty: 3 }], 'ada-1', 'TENOFF');
    const pending = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // the numbers of libs/domain/test/pricing.test.ts's worked example
    expect(pending.amounts).toEqual({ subtotalCents: 9_196, discountCents: 1_781, shippingCents: 1_050, payableCents: 8_465, refundedCents: 0 });
    expect(pending.items.map((i: any) => [i.skuId, i.discountCents, i.shippingCents, i.payableCents])).toEqual([
      ['KETTLE', 774, 600, 3_825],
      ['TEA', 485, 216, 2_231],
      ['MUG', 522, 234, 2_409],
    ]);
    expect(pending.benefits).toEqual({
      member: { level: 'gold', discountCents: 458, freeShipping: false },
      promotions: [{ promotionId: 'P-5000-500', discountCents: 500 }],
      coupon: { code: 'TENOFF', discountCents: 823 },
    });
    expect(await stock('KETTLE')).toEqual({ available: 9, reserved: 1, sold: 0 });

    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: ada, body: { reason: 'changed my mind' } });
    expect([cancel.status, cancel.body.status]).toEqual([200, 'CANCELLED']);
    expect(cancel.body.history.at(-1)).toMatchObject({ from: 'PENDING_PAYMENT', action: 'cancel', to: 'CANCELLED', actor: 'buyer' });
    expect(await stock('KETTLE')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect(await stock('MUG')).toEqual({ available: 20, reserved: 0, sold: 0 });
    expect((await ledger(orderId)).filter((row) => row.kind === 'release')).toEqual([
      { sku_id: 'KETTLE', kind: 'release', qty: 1, reason: 'cancel' },
      // TEA is deducted at payment: it took nothing, and its row says the order holds none
      { sku_id: 'TEA', kind: 'release', qty: 0, reason: 'cancel' },
      { sku_id: 'MUG', kind: 'release', qty: 3, reason: 'cancel' },
    ]);
    const again = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: ada, body: { reason: 'changed my mind' } });
    expect([again.status, again.body.status]).toEqual([200, 'CANCELLED']);
    expect((await system.order(orderId)).history).toHaveLength(cancel.body.history.length);
    expect(await stock('KETTLE')).toEqual({ available: 10, reserved: 0, sold: 0 });

    // the coupon (one use per buyer) is Ada's again: her next order gets its 10 %
    const next = await checkout('ada', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 2 }, { skuId: 'MUG', qty: 3 }], 'ada-2', 'TENOFF');
    expect((await system.waitForStatus(next, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'TENOFF', discountCents: 823 });
    // while that order holds it, checkout refuses it in the same Redis step as the stock: nothing is reserved
    await expectCouponTaken('ada', 'ada-3');
    expect(await stock('KETTLE')).toEqual({ available: 9, reserved: 1, sold: 0 });
    const unknown = await system.request('POST', '/v1/orders', {
      token: system.token('cal'),
      headers: { 'idempotency-key': 'cal-0' },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress, couponCode: 'NOSUCH' },
    });
    expect([unknown.status, unknown.body.code]).toEqual([422, 'COUPON_INVALID']);
    // below its 6,000 minimum spend the coupon does not apply, and its use goes back to the buyer at once
    const small = await checkout('cal', [{ skuId: 'MUG', qty: 1 }], 'cal-1', 'TENOFF');
    const smallOrder = await system.waitForStatus(small, 'PENDING_PAYMENT');
    expect([smallOrder.benefits.coupon, smallOrder.amounts.payableCents]).toEqual([null, 899 + 450]);
    // the persist job gives the use back in Redis after its commit: a moment after the order reads PENDING_PAYMENT
    const keys = new StockKeys(system.env.config.REDIS_KEY_PREFIX);
    await waitFor(async () => (await system.env.redis.get(keys.couponUses(keys.bucketGroup(0), 'TENOFF', 'cal'))) === '0', { what: "cal's coupon use given back" });
    const big = await checkout('cal', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 3 }], 'cal-2', 'TENOFF');
    expect((await system.waitForStatus(big, 'PENDING_PAYMENT')).benefits.coupon).toMatchObject({ code: 'TENOFF' });
    for (const orderId of [small, big]) await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('cal'), body: { reason: 'test over' } });

    // paid and split in three, then cancelled: every child refunded in full through the payment system, every unit back on sale
    const children = await payAndSplit('ada', next, 3);
    expect(await stock('TEA')).toEqual({ available: 48, reserved: 0, sold: 2 });
    const paidCancel = await system.request('POST', `/v1/orders/${next}/cancel`, { token: ada, body: { reason: 'found it cheaper' } });
    expect(paidCancel.status).toBe(200);
    const refunded = await system.waitForStatus(next, 'REFUNDED');
    expect(refunded.amounts.refundedCents).toBe(8_465);
    for (const child of children) expect((await system.order(child.orderId)).amounts.refundedCents).toBe(child.amounts.payableCents);
    // each child carries its lines' share of what the order used: 774 + 485 + 522 = 1,781 in all
    const kettle = children.find((c) => c.items[0].skuId === 'KETTLE');
    expect(kettle.benefits).toEqual({
      member: { level: 'gold', discountCents: 199, freeShipping: false },
      promotions: [{ promotionId: 'P-5000-500', discountCents: 217 }],
      coupon: { code: 'TENOFF', discountCents: 358 },
    });
    expect(children.map((c) => c.items[0].discounts.reduce((s: number, d: any) => s + d.cents, 0)).sort()).toEqual([485, 522, 774]);
    // each warehouse was told that its parcel is off
    for (const child of children) await waitFor(async () => (await atWarehouse(child.orderId)).cancelled, { what: `the warehouse to cancel ${child.orderId}` });
    expect(await stock('KETTLE')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect(await stock('TEA')).toEqual({ available: 50, reserved: 0, sold: 0 });
    expect(await stock('MUG')).toEqual({ available: 20, reserved: 0, sold: 0 });
    const restocks = await system.env.db.selectFrom('stock_ledger').select(['sku_id', 'qty', 'reason']).where('kind', '=', 'restock').orderBy('sku_id').execute();
    expect(restocks).toEqual([
      { sku_id: 'KETTLE', qty: 1, reason: 'cancel' },
      { sku_id: 'MUG', qty: 3, reason: 'cancel' },
      { sku_id: 'TEA', qty: 2, reason: 'cancel' },
    ]);
    const atPaymentSystem = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    expect(atPaymentSystem.refunds.map((r: any) => r.amountCents).sort((a: number, b: number) => a - b)).toEqual(children.map((c) => c.amounts.payableCents).sort((a, b) => a - b));
    expect(atPaymentSystem.payments.find((p: any) => p.orderId === next).refundedCents).toBe(8_465);
    // cancelling again: the same refunds, nothing new
    expect((await system.request('POST', `/v1/orders/${next}/cancel`, { token: ada, body: { reason: 'found it cheaper' } })).status).toBe(200);
    expect((await system.paymentSim.request('GET', '/__admin/payments')).body.refunds).toHaveLength(3);
    const listed = (await system.request('GET', `/v1/orders/${next}/refunds`, { token: ada })).body.items;
    expect(listed.map((r: any) => [r.kind, r.status, r.amountCents]).sort()).toEqual(children.map((c) => ['refund', 'SUCCEEDED', c.amounts.payableCents]).sort());

    // a cancellation gives the coupon use back, paid or not, and only once (two cancels above)
    expect(await system.env.db.selectFrom('coupon_redemptions').select('status').where('order_id', '=', next).execute()).toEqual([{ status: 'restored' }]);
    const afterCancel = await checkout('ada', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 2 }, { skuId: 'MUG', qty: 3 }], 'ada-4', 'TENOFF');
    expect((await system.waitForStatus(afterCancel, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'TENOFF', discountCents: 823 });
    await expectCouponTaken('ada', 'ada-5');
    expect((await system.request('POST', `/v1/orders/${afterCancel}/cancel`, { token: ada, body: { reason: 'test over' } })).status).toBe(200);
  });

  it('answers twenty cancels of one unpaid order sent at once alike: cancelled once, its stock back once', async () => {
    const orderId = await checkout('cy', [{ skuId: 'KETTLE', qty: 2 }], 'cy-race');
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const before = await stock('KETTLE');
    const answers = await Promise.all(Array.from({ length: 20 }, () => system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('cy'), body: { reason: 'double click' } })));
    expect(answers.map((a) => [a.status, a.body.status])).toEqual(Array.from({ length: 20 }, () => [200, 'CANCELLED']));
    const cancelled = await system.order(orderId);
    expect(cancelled.history.filter((h: any) => h.action === 'cancel')).toHaveLength(1);
    expect(await stock('KETTLE')).toEqual({ available: before.available + 2, reserved: before.reserved - 2, sold: before.sold });
  });

  it("keeps a cancel's reason whole in the order's history, however many of its 500 characters lie outside the BMP (emoji): none cut in half", async () => {
    const orderId = await checkout('dia', [{ skuId: 'KETTLE', qty: 1 }], 'dia-emoji');
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const reason = `${'x'.repeat(199)}${'😀'.repeat(301)}`;
    const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('dia'), body: { reason } });
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'CANCELLED']);
    expect((await system.order(orderId)).history.at(-1)).toMatchObject({ action: 'cancel', detail: reason });
  });

  it('refunds one line of a split order from its child only, its allocated payable by units, and a repeat changes nothing', async () => {
    const bob = system.token('bob');
    const orderId = await checkout('bob', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 2 }], 'bob-1');
    const [kettleChild, mugChild] = (await payAndSplit('bob', orderId, 2)).sort((a, b) => (a.items[0].skuId < b.items[0].skuId ? -1 : 1));
    // 500 off 5,797: MUG takes 155, ships with 450 of wh-west: 1,798 − 155 + 450 = 2,093; one of two mugs refunds ⌊1,643 / 2⌋
    expect(mugChild.items[0]).toMatchObject({ skuId: 'MUG', discountCents: 155, shippingCents: 450, payableCents: 2_093 });
    const body = { reason: 'one arrived... no, one is enough', items: [{ skuId: 'MUG', qty: 1 }] };
    const first = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: bob, body });
    expect(first.status).toBe(202);
    expect(first.body.refunds).toEqual([expect.objectContaining({ orderId: mugChild.orderId, kind: 'refund', amountCents: 821, items: [{ lineNo: 2, skuId: 'MUG', qty: 1, cents: 821 }] })]);
    const second = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: bob, body });
    expect([second.status, second.body.refundId]).toEqual([202, first.body.refundId]);

    await system.waitForRefund(orderId);
    expect((await system.paymentSim.request('GET', '/__admin/payments')).body.refunds.filter((r: any) => r.refundId === first.body.refundId)).toEqual([
      expect.objectContaining({ amountCents: 821 }),
    ]);
    const mug = await system.order(mugChild.orderId);
    expect([mug.status, mug.amounts.refundedCents, mug.items[0].refundedQty]).toEqual(['IN_FULFILLMENT', 821, 1]);
    expect((await system.order(kettleChild.orderId)).amounts.refundedCents).toBe(0);
    expect((await system.order(orderId)).amounts.refundedCents).toBe(821);
    expect(mug.history.at(-1)).toMatchObject({ action: 'refund_lines', actor: 'buyer' });
    expect(await stock('MUG')).toEqual({ available: 19, reserved: 0, sold: 1 });
    // the potter's warehouse now packs one mug
    await waitFor(async () => (await atWarehouse(mugChild.orderId)).items[0].qty === 1, { what: 'the warehouse to pack one mug' });

    // the other mug refunds the rest of the line, 1,643 − 821 = 822, and the shipping with it, since that child is now wholly back
    const rest = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: bob, body: { reason: 'the other one too', items: [{ skuId: 'MUG', qty: 1 }] } });
    expect(rest.body.refunds[0]).toMatchObject({ amountCents: 822 + 450 });
    const mugRefunded = await system.waitForStatus(mugChild.orderId, 'REFUNDED');
    await waitFor(async () => (await atWarehouse(mugChild.orderId)).cancelled, { what: 'the potter’s warehouse to drop the parcel' });
    expect(mugRefunded.amounts.refundedCents).toBe(2_093);
    // closed by the payment system's signed confirmation of that refund
    expect(mugRefunded.history.at(-1)).toMatchObject({ from: 'REFUNDING', action: 'refund_succeeded', actor: 'payment' });
    // nothing is left of that line: asking again is refused and changes nothing
    const tooMany = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: bob, body: { reason: 'a third', items: [{ skuId: 'MUG', qty: 1 }] } });
    expect([tooMany.status, tooMany.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect((await system.order(orderId)).amounts.refundedCents).toBe(2_093);
    // someone else's order is not found
    expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('eve'), body })).status).toBe(404);
  });

  it('makes Redis follow a coupon use given back in MySQL in the order\'s next refund job, once (as it does after a cancel)', async () => {
    const orderId = await checkout('dee', [{ skuId: 'KETTLE', qty: 2 }], 'dee-1', 'TENOFF');
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('dee'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // what a cancel's first refund commits, without the cancel's own refund job (its api died before enqueuing it)
    await system.env.db.updateTable('coupon_redemptions').set({ status: 'restored' }).where('order_id', '=', orderId).execute();
    const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('dee'), body: { reason: 'one is enough', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect(refund.status).toBe(202);
    // the refund's amounts are counted when it is opened; its job (which makes Redis follow first) has run once it is paid back
    await system.waitForRefund(orderId);

    const next = await checkout('dee', [{ skuId: 'KETTLE', qty: 2 }], 'dee-2', 'TENOFF');
    expect((await system.waitForStatus(next, 'PENDING_PAYMENT')).benefits.coupon).toMatchObject({ code: 'TENOFF' });
    // given back once: the use is taken again by the order that holds it
    await expectCouponTaken('dee', 'dee-3');
  });
});

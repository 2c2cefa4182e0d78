// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * Returns of orders whose money was spread by a member level, a promotion, a coupon and a warehouse
 * fee shared by two merchants' children: whatever the steps (partial, short, repeated returns, a line
 * refunded before it shipped), what is paid back adds up to what was paid, to the cent, and never more.
 */
describe('returns give back exactly what was paid', () => {
  let system: OrderSystem;
  let admin: string;
  let shop: string;

  beforeAll(async () => {
    system = await startOrderSystem('returns_exact', { AFTER_SALES_WINDOW_MS: '60000' });
    admin = system.token('ops', 'admin');
    shop = system.token('shop', 'merchant');
    await system.createSku({ skuId: 'LAMP', priceCents: 2_399, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    await system.createSku({ skuId: 'BULB', priceCents: 333, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'payment' });
    await system.createSku({ skuId: 'RUG', priceCents: 701, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 100, deduction: 'placement' });
    await system.createSku({ skuId: 'MAT', priceCents: 1_111, merchantId: 'knitter', channel: 'third_party', warehouseId: 'wh-west', stock: 100, deduction: 'placement' });
    const put = async (path: string, body: unknown) => expect((await system.request('PUT', path, { token: admin, body })).status).toBe(200);
    await put('/v1/admin/warehouses/wh-east/shipping', { feeCents: 499 });
    await put('/v1/admin/warehouses/wh-west/shipping', { feeCents: 301 });
    await put('/v1/admin/member-levels/gold', { discountPercent: 3, freeShipping: false });
    await put('/v1/admin/members/mia', { level: 'gold' });
    const window = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    const coupon = { code: 'SEVEN', kind: 'percent', percentOff: 7, minSpendCents: 1_000, perBuyerLimit: 100, ...window };
    expect((await system.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
    const promotion = { promotionId: 'P-OFF', title: 'off', thresholdCents: 2_000, offCents: 337, ...window };
    const promoted = await system.request('POST', '/v1/admin/promotions', { token: admin, body: promotion });
    expect(promoted.status, JSON.stringify(promoted.body)).toBe(201);
  });
  afterAll(async () => system?.close());

  const warehouse = (orderId: string, event: string) => system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } });
  const returnsOf = async (orderId: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: admin })).body.items as any[];
  const receipt = (orderId: string, returnId: string, items?: unknown) =>
    system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', returnId, ...(items ? { items } : {}), at: new Date().toISOString() });
  /** A delivered order of `items` with the coupon: its id, its view, and its children's ids by SKU when it split. */
  const delivered = async (buyer: string, items: Array<{ skuId: string; qty: number }>) => {
    const { orderId, order, parts } = await system.delivered(buyer, items, 'SEVEN');
    const partOf: Record<string, string> = {};
    for (const part of parts) for (const item of part.items) partOf[item.skuId] = part.orderId;
    return { orderId, partOf, order };
  };
  const ask = async (buyer: string, orderId: string, items: Array<{ skuId: string; qty: number }>, reason = 'broken', key?: string) => {
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token(buyer), ...(key ? { headers: { 'idempotency-key': key } } : {}), body: { reason, items } });
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    return asked.body.returns as any[];
  };

  it('gives back exactly what a split order paid (member level, promotion, coupon, shared warehouse fee) over partial, short and repeated returns of its children', async () => {
    const { orderId, partOf, order } = await delivered('mia', [
      { skuId: 'LAMP', qty: 3 },
      { skuId: 'BULB', qty: 2 },
      { skuId: 'RUG', qty: 2 },
      { skuId: 'MAT', qty: 1 },
    ]);
    const paid = order.amounts.payableCents as number;
    const approveAndReceive = async (returns: any[], items?: Record<string, unknown>) => {
      for (const r of returns) {
        const merchant = r.items[0].skuId === 'RUG' ? 'weaver' : r.items[0].skuId === 'MAT' ? 'knitter' : 'shop';
        const approved = await system.request('POST', `/v1/orders/${orderId}/returns/${r.refundId}/approve`, { token: system.token(merchant, 'merchant') });
        expect(approved.status, JSON.stringify(approved.body)).toBe(200);
        const got = await receipt(r.orderId, r.refundId, items?.[r.orderId]);
        expect([got.status, got.body.changed], JSON.stringify(got.body)).toEqual([200, true]);
      }
    };
    await approveAndReceive(await ask('mia', orderId, [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }], 'one each'));
    await waitFor(async () => (await Promise.all([partOf.LAMP!, partOf.RUG!].map((id) => system.order(id)))).every((o: any) => o.status === 'DELIVERED'), { what: 'back with the buyer' });
    await approveAndReceive(await ask('mia', orderId, [{ skuId: 'LAMP', qty: 2 }, { skuId: 'BULB', qty: 1 }], 'more'), { [partOf.LAMP!]: [{ skuId: 'LAMP', qty: 1 }] });
    await system.waitForStatus(partOf.LAMP!, 'DELIVERED');
    await approveAndReceive(await ask('mia', orderId, [{ skuId: 'LAMP', qty: 1 }, { skuId: 'BULB', qty: 2 }], 'rest of the lamps'));
    await approveAndReceive(await ask('mia', orderId, [{ skuId: 'RUG', qty: 1 }, { skuId: 'MAT', qty: 1 }], 'rest of the rugs'));
    await system.waitForStatus(orderId, 'RETURNED', 30_000);
    const all = await waitFor(
      async () => {
        const returns = (await returnsOf(orderId)).filter((r) => r.kind === 'return');
        return returns.every((r) => r.status === 'SUCCEEDED') && returns;
      },
      { what: 'every return paid back', timeoutMs: 30_000, intervalMs: 200 },
    );
    const refunds = (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as any[];
    const parts = new Set(all.flatMap((r: any) => r.parts.map((p: any) => p.partId)));
    const paidBack = refunds.filter((r) => parts.has(r.refundId)).reduce((sum, r) => sum + r.amountCents, 0);
    const after = await system.order(orderId);
    const children = await Promise.all(after.subOrders.map((id: string) => system.order(id)));
    expect({
      returned: all.reduce((sum: number, r: any) => sum + r.amountCents, 0),
      paidBack,
      refunded: after.amounts.refundedCents,
      lines: after.items.map((i: any) => [i.skuId, i.refundedQty, i.refundedCents === undefined ? i.payableCents : i.refundedCents]),
      children: children.map((c: any) => c.amounts.refundedCents === c.amounts.payableCents),
    }).toEqual({ returned: paid, paidBack: paid, refunded: paid, lines: after.items.map((i: any) => [i.skuId, i.qty, i.payableCents]), children: children.map(() => true) });
  });

  it('answers every one of 16 identical requests for a return of both children of a split order, sent at once, with the one return each child opened', async () => {
    const { orderId } = await delivered('ned', [
      { skuId: 'LAMP', qty: 2 },
      { skuId: 'RUG', qty: 2 },
    ]);
    const items = [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }];
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('ned'), ...(i % 2 === 0 ? { headers: { 'idempotency-key': 'ned-key' } } : {}), body: { reason: 'both', items } }),
      ),
    );
    const summary = answers.map((a) => `${a.status} ${a.body.code ?? (a.body.returns ?? []).map((r: any) => r.refundId).join('+')}`);
    const keyed = summary.filter((_, i) => i % 2 === 0);
    const unkeyed = summary.filter((_, i) => i % 2 === 1);
    // one of the two bodies opens the returns; the other's requests are refused 409 (a return is open) or, same body, answer it
    expect(new Set(keyed).size, summary.join('\n')).toBe(1);
    expect(new Set(unkeyed).size, summary.join('\n')).toBe(1);
    expect(summary.every((line) => /^(202|409) /.test(line)), summary.join('\n')).toBe(true);
    expect((await returnsOf(orderId)).map((r) => r.status)).toEqual(['REQUESTED', 'REQUESTED']);
  });

  it('gives back exactly what an order paid when a line refunded whole before it shipped leaves its shipping share to the return of the rest', async () => {
    const qui = system.token('qui');
    const placed = await system.request('POST', '/v1/orders', { token: qui, headers: { 'idempotency-key': 'qui-order' }, body: { items: [{ skuId: 'LAMP', qty: 3 }, { skuId: 'BULB', qty: 2 }], address: buyerAddress, couponCode: 'SEVEN' } });
    const orderId = placed.body.orderId as string;
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: qui, body: { method: 'card' } })).status).toBe(202);
    const paid = (await system.waitForStatus(orderId, 'IN_FULFILLMENT')).amounts.payableCents as number;
    const refunded = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: qui, body: { reason: 'no bulbs', items: [{ skuId: 'BULB', qty: 2 }, { skuId: 'LAMP', qty: 1 }] } });
    expect(refunded.status, JSON.stringify(refunded.body)).toBe(202);
    await waitFor(async () => (await returnsOf(orderId))[0]?.status === 'SUCCEEDED', { what: 'the refund paid back', timeoutMs: 20_000, intervalMs: 200 });
    for (const event of ['SHIPPED', 'DELIVERED']) expect((await warehouse(orderId, event)).body.callbackStatus).toBe(200);
    await system.waitForStatus(orderId, 'DELIVERED');
    const [opened] = await ask('qui', orderId, [{ skuId: 'LAMP', qty: 2 }]);
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${opened.refundId}/approve`, { token: shop })).status).toBe(200);
    const got = await receipt(orderId, opened.refundId, [{ skuId: 'LAMP', qty: 2 }]);
    expect([got.status, got.body.changed], JSON.stringify(got.body)).toEqual([200, true]);
    await system.waitForStatus(orderId, 'RETURNED');
    const all = await waitFor(async () => {
      const listed = await returnsOf(orderId);
      return listed.every((r) => r.status === 'SUCCEEDED') && listed;
    }, { what: 'all paid back', timeoutMs: 20_000, intervalMs: 200 });
    expect(all.reduce((sum: number, r: any) => sum + r.amountCents, 0)).toBe(paid);
    expect((await system.order(orderId)).amounts.refundedCents).toBe(paid);
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('returns under concurrent requests, reviews and warehouse receipts', () => {
  let system: OrderSystem;
  let admin: string;
  let shop: string;

  beforeAll(async () => {
    system = await startOrderSystem('returns_races', { AFTER_SALES_WINDOW_MS: '60000' });
    admin = system.token('ops', 'admin');
    shop = system.token('shop', 'merchant');
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 700, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 100, deduction: 'placement' });
    expect((await system.request('PUT', '/v1/admin/warehouses/wh-east/shipping', { token: admin, body: { feeCents: 500 } })).status).toBe(200);
    expect((await system.request('PUT', '/v1/admin/warehouses/wh-west/shipping', { token: admin, body: { feeCents: 300 } })).status).toBe(200);
    const window = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    // 7% off: discounts that do not divide evenly over units
    const coupon = { code: 'SEVEN', kind: 'percent', percentOff: 7, minSpendCents: 1_000, perBuyerLimit: 100, ...window };
    expect((await system.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
  });
  afterAll(async () => system?.close());

  const returnsOf = async (orderId: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: admin })).body.items as any[];
  const restocked = async (orderId: string) =>
    (await system.env.db.selectFrom('stock_ledger').select(['sku_id', 'qty']).where('order_id', '=', orderId).where('kind', '=', 'restock').execute()).map((row) => `${row.sku_id}x${row.qty}`);
  const paidBack = async (orderId: string) => {
    const refunds = (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as any[];
    const mine = new Set((await returnsOf(orderId)).flatMap((r) => r.parts.map((p: any) => p.partId)));
    return refunds.filter((r) => mine.has(r.refundId)).reduce((sum, r) => sum + r.amountCents, 0);
  };
  const allSettled = (orderId: string, count: number) =>
    waitFor(
      async () => {
        const returns = await returnsOf(orderId);
        return returns.length === count && returns.every((r) => r.status === 'SUCCEEDED') && returns;
      },
      { what: `${count} returns of ${orderId} paid back`, timeoutMs: 30_000, intervalMs: 200 },
    );
  /** A delivered order of `items` with the coupon: its id, its view, and its children's ids by their first SKU when it split. */
  const delivered = async (buyer: string, items: Array<{ skuId: string; qty: number }>) => {
    const { orderId, order, parts } = await system.delivered(buyer, items, 'SEVEN');
    return { orderId, order, partOf: Object.fromEntries(parts.map((part) => [part.items[0].skuId, part.orderId as string])) };
  };
  const receipt = (orderId: string, returnId: string) => system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', returnId, at: new Date().toISOString() });

  it('opens one return when 24 requests for the same 2 lamps race (16 with their own Idempotency-Keys, 8 without, 2 reasons): 1 accepted, the rest refused or replaying it', async () => {
    const { orderId } = await delivered('ada', [{ skuId: 'LAMP', qty: 2 }]);
    const ada = system.token('ada');
    const items = [{ skuId: 'LAMP', qty: 2 }];
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        system.request('POST', `/v1/orders/${orderId}/returns`, {
          token: ada,
          ...(i < 16 ? { headers: { 'idempotency-key': `ada-return-${i}` } } : {}),
          body: { reason: i % 2 === 0 ? 'broken' : 'too bright', items },
        }),
      ),
    );
    const opened = answers.filter((a) => a.status === 202 && a.body.replayed === false);
    expect(opened).toHaveLength(1);
    for (const a of answers.filter((x) => !(x.status === 202 && x.body.replayed === false))) {
      // a loser either answers the winner's return (same reason, no key) or is refused: the order is under review
      if (a.status === 202) expect(a.body.returnId).toBe(opened[0]!.body.returnId);
      else expect([a.status, a.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    }
    expect((await returnsOf(orderId)).map((r) => r.status)).toEqual(['REQUESTED']);
    expect((await system.order(orderId)).status).toBe('RETURN_REQUESTED');
  });

  it('answers 200 APPROVED to each of 12 staff approving one return at once, as it answers an approval repeated after it: the order RETURNING, approved once', async () => {
    const { orderId } = await delivered('bob', [{ skuId: 'LAMP', qty: 2 }]);
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('bob'), body: { reason: 'broken', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    const path = `/v1/orders/${orderId}/returns/${asked.body.returnId}/approve`;
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => system.request('POST', path, { token: i % 2 === 0 ? shop : admin })));
    expect(answers.map((a) => `${a.status} ${a.body.status ?? a.body.code}`)).toEqual(Array.from({ length: 12 }, () => '200 APPROVED'));
    const order = await system.order(orderId);
    expect(order.status).toBe('RETURNING');
    expect(order.history.filter((h: any) => h.action === 'approve_return')).toHaveLength(1);
    const [theReturn] = await returnsOf(orderId);
    expect(theReturn.history.map((h: any) => h.to)).toEqual(['REQUESTED', 'APPROVED']);
  });

  it('lets one of 6 approvals and 6 refusals sent at once decide a return: the others refused 409 unless they ask for what won, the return and the order agreeing', async () => {
    const { orderId } = await delivered('cyd', [{ skuId: 'LAMP', qty: 2 }]);
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('cyd'), body: { reason: 'broken', items: [{ skuId: 'LAMP', qty: 2 }] } });
    const returnId = asked.body.returnId as string;
    const verbs = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? 'approve' : 'refuse'));
    const answers = await Promise.all(verbs.map((verb) => system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/${verb}`, { token: shop })));
    const [theReturn] = await returnsOf(orderId);
    const won = theReturn.status === 'APPROVED' ? 'approve' : 'refuse';
    expect(['APPROVED', 'REFUSED']).toContain(theReturn.status);
    expect(theReturn.history).toHaveLength(2);
    answers.forEach((a, i) => expect(`${verbs[i]} ${a.status}`).toBe(`${verbs[i]} ${verbs[i] === won ? 200 : 409}`));
    expect((await system.order(orderId)).status).toBe(won === 'approve' ? 'RETURNING' : 'DELIVERED');
  });

  it('restocks and refunds once when the warehouse reports one parcel received 12 times at once, then returns the rest: 3 lamps give back exactly what they paid, shipping with the last', async () => {
    const { orderId, order } = await delivered('dee', [{ skuId: 'LAMP', qty: 3 }]);
    const dee = system.token('dee');
    const paid = order.amounts.payableCents as number;
    // 3 × 24.00 less 7% (5.04) plus 5.00 shipping
    expect(paid).toBe(7_200 - 504 + 500);
    for (const [round, qty] of [
      [1, 2],
      [2, 1],
    ] as const) {
      const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: dee, headers: { 'idempotency-key': `dee-${round}` }, body: { reason: 'broken', items: [{ skuId: 'LAMP', qty }] } });
      expect(asked.status).toBe(202);
      const returnId = asked.body.returnId as string;
      expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: shop })).status).toBe(200);
      const receipts = await Promise.all(Array.from({ length: 12 }, () => receipt(orderId, returnId)));
      expect(receipts.map((r) => r.status)).toEqual(Array.from({ length: 12 }, () => 200));
      expect(receipts.filter((r) => r.body.changed)).toHaveLength(1);
      await system.waitForStatus(orderId, round === 1 ? 'DELIVERED' : 'RETURNED');
    }
    const returns = await allSettled(orderId, 2);
    expect(returns.reduce((sum, r) => sum + r.amountCents, 0)).toBe(paid);
    // the last lamp carries the parcel's shipping: 2 of 3 lamps' goods are floor(6696 × 2 / 3)
    expect(returns.map((r) => r.amountCents)).toEqual([4_464, 2_232 + 500]);
    expect(await paidBack(orderId)).toBe(paid);
    expect(await restocked(orderId)).toEqual(['LAMPx2', 'LAMPx1']);
    expect((await system.order(orderId)).amounts.refundedCents).toBe(paid);
  });

  it('offers each decision on a split order on the return it moves (one child’s return approved, the other’s to review), and closes the approved one whose parcel never came', async () => {
    const { orderId, partOf } = await delivered('fay', [
      { skuId: 'LAMP', qty: 1 },
      { skuId: 'RUG', qty: 1 },
    ]);
    const fay = system.token('fay');
    // the parent reads its first child's after-sales status (by id): the other child's return is asked first and approved
    const [first, other] = (['LAMP', 'RUG'] as const).slice().sort((a, b) => partOf[a]!.localeCompare(partOf[b]!));
    const ask = async (skuId: string) => (await system.request('POST', `/v1/orders/${orderId}/returns`, { token: fay, body: { reason: `no ${skuId}`, items: [{ skuId, qty: 1 }] } })).body.returnId as string;
    const approvedReturn = await ask(other!);
    const requestedReturn = await ask(first!);
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${approvedReturn}/approve`, { token: admin })).body.status).toBe('APPROVED');
    const offered = async (id: string) => (await system.request('GET', `/v1/orders/${id}/actions`, { token: admin })).body.actions.map((a: any) => [a.action, a.href.split('/').slice(-2).join('/')]);
    const toReview = [['approve_return', `${requestedReturn}/approve`], ['refuse_return', `${requestedReturn}/refuse`]];
    expect((await system.order(orderId)).status).toBe('RETURN_REQUESTED');
    // the order offers each child's decision, whatever child its own status follows
    expect(await offered(orderId)).toEqual(expect.arrayContaining([...toReview, ['close_return', `${approvedReturn}/close`]]));
    expect(await offered(orderId)).toHaveLength(3);
    expect(await offered(partOf[other!]!)).toEqual([['close_return', `${approvedReturn}/close`]]);
    expect(await offered(partOf[first!]!)).toEqual(toReview);

    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${approvedReturn}/close`, { token: admin })).body.status).toBe('CLOSED');
    expect((await system.order(partOf[other!]!)).status).toBe('DELIVERED');
    expect((await system.order(orderId)).status).toBe('RETURN_REQUESTED');
    expect(await offered(orderId)).toEqual(toReview);
  });

  it('refuses a receipt naming no return for an order with a closed return and an open one (whose parcel is it?), and takes it naming the return', async () => {
    const { orderId } = await delivered('gil', [{ skuId: 'LAMP', qty: 2 }]);
    const gil = system.token('gil');
    const ask = async (reason: string) => (await system.request('POST', `/v1/orders/${orderId}/returns`, { token: gil, body: { reason, items: [{ skuId: 'LAMP', qty: 1 }] } })).body.returnId as string;
    const first = await ask('scratched');
    await system.request('POST', `/v1/orders/${orderId}/returns/${first}/approve`, { token: shop });
    // closed by staff (a merchant may close it only once its parcel's window has run)
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${first}/close`, { token: admin })).body.status).toBe('CLOSED');
    const second = await ask('flickers');
    await system.request('POST', `/v1/orders/${orderId}/returns/${second}/approve`, { token: shop });
    // a lamp arrives without its label's return id: the first one's, late, or the second's?
    const unnamed = await system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', at: new Date().toISOString() });
    expect([unnamed.status, unnamed.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(unnamed.body.detail).toContain(first);
    // counted for staff, as a warehouse may give up on a 400: the parcel is then theirs to report
    expect((await system.request('GET', '/metrics')).body).toMatch(/^return_parcels_after_close_total(\{[^}]*\})? 1$/m);
    expect((await system.order(orderId)).status).toBe('RETURNING');
    expect(await restocked(orderId)).toEqual([]);
    // the first return's parcel, named: closed, it changes nothing
    expect((await receipt(orderId, first)).body.changed).toBe(false);
    expect((await receipt(orderId, second)).body.changed).toBe(true);
    const returns = await returnsOf(orderId);
    expect(returns.map((r) => [r.refundId, r.status === 'CLOSED' ? 'CLOSED' : 'received'])).toEqual([
      [first, 'CLOSED'],
      [second, 'received'],
    ]);
    expect(await restocked(orderId)).toEqual(['LAMPx1']);
  });

  it("returns both children of a split order at once (asked, approved and received in parallel, each receipt 6 times): the parent refunded exactly what it paid", async () => {
    const { orderId, partOf, order } = await delivered('eli', [
      { skuId: 'LAMP', qty: 3 },
      { skuId: 'RUG', qty: 2 },
    ]);
    const eli = system.token('eli');
    const paid = order.amounts.payableCents as number;
    const asked = await Promise.all(
      ['LAMP', 'RUG'].map((skuId) => system.request('POST', `/v1/orders/${orderId}/returns`, { token: eli, body: { reason: `bad ${skuId}`, items: [{ skuId, qty: skuId === 'LAMP' ? 3 : 2 }] } })),
    );
    expect(asked.map((a) => a.status)).toEqual([202, 202]);
    const [lampReturn, rugReturn] = asked.map((a) => a.body.returnId as string);
    const approved = await Promise.all([
      system.request('POST', `/v1/orders/${orderId}/returns/${lampReturn}/approve`, { token: shop }),
      system.request('POST', `/v1/orders/${orderId}/returns/${rugReturn}/approve`, { token: system.token('weaver', 'merchant') }),
    ]);
    expect(approved.map((a) => a.status)).toEqual([200, 200]);
    const receipts = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? receipt(partOf.LAMP!, lampReturn!) : receipt(partOf.RUG!, rugReturn!))),
    );
    expect(receipts.map((r) => r.status)).toEqual(Array.from({ length: 12 }, () => 200));
    expect(receipts.filter((r) => r.body.changed)).toHaveLength(2);
    await system.waitForStatus(orderId, 'RETURNED');
    const returns = await allSettled(orderId, 2);
    expect(returns.reduce((sum, r) => sum + r.amountCents, 0)).toBe(paid);
    expect(await paidBack(orderId)).toBe(paid);
    expect((await system.order(orderId)).amounts.refundedCents).toBe(paid);
    expect((await restocked(partOf.LAMP!)).concat(await restocked(partOf.RUG!))).toEqual(['LAMPx3', 'RUGx2']);
  });
});

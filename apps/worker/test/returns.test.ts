// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('returns inside the after-sales window', () => {
  let system: OrderSystem;
  let admin: string;

  beforeAll(async () => {
    // a 4 s after-sales window: long enough to ask for a return even on a loaded box (2 s left little to spare after
    // the steps before it), short enough to see it close
    system = await startOrderSystem('returns', { AFTER_SALES_WINDOW_MS: '4000' });
    admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    expect((await system.request('PUT', '/v1/admin/warehouses/wh-east/shipping', { token: admin, body: { feeCents: 500 } })).status).toBe(200);
  });
  afterAll(async () => system?.close());

  const stock = async () => (await system.request('GET', '/v1/admin/skus/LAMP', { token: admin })).body.stock;
  const warehouse = (orderId: string, event: string) => system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } });
  const delivered = async (buyer: string) => {
    const orderId = await system.checkout(buyer, [{ skuId: 'LAMP', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) expect((await warehouse(orderId, event)).body.callbackStatus).toBe(200);
    return orderId;
  };

  it('returns a whole delivered order: approved, received by the warehouse, restocked and refunded with its shipping, once', async () => {
    const dan = system.token('dan');
    const orderId = await delivered('dan');
    const before = await system.order(orderId);
    expect(before.amounts.payableCents).toBe(4_800 + 500);
    // the buyer signs for a parcel the carrier already reported delivered: a repeat, not a refusal
    const signed = await system.request('POST', `/v1/orders/${orderId}/confirm-receipt`, { token: dan });
    expect([signed.status, signed.body.status, signed.body.history.length]).toEqual([200, 'DELIVERED', before.history.length]);
    const body = { reason: 'does not fit the room', items: [{ skuId: 'LAMP', qty: 2 }] };
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: dan, body });
    expect([asked.status, asked.body.status]).toEqual([202, 'REQUESTED']);
    expect(asked.body.returns[0]).toMatchObject({ kind: 'return', amountCents: 5_300, items: [{ lineNo: 1, skuId: 'LAMP', qty: 2, cents: 5_300 }] });
    expect((await system.request('POST', `/v1/orders/${orderId}/returns`, { token: dan, body })).body.returnId).toBe(asked.body.returnId);
    expect((await system.order(orderId)).status).toBe('RETURN_REQUESTED');
    // what an operator sees of it (ReturnsAwaitingReview): one return waiting, asked for three days ago as far as the alert knows
    await sql`UPDATE refunds SET created_at = UTC_TIMESTAMP(3) - INTERVAL 3 DAY WHERE refund_id = ${asked.body.returnId}`.execute(system.env.db);
    const awaitingReview = async () => {
      const scraped = await system.workers.deps.metrics.exposition();
      const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(scraped)?.[1]);
      return { count: value('returns_awaiting_review'), waitedDays: Math.round(value('returns_awaiting_review_oldest_age_seconds') / 86_400) };
    };
    await expect.poll(awaitingReview).toEqual({ count: 1, waitedDays: 3 });
    // and how long the system lets a request wait before it approves it, which the alert measures that age against
    const window = /^return_review_window_seconds\{[^}]*\} (\S+)$/m.exec(await system.workers.deps.metrics.exposition())?.[1];
    expect(Number(window)).toBe(system.env.config.RETURN_REVIEW_WINDOW_MS / 1000);

    const approvePath = `/v1/orders/${orderId}/returns/${asked.body.returnId}/approve`;
    expect((await system.request('POST', approvePath, { token: system.token('other-shop', 'merchant') })).status).toBe(404);
    const approved = await system.request('POST', approvePath, { token: system.token('shop', 'merchant') });
    expect([approved.status, approved.body.status]).toEqual([200, 'APPROVED']);
    expect((await system.request('POST', approvePath, { token: system.token('shop', 'merchant') })).body.status).toBe('APPROVED');
    await expect.poll(awaitingReview).toEqual({ count: 0, waitedDays: 0 });
    expect((await system.order(orderId)).status).toBe('RETURNING');
    expect(await stock()).toEqual({ available: 8, reserved: 0, sold: 2 });

    expect((await warehouse(orderId, 'RETURN_RECEIVED')).body.callbackStatus).toBe(200);
    const returned = await system.waitForStatus(orderId, 'RETURNED');
    expect(returned.amounts.refundedCents).toBe(5_300);
    await system.waitForRefund(orderId);
    expect(await stock()).toEqual({ available: 10, reserved: 0, sold: 0 });
    // the return's own history: asked, approved, received, then paid back (SENT may be overtaken by the payment system's confirmation)
    const [paidBack] = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: dan })).body.items;
    const steps = paidBack.history.map((h: any) => `${h.from}>${h.to}/${h.actor}`);
    expect(steps.slice(0, 3)).toEqual(['null>REQUESTED/buyer', 'REQUESTED>APPROVED/merchant', 'APPROVED>PENDING/warehouse']);
    expect(steps.at(-1)).toMatch(/^(PENDING|SENT)>SUCCEEDED\/payment$/);
    const ledger = await system.env.db.selectFrom('stock_ledger').select(['kind', 'qty', 'reason']).where('order_id', '=', orderId).where('kind', '=', 'restock').execute();
    expect(ledger).toEqual([{ kind: 'restock', qty: 2, reason: 'return' }]);
    // the warehouse reporting the receipt again changes nothing
    expect((await warehouse(orderId, 'RETURN_RECEIVED')).body.callbackStatus).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const refunds = (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds;
    expect(refunds.map((r: any) => r.amountCents)).toEqual([5_300]);
    expect(await stock()).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect((await system.order(orderId)).amounts.refundedCents).toBe(5_300);
    // a staff member's approval retried (its answer lost) once the parcel was received and paid back: a repeat, the return
    // as it stands; a refusal now names the return's status, not the order's
    const approvedAgain = await system.request('POST', approvePath, { token: system.token('shop', 'merchant') });
    expect([approvedAgain.status, approvedAgain.body.status]).toEqual([200, 'SUCCEEDED']);
    const refused = await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/refuse`, { token: admin });
    expect([refused.status, refused.body.code, refused.body.detail]).toEqual([409, 'ILLEGAL_TRANSITION', `Action 'refuse_return' by admin is not allowed while return ${asked.body.returnId} is SUCCEEDED`]);
  });

  it('returns one of two lamps: refunds its share without the shipping, and the order stays with the buyer until its window closes', async () => {
    const ivy = system.token('ivy');
    const orderId = await delivered('ivy');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: ivy, body: { reason: 'one is enough', items: [{ skuId: 'LAMP', qty: 1 }] } });
    // the parcel reaches the warehouse before the merchant approved the return: "not yet", so the warehouse tries again later
    const early = await system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', at: new Date().toISOString() });
    expect([early.status, early.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect((await system.order(orderId)).status).toBe('RETURN_REQUESTED');
    await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/approve`, { token: system.token('shop', 'merchant') });
    expect((await warehouse(orderId, 'RETURN_RECEIVED')).body.callbackStatus).toBe(200);
    const back = await system.waitForStatus(orderId, 'DELIVERED');
    expect(back.history.at(-1)).toMatchObject({ from: 'RETURNING', action: 'receive_partial_return', to: 'DELIVERED', actor: 'warehouse' });
    await system.waitForRefund(orderId);
    const order = await system.order(orderId);
    expect([order.amounts.refundedCents, order.items[0].refundedQty]).toEqual([2_400, 1]);
    await system.waitForStatus(orderId, 'COMPLETED', 20_000);
  });

  it('pays back and restocks only the units a short return parcel held, and a later return of the rest adds up to what was paid', async () => {
    const kim = system.token('kim');
    const orderId = await delivered('kim');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: kim, body: { reason: 'both flicker', items: [{ skuId: 'LAMP', qty: 2 }] } });
    const returnId = asked.body.returnId as string;
    await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: system.token('shop', 'merchant') });
    const before = await stock();
    const received = (items: unknown) => system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', returnId, items, at: new Date().toISOString() });

    // counts the return does not hold are refused, and change nothing
    const refusals: Array<[unknown, RegExp]> = [
      [[{ skuId: 'LAMP', qty: 3 }], /names 2 unit\(s\) of SKU LAMP, not 3/],
      [[{ skuId: 'KETTLE', qty: 1 }], /has no unit of SKU KETTLE/],
      [[{ skuId: 'LAMP', qty: 0 }], /an empty parcel brings nothing back: close return/],
      [[], /items/],
    ];
    for (const [items, detail] of refusals) {
      const refused = await received(items);
      expect([refused.status, refused.body.code], JSON.stringify(items)).toEqual([400, 'VALIDATION_FAILED']);
      expect(refused.body.detail).toMatch(detail);
    }
    const notAReturn = await system.signedCallback('warehouse', { orderId, event: 'PACKED', items: [{ skuId: 'LAMP', qty: 1 }], at: new Date().toISOString() });
    expect([notAReturn.status, notAReturn.body.detail]).toEqual([400, 'returnId and items go with RETURN_RECEIVED only']);
    expect((await system.order(orderId)).status).toBe('RETURNING');

    // one lamp came back, as the warehouse counts it: its share of the line is paid back, without the shipping, and it alone goes back on sale
    const counted = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'RETURN_RECEIVED', returnId, items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(counted.body.callbackStatus).toBe(200);
    const back = await system.waitForStatus(orderId, 'DELIVERED');
    expect(back.history.at(-1)).toMatchObject({ from: 'RETURNING', action: 'receive_partial_return', to: 'DELIVERED', actor: 'warehouse', detail: 'RETURN_RECEIVED, 1 of 2 unit(s) back' });
    await system.waitForRefund(orderId);
    const [shortReturn] = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: kim })).body.items;
    expect([shortReturn.amountCents, shortReturn.items.map((item: any) => [item.skuId, item.qty, item.cents])]).toEqual([2_400, [['LAMP', 1, 2_400]]]);
    const afterShort = await system.order(orderId);
    expect([afterShort.amounts.refundedCents, afterShort.items[0].refundedQty]).toEqual([2_400, 1]);
    expect(await stock()).toEqual({ available: before.available + 1, reserved: 0, sold: before.sold - 1 });
    // the same receipt again changes nothing
    expect((await received([{ skuId: 'LAMP', qty: 1 }])).body.changed).toBe(false);

    // the lamp kept back is returned after all: it and the shipping make up exactly what the order paid
    const rest = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: kim, body: { reason: 'found the other', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(rest.status).toBe(202);
    await system.request('POST', `/v1/orders/${orderId}/returns/${rest.body.returnId}/approve`, { token: system.token('shop', 'merchant') });
    expect((await warehouse(orderId, 'RETURN_RECEIVED')).body.callbackStatus).toBe(200);
    const returned = await system.waitForStatus(orderId, 'RETURNED');
    expect(returned.amounts.refundedCents).toBe(returned.amounts.payableCents);
    expect(await stock()).toEqual({ available: before.available + 2, reserved: 0, sold: before.sold - 2 });
    const returns = async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: kim })).body.items.map((record: any) => [record.amountCents, record.status]);
    await expect.poll(returns, { timeout: 30_000 }).toEqual([
      [2_400, 'SUCCEEDED'],
      [2_900, 'SUCCEEDED'],
    ]);
  });

  it('refuses a partial return on review, and refuses any return once the window has closed', async () => {
    const eve = system.token('eve');
    const orderId = await delivered('eve');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: eve, body: { reason: 'one is enough', items: [{ skuId: 'LAMP', qty: 1 }] } });
    // one of two lamps: half of the goods, no shipping since the order does not come back whole
    expect(asked.body.returns[0]).toMatchObject({ amountCents: 2_400 });
    const refused = await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/refuse`, { token: admin });
    expect([refused.status, refused.body.status]).toEqual([200, 'REFUSED']);
    expect((await system.order(orderId)).status).toBe('DELIVERED');
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/approve`, { token: admin })).status).toBe(409);

    // the new window closes: the order completes, and a return is refused without changing anything
    await system.waitForStatus(orderId, 'COMPLETED', 20_000);
    const late = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: eve, body: { reason: 'changed my mind', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect([late.status, late.body.code]).toEqual([422, 'RETURN_WINDOW_CLOSED']);
    const order = await system.order(orderId);
    expect([order.status, order.amounts.refundedCents]).toEqual(['COMPLETED', 0]);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: eve })).body.items.map((r: any) => r.status)).toEqual(['REFUSED']);
  });

  it('refuses a return of a completed virtual order as an illegal step (409), not as a closed window: delivered with its payment, it never had one', async () => {
    await system.createSku({ skuId: 'VOUCHER', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', orderType: 'virtual' });
    const fay = system.token('fay');
    const orderId = await system.checkout('fay', [{ skuId: 'VOUCHER', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: fay, body: { method: 'card' } });
    await system.waitForStatus(orderId, 'COMPLETED');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: fay, body: { reason: 'code did not work', items: [{ skuId: 'VOUCHER', qty: 1 }] } });
    expect([asked.status, asked.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: fay })).body.items).toEqual([]);
    expect((await system.order(orderId)).status).toBe('COMPLETED');
  });
});

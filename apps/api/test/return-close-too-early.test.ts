// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Found by the abuse review (review-abuse.test.ts): a merchant closed an approved return as "never came back" the
 * moment it approved it; the parcel arriving after was only counted (ReturnParcelsAfterClose), the order DELIVERED
 * again and nothing paid back. A merchant closes a return no sooner than the system would (RETURN_PARCEL_WINDOW_MS
 * after its approval); staff may still close one at any time.
 */
describe('abuse: a merchant closing an approved return before its parcel could come back', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('return_close_early', { WORKER_CONCURRENCY: '16', AFTER_SALES_WINDOW_MS: '600000' });
    await system.createSku({ skuId: 'MUG', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const shop = () => system.token('shop', 'merchant');
  /** A delivered mug whose return the merchant approved. */
  const approvedReturn = async (buyer: string, reason: string) => {
    const { orderId } = await system.delivered(buyer, [{ skuId: 'MUG', qty: 1 }]);
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token(buyer), body: { reason, items: [{ skuId: 'MUG', qty: 1 }] } });
    expect(asked.status).toBe(202);
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/approve`, { token: shop() })).status).toBe(200);
    return { orderId, asked };
  };

  it('a merchant cannot close an approved return as never sent the moment it approved it, and keep the parcel and the money', { timeout: 60_000 }, async () => {
    const { orderId, asked } = await approvedReturn('trusting', 'cracked');
    // the buyer posts the mug back as told; a second later the merchant closes the return as "never came back"
    const closed = await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/close`, { token: shop() });
    // the parcel reaches the warehouse, naming the return on its label
    const received = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'RETURN_RECEIVED', returnId: asked.body.returnId } });
    await sleep(1_000);
    const after = await system.order(orderId);
    expect({ close: closed.status, receipt: received.body.callbackStatus, refundedCents: after.amounts.refundedCents }).toEqual({ close: 409, receipt: 200, refundedCents: after.amounts.payableCents });
  });

  it('tells the merchant from when it may close, offers it no close before then, and lets staff close at once', { timeout: 60_000 }, async () => {
    const { orderId, asked } = await approvedReturn('lost-parcel', 'wrong colour');
    const closed = await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/close`, { token: shop() });
    expect({ status: closed.status, code: closed.body.code, retryAfter: Number(closed.headers['retry-after']) > 0 }).toEqual({ status: 409, code: 'ILLEGAL_TRANSITION', retryAfter: true });
    expect(closed.body.detail).toMatch(/may close it as never sent from \d{4}-\d\d-\d\dT/);
    const offered = (token: string) => system.request('GET', `/v1/orders/${orderId}/actions`, { token }).then((answer) => answer.body.actions.map((a: any) => a.action));
    expect(await offered(shop())).not.toContain('close_return');
    const admin = system.token('ops', 'admin');
    expect(await offered(admin)).toContain('close_return');
    // staff (the carrier reported the parcel lost) close it at once
    const byStaff = await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/close`, { token: admin });
    expect({ status: byStaff.status, returnStatus: byStaff.body.status }).toEqual({ status: 200, returnStatus: 'CLOSED' });
  });
});

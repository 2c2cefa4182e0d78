// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const WINDOW_MS = 3_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the after-sales window', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('after_sales_window', { AFTER_SALES_WINDOW_MS: String(WINDOW_MS) });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('starts again when a return is refused: the order completes a whole window after the refusal, not at the first deadline', async () => {
    const orderId = await system.checkout('lou', [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('lou'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
    // the order says when it completes by itself: a window after its delivery
    const stepAt = (order: any, action: string) => Date.parse(order.history.findLast((h: any) => h.action === action).at);
    const delivered = await system.order(orderId);
    expect(delivered.nextTimer).toEqual({ action: 'complete', dueAt: new Date(stepAt(delivered, 'deliver') + WINDOW_MS).toISOString() });
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('lou'), body: { reason: 'too dim', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    // under review: approved by the system once RETURN_REVIEW_WINDOW_MS (2 days by default) has passed
    const requested = await system.order(orderId);
    expect(requested.nextTimer).toEqual({ action: 'approve_return', dueAt: new Date(stepAt(requested, 'request_return') + 2 * 86_400_000).toISOString() });
    // half the window later the merchant refuses: the buyer gets a new window from now
    await sleep(WINDOW_MS / 2);
    const refused = await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/refuse`, { token: system.token('shop', 'merchant') });
    expect([refused.status, refused.body.status]).toEqual([200, 'REFUSED']);
    const again = await system.order(orderId);
    expect(again.nextTimer).toEqual({ action: 'complete', dueAt: new Date(stepAt(again, 'refuse_return') + WINDOW_MS).toISOString() });

    const completed = await system.waitForStatus(orderId, 'COMPLETED', 20_000);
    expect(stepAt(completed, 'complete') - stepAt(completed, 'refuse_return')).toBeGreaterThanOrEqual(WINDOW_MS);
    expect(completed.nextTimer).toBeNull();
  });

  it('says what happens by itself next while the order waits for its buyer: expiry unpaid at the payment deadline, receipt confirmed AUTO_CONFIRM_MS after shipping', async () => {
    const orderId = await system.checkout('meg', [{ skuId: 'LAMP', qty: 1 }]);
    const unpaid = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect(unpaid.nextTimer).toEqual({ action: 'expire', dueAt: unpaid.paymentDeadline });
    // a new address leaves the deadline as it was
    const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('meg'), body: { address: { ...unpaid.address, line1: '2 New Street' } } });
    expect([moved.status, moved.body.nextTimer]).toEqual([200, { action: 'expire', dueAt: unpaid.paymentDeadline }]);
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('meg'), body: { method: 'card' } });
    const handedOver = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the warehouse has it: nothing moves the order on by itself
    expect(handedOver.nextTimer).toBeNull();
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } })).body.callbackStatus).toBe(200);
    const shipped = await system.order(orderId);
    const shippedAt = Date.parse(shipped.history.findLast((h: any) => h.action === 'ship').at);
    expect(shipped.nextTimer).toEqual({ action: 'auto_confirm', dueAt: new Date(shippedAt + system.env.config.AUTO_CONFIRM_MS).toISOString() });
  });
});

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
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('lou'), body: { reason: 'too dim', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    // half the window later the merchant refuses: the buyer gets a new window from now
    await sleep(WINDOW_MS / 2);
    const refused = await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/refuse`, { token: system.token('shop', 'merchant') });
    expect([refused.status, refused.body.status]).toEqual([200, 'REFUSED']);

    const completed = await system.waitForStatus(orderId, 'COMPLETED', 20_000);
    const at = (action: string) => Date.parse(completed.history.findLast((h: any) => h.action === action).at);
    expect(at('complete') - at('refuse_return')).toBeGreaterThanOrEqual(WINDOW_MS);
  });
});

import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/** How many returns are approved while their parcels' receipts are being retried: each a chance for the approval to commit mid-answer. */
const RETURNS = 30;

describe("the warehouse's RETURN_RECEIVED retried while the merchant approves the return", () => {
  let system: OrderSystem;
  let merchant: string;

  beforeAll(async () => {
    system = await startOrderSystem('return_received_beside_approval');
    merchant = system.token('shop', 'merchant');
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: RETURNS, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const warehouseEvent = (orderId: string, event: string) => system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } });

  /** A delivered order of one kettle whose buyer asked to return it: under review. */
  async function returnRequested(buyer: string): Promise<{ orderId: string; returnId: string }> {
    const orderId = await system.checkout(buyer, [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) expect((await warehouseEvent(orderId, event)).body.callbackStatus).toBe(200);
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token(buyer), body: { reason: 'leaks', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect(asked.status).toBe(202);
    return { orderId, returnId: asked.body.returnId };
  }

  it('takes every parcel once its return is approved, never answering one as a repeat and dropping it', async () => {
    const returns = await Promise.all(Array.from({ length: RETURNS }, (_, i) => returnRequested(`buyer-${i}`)));
    const refusedEarly = new Set<string>();
    // the warehouse sends each receipt (received before the approval) again at once until it is acknowledged, with its first `at`
    const receipts = returns.map(async ({ orderId }) => {
      const receipt = { orderId, event: 'RETURN_RECEIVED', at: new Date().toISOString() };
      for (;;) {
        const answer = await system.signedCallback('warehouse', receipt);
        if (answer.status !== 409) return answer;
        refusedEarly.add(orderId);
      }
    });
    await waitFor(async () => refusedEarly.size === RETURNS, { what: 'every receipt refused as early', intervalMs: 10 });
    const approvals = await Promise.all(returns.map(({ orderId, returnId }) => system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: merchant })));
    // each answered with its return as it stands: approved, or received already by its receipt's next try
    expect(approvals.map((approval) => [approval.status, ['APPROVED', 'PENDING', 'SENT', 'SUCCEEDED'].includes(approval.body.status)])).toEqual(returns.map(() => [200, true]));

    // each receipt taken: none answered as a repeat of an earlier one (changed false), which the warehouse would not send again
    expect((await Promise.all(receipts)).map((answer) => [answer.status, answer.body.changed])).toEqual(returns.map(() => [200, true]));
    for (const { orderId } of returns) {
      const returned = await system.waitForStatus(orderId, 'RETURNED');
      expect(returned.amounts.refundedCents).toBe(3_000);
    }
  });
});

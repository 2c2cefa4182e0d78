// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Found by the abuse review (review-abuse.test.ts): a refused or closed return put the order back to DELIVERED with a
 * whole new AFTER_SALES_WINDOW_MS, so a buyer asking near each window's end for returns never sent kept the window
 * open for ever (never completed: settlement and points waiting). A refused or closed return now gives back what
 * was left of the delivery's window, and at least RETURN_REVIEW_WINDOW_MS after its end when asked inside it.
 */
describe('abuse: an after-sales window kept open by returns never sent', () => {
  const WINDOW_MS = 4_000;
  let system: OrderSystem;

  beforeAll(async () => {
    // the review and parcel windows short, so the system's own timers run the loop within a test
    system = await startOrderSystem('return_window_not_renewed', { AFTER_SALES_WINDOW_MS: String(WINDOW_MS), RETURN_REVIEW_WINDOW_MS: '300', RETURN_PARCEL_WINDOW_MS: '300' });
    await system.createSku({ skuId: 'DRILL', priceCents: 12_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('refuses a return asked long after the delivery, however many returns the buyer asked for and never sent', { timeout: 60_000 }, async () => {
    const { orderId } = await system.delivered('eve', [{ skuId: 'DRILL', qty: 1 }]);
    const deliveredAt = Date.parse((await system.order(orderId)).history.findLast((h: any) => h.action === 'deliver').at);
    const ask = (reason: string) => system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('eve'), body: { reason, items: [{ skuId: 'DRILL', qty: 1 }] } });
    // near the end of each window the buyer asks for a return and sends nothing: the shop does nothing either, the
    // system approves it and, the parcel never coming, closes it, and the order is DELIVERED again. (The reviewer's
    // loop expected every round taken, as before the fix; now the window of the delivery is not renewed, so a round
    // asked after it, and its grace, is refused, and the loop ends there.)
    const rounds: number[] = [];
    for (let round = 0; round < 3; round++) {
      await sleep(WINDOW_MS * 0.7);
      const asked = await ask(`never sent ${round}`);
      rounds.push(asked.status);
      if (asked.status !== 202) {
        expect(asked.body.code).toBe('RETURN_WINDOW_CLOSED');
        break;
      }
      await waitFor(async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('eve') })).body.items.find((r: any) => r.refundId === asked.body.returnId)?.status === 'CLOSED', {
        what: 'the return approved and closed by the system',
        timeoutMs: 15_000,
      });
      await system.waitForStatus(orderId, 'DELIVERED');
    }
    // the first, inside the delivery's window, was taken
    expect(rounds[0]).toBe(202);
    const wait = deliveredAt + 2 * WINDOW_MS + 200 - Date.now();
    if (wait > 0) await sleep(wait);
    const late = Date.now() - deliveredAt;
    expect(late).toBeGreaterThan(2 * WINDOW_MS);
    // well past the after-sales window of the delivery, the buyer returns the (used) drill for all of its money
    const real = await ask('changed my mind, months later');
    expect({ late: late > WINDOW_MS, status: real.status, code: real.body.code }).toEqual({ late: true, status: 422, code: 'RETURN_WINDOW_CLOSED' });
  });
});

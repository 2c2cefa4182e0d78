import { holdRow, rowLockWaits, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A refund's confirmation that read the order before its last refund made it REFUNDING, and
 * commits after that last refund was confirmed: the last to commit closes the order.
 */
describe("a refund's confirmation held up while the order's last refund is opened, paid back and confirmed", () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // the held confirmation waits seconds for its row: within its statement deadline
    system = await startOrderSystem('refund_confirmed_beside_last_refund', { MYSQL_QUERY_TIMEOUT_MS: '20000' });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    await system?.close();
  });

  const refundOneLamp = async (orderId: string, reason: string) => {
    const asked = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('amy'), body: { reason, items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    return asked.body.refunds[0].refundId as string;
  };
  const refundReaches = (orderId: string, refundId: string, status: string) =>
    waitFor(async () => ((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('amy') })).body.items as Array<{ refundId: string; status: string }>).some((r) => r.refundId === refundId && r.status === status), {
      what: `refund ${refundId} ${status}`,
      intervalMs: 20,
    });

  it('closes the order REFUNDED, whichever confirmation commits last', async () => {
    const orderId = await system.checkout('amy', [{ skuId: 'LAMP', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('amy'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the payment system takes 1.5 s to accept a refund, and as long to confirm it: time to hold the first
    // refund's row before its confirmation comes, and for the last refund's whole round within the 5 s the
    // payment system waits for an answer to the held confirmation (then it sends it again, and the order
    // closes whatever the bug, as the repeat reads the order afresh)
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 1_500 } });

    const first = await refundOneLamp(orderId, 'one lamp too many');
    await refundReaches(orderId, first, 'SENT');
    // the first refund's confirmation reads the order (a lamp still with the buyer), then waits for the refund's row
    const row = await holdRow(system.env.db, 'refunds', 'refund_id', first);
    try {
      await waitFor(async () => (await rowLockWaits(system.env.db)).length === 1 || null, { what: "the first refund's confirmation waiting", timeoutMs: 10_000, intervalMs: 200 });
      // meanwhile the other lamp is refunded: the order REFUNDING, that refund paid back and confirmed, the first still open
      const last = await refundOneLamp(orderId, 'the other lamp is not needed either');
      await refundReaches(orderId, last, 'SUCCEEDED');
      expect((await system.order(orderId)).status).toBe('REFUNDING');
    } finally {
      await row.release();
    }

    const refunded = await system.waitForStatus(orderId, 'REFUNDED', 10_000);
    expect(refunded.amounts.refundedCents).toBe(4_000);
  });
});

import { buyerAddress, ledgerAvailable, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Once no job of the order is left to run on the payments and fulfilment queues (a failed one's retry included). */
const jobsDone = (system: OrderSystem, orderId: string) =>
  waitFor(
    async () => {
      const { fulfillment, payments } = system.workers.deps.queues;
      for (const queue of [fulfillment, payments]) {
        const open = await queue.getJobs(['active', 'waiting', 'delayed', 'prioritized']);
        if (open.some((job) => (job.data as { orderId?: string }).orderId === orderId)) return false;
      }
      return true;
    },
    { what: `the jobs of order ${orderId} to be done`, timeoutMs: 30_000 },
  );

/** The worker's `call` to Redis for `orderId` throws `message` the first time (its Redis timing out, its connection dropped), as the api's own inventory never does. */
function failOnce(system: OrderSystem, call: 'releaseStock' | 'restockStock', orderId: string, message: string) {
  const { inventory } = system.workers.deps;
  const original = inventory[call] as (orderId: string, ...rest: unknown[]) => Promise<unknown>;
  const fault = { failed: false, restore: () => void Object.assign(inventory, { [call]: original }) };
  Object.assign(inventory, {
    [call]: async (id: string, ...rest: unknown[]) => {
      if (id === orderId && !fault.failed) {
        fault.failed = true;
        throw new Error(message);
      }
      return original.call(inventory, id, ...rest);
    },
  });
  return fault;
}

describe('a worker whose Redis call failed once after its step committed in MySQL (Redis timing out, its connection dropped, the worker dying there)', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('redis_after_commit', {
      WAREHOUSE_SIM_STEP_MS: '0',
      // a failed job is retried after 1 s (then 2 s, ...)
      JOB_BACKOFF_MS: '1000',
      EXTERNAL_RETRY_DELAY_MS: '100',
      // the backstop sweep looks often, as it would in production after its minute: a lost job is enqueued again
      OVERDUE_SWEEP_INTERVAL_MS: '300',
    });
  });
  afterAll(async () => system?.close());

  it('puts the sold-out loser’s other units back on sale when the worker’s Redis release after his sold-out refund failed once (Redis timing out, or the worker dying there)', { timeout: 60_000 }, async () => {
    await system.createSku({ skuId: 'LAST-GLOBE', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
    await system.createSku({ skuId: 'LAMP', priceCents: 500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const ben = await system.checkout('ben', [{ skuId: 'LAST-GLOBE', qty: 1 }, { skuId: 'LAMP', qty: 2 }]);
    const amy = await system.checkout('amy', [{ skuId: 'LAST-GLOBE', qty: 1 }]);
    await Promise.all([system.waitForStatus(ben, 'PENDING_PAYMENT'), system.waitForStatus(amy, 'PENDING_PAYMENT')]);

    // the worker's Redis connection is dropped (CLIENT KILL) just as it gives Ben's units back after committing
    // his sold-out refund in MySQL: that one Redis call fails, the settle job is retried after its backoff
    const fault = failOnce(system, 'releaseStock', ben, 'Connection is closed.');
    try {
      expect((await system.payInRace({ orderId: amy, buyer: 'amy' }, { orderId: ben, buyer: 'ben' })).status).toBe(202);
      await system.waitForStatus(amy, 'IN_FULFILLMENT');
      const refunded = await system.waitForStatus(ben, 'REFUNDED', 30_000);
      expect(refunded.amounts.refundedCents).toBe(2_000);
      expect(fault.failed).toBe(true);
      // the settle job's retry (1 s backoff) has run by now, and every job of Ben's is done
      await jobsDone(system, ben);
      await sleep(1_500);
    } finally {
      fault.restore();
    }
    // the ledger gave Ben's two lamps back with the refund; Redis must too, without an operator's repair
    expect(await ledgerAvailable(system.env.db, 'LAMP')).toBe(10);
    expect(await system.stockOf('LAMP')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  it('gives a cancelled order’s coupon use back once the warehouse took its units out, though the worker’s Redis restock failed once right after', { timeout: 60_000 }, async () => {
    await system.createSku({ skuId: 'KETTLE', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const coupon = { code: 'WELCOME', kind: 'fixed', offCents: 500, minSpendCents: 1_000, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
    const checkout = (key: string) =>
      system.request('POST', '/v1/orders', { token: system.token('bea'), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress, couponCode: 'WELCOME' } });
    const placed = await checkout('bea-first');
    expect(placed.status).toBe(202);
    const bea = placed.body.orderId as string;
    await system.waitForStatus(bea, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${bea}/pay`, { token: system.token('bea'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(bea, 'IN_FULFILLMENT');

    // the worker's first Redis restock of Bea's kettle fails (Redis timing out, its connection dropped): its job is retried
    const fault = failOnce(system, 'restockStock', bea, 'Command timed out');
    try {
      // Bea cancels her paid order while the warehouse holds its parcel: the warehouse takes the kettle out, then she is paid back
      const cancelled = await system.request('POST', `/v1/orders/${bea}/cancel`, { token: system.token('bea'), body: { reason: 'changed my mind' } });
      expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
      await waitFor(async () => fault.failed, { what: 'the restock to have failed once' });
      expect((await system.waitForStatus(bea, 'REFUNDED', 30_000)).amounts.refundedCents).toBe(3_500);
    } finally {
      fault.restore();
    }
    // the fulfilment update's retry (1 s backoff) has run by now, and every job of Bea's is done
    await jobsDone(system, bea);
    await sleep(1_000);
    expect(await system.stockOf('KETTLE')).toEqual({ available: 10, reserved: 0, sold: 0 });
    // an order cancelled before it shipped gives its coupon use back (API.md, cancel): Bea may use WELCOME again
    const redemptions = await system.env.db.selectFrom('coupon_redemptions').select(['status']).where('order_id', '=', bea).execute();
    expect(redemptions).toEqual([{ status: 'restored' }]);
    const again = await checkout('bea-again');
    expect([again.status, again.body.code]).toEqual([202, undefined]);
  });
});

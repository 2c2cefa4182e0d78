import { buyerAddress, buyerOutsideBucketZero, holdRow, rowLockWaits, startRedisServer, waitFor, type RedisServer } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

/**
 * The longest the test pauses writes: lifted (CLIENT UNPAUSE) as soon as the cancel is answered,
 * it only has to outlast how long a loaded box takes from the row's release to the release script.
 */
const PAUSE_MS = 15_000;
const BUCKETS = 4;

describe('a cancel whose Redis release goes unanswered past REDIS_COMMAND_TIMEOUT_MS (a Redis too busy to answer in time)', () => {
  let redis: RedisServer;
  let system: OrderSystem;

  beforeAll(async () => {
    // its own server: the test pauses every client's writes on it
    redis = await startRedisServer();
    system = await startOrderSystem('unanswered_cancel_release', { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '300' });
  });

  afterAll(async () => {
    await system?.close();
    await redis?.remove();
  });

  it("answers 503, and the cancel sent again gives the buyer's once-per-buyer coupon back: their next order may use it", { timeout: 30_000 }, async () => {
    const admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'HOT', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement', stockBuckets: BUCKETS });
    const coupon = { code: 'ONCE', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
    // a buyer outside bucket 0: their order runs in their bucket, its coupon use is held in their own group
    const buyer = buyerOutsideBucketZero('canceller', BUCKETS);
    const checkout = (key: string) =>
      system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'HOT', qty: 1 }], address: buyerAddress, couponCode: 'ONCE' } });
    const placed = await checkout('first');
    expect(placed.status).toBe(202);
    await system.waitForStatus(placed.body.orderId, 'PENDING_PAYMENT');
    const cancel = () => system.request('POST', `/v1/orders/${placed.body.orderId}/cancel`, { token: system.token(buyer), body: { reason: 'changed my mind' } });

    // the cancel waits for the order's row while the test pauses Redis: its reads pass, its release script waits
    // past the command timeout and runs afterwards
    const row = await holdRow(system.env.db, 'orders', 'order_id', placed.body.orderId);
    const pauser = new Redis(redis.url);
    try {
      const unanswered = cancel();
      await waitFor(async () => (await rowLockWaits(system.env.db)).length > 0, { what: 'the cancel to wait for the order row', timeoutMs: 15_000, intervalMs: 200 });
      await pauser.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE');
      await row.release();
      const answer = await unanswered;
      expect([answer.status, answer.body.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    } finally {
      await row.release();
      // the release script left waiting runs now, before anything the api sends after this
      await pauser.call('CLIENT', 'UNPAUSE');
      pauser.disconnect();
    }

    // as API.md says: cancelling again finishes giving back what the first cancel did not
    const again = await cancel();
    expect([again.status, again.body.status]).toEqual([200, 'CANCELLED']);
    const next = await checkout('second');
    expect([next.status, next.body.code]).toEqual([202, undefined]);
    expect((await system.stockOf('HOT')).reserved).toBe(1);
  });
});

import { buyerAddress, createSku, createTestEnv, startRedisServer, type RedisServer, type TestEnv } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/**
 * The longest the test pauses writes: lifted (CLIENT UNPAUSE) as soon as every checkout is answered,
 * it only has to outlast how long a loaded box takes to bring all 12 to their first script.
 */
const PAUSE_MS = 15_000;

describe('a checkout whose Redis commands go unanswered past REDIS_COMMAND_TIMEOUT_MS (a Redis too busy to answer in time)', () => {
  let redis: RedisServer;
  let env: TestEnv;
  let api: ApiUnderTest;

  beforeAll(async () => {
    // its own server: the test pauses every client's writes on it
    redis = await startRedisServer();
    env = await createTestEnv('unanswered_coupon_claim', { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '300' });
    api = await startApi(env);
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
    await redis?.remove();
  });

  it('answers 503 and keeps the buyer their once-per-buyer coupon: the retry with the same Idempotency-Key is accepted with it', async () => {
    const admin = api.token('ops', 'admin');
    // a SKU in buckets: a buyer's cart runs in their bucket, their coupon use is claimed in their own group first
    await createSku(api, admin, { skuId: 'HOT', title: 'Hot', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement', stockBuckets: 4 });
    const coupon = { code: 'ONCE', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await api.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
    const buyers = Array.from({ length: 12 }, (_, i) => `paused-${i}`);
    const checkout = (buyer: string) =>
      api.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': `key-of-${buyer}` }, body: { items: [{ skuId: 'HOT', qty: 1 }], address: buyerAddress, couponCode: 'ONCE' } });

    const pauser = new Redis(redis.url);
    try {
      // scripts wait while writes are paused: every checkout's first script outlives the command timeout
      await pauser.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE');
      const unanswered = await Promise.all(buyers.map(checkout));
      expect(unanswered.map((answer) => answer.status)).toEqual(Array(buyers.length).fill(503));
    } finally {
      // the scripts left waiting run now, before anything the api sends after this
      await pauser.call('CLIENT', 'UNPAUSE');
      pauser.disconnect();
    }

    const retried = await Promise.all(buyers.map(checkout));
    expect(retried.map((answer) => [answer.status, answer.body.code])).toEqual(Array(buyers.length).fill([202, undefined]));
    expect(new Set(retried.map((answer) => answer.body.orderId)).size).toBe(buyers.length);
    // a use each, no more: a second key of the same buyer finds the coupon used
    const another = await api.request('POST', '/v1/orders', { token: api.token('paused-0'), headers: { 'idempotency-key': 'a-second-order' }, body: { items: [{ skuId: 'HOT', qty: 1 }], address: buyerAddress, couponCode: 'ONCE' } });
    expect([another.status, another.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  });
});

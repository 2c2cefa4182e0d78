import { buyerAddress, buyerOutsideBucketZero, createSku, createTestEnv, startFailingRedisLink, waitFor, type FailingRedisLink, type HttpAnswer, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const COMMAND_TIMEOUT_MS = 500;
const OUTAGE_MS = 1_500;
/** later than the answers to a command and to a read after it are waited for */
const LATE_MS = 3 * COMMAND_TIMEOUT_MS;
const BUCKETS = 4;
/** What the checkout's commands alone name: its claim the order's coupon hold (before it is given back), its reservation its bucket's accepted orders. */
const CLAIM = ':coupon-held:';
const RESERVATION = '}:accepted';

type Checkout = (key: string, qty?: number) => Promise<HttpAnswer>;

describe('a checkout in a bucket whose Redis commands run on Redis unanswered (REDIS_COMMAND_TIMEOUT_MS passed, the connection lost)', () => {
  let env: TestEnv;
  let proxy: FailingRedisLink;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('coupon_claim_link_faults');
    const redisUrl = new URL(env.config.REDIS_URL);
    proxy = await startFailingRedisLink({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    api = await startApi({ ...env, config: { ...env.config, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_COMMAND_TIMEOUT_MS: COMMAND_TIMEOUT_MS } });
    // the outages are the test's own: its connections' errors are expected
    api.deps.logRedisOutages({ warn: () => {}, info: () => {}, error: () => {} });
  });

  afterAll(async () => {
    await api?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  /** A SKU in buckets and a coupon; a buyer outside bucket 0 checks out with it (`checkout(key, qty)`). */
  async function saleOf(skuId: string, couponCode: string, { stock = 1_000, perBuyerLimit = 2 } = {}) {
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId, title: skuId, priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock, deduction: 'placement', stockBuckets: BUCKETS });
    const coupon = { code: couponCode, kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await api.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
    // outside bucket 0 their cart runs in their bucket, and their coupon use is claimed in their own group first
    const buyer = buyerOutsideBucketZero(`${skuId}-buyer`, BUCKETS);
    return (key: string, qty = 1) =>
      api.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId, qty }], address: buyerAddress, couponCode } });
  }

  /** The checkout under the key 'first', whose link breaks once Redis has run its first command naming `marker`. */
  async function checkoutCutOff(checkout: Checkout, marker: string, outageMs: number): Promise<HttpAnswer> {
    const outage = proxy.breakAfter(marker, outageMs);
    const answer = await checkout('first');
    await outage;
    await waitFor(async () => api.deps.redis.status === 'ready', { what: "the api's Redis connection back", timeoutMs: 10_000, intervalMs: 20 });
    // what the connection sent again or settled once back is done before this
    await api.deps.redis.ping();
    return answer;
  }

  /** Two uses, one each: the retry under the key has its order, the next key one more, the third none. */
  async function expectTwoUses(checkout: Checkout): Promise<void> {
    const retried = await checkout('first');
    expect([retried.status, retried.body.code]).toEqual([202, undefined]);
    expect((await checkout('first')).body.orderId).toBe(retried.body.orderId);
    const second = await checkout('second');
    expect([second.status, second.body.code]).toEqual([202, undefined]);
    const third = await checkout('third');
    expect([third.status, third.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  }

  it("answered later than the command timeout, and so the read after it: answers 503, gives the claim back once Redis answers, and the retry gets the reservation's own refusal", { timeout: 30_000 }, async () => {
    // a unit in each bucket: two are more than the buyer's bucket holds
    const checkout = await saleOf('LANTERN', 'LANTERN1', { stock: BUCKETS, perBuyerLimit: 1 });
    const late = proxy.delayAnswersAfter(RESERVATION, LATE_MS);
    const unanswered = await checkout('first', 2);
    expect([unanswered.status, unanswered.body.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    await late;

    // the buyer retries until the claim is settled; meanwhile its coupon use, held for an order that never was, answers CHECKOUT_IN_PROGRESS
    const retried = await waitFor(async () => ((answer) => answer.body.code !== 'CHECKOUT_IN_PROGRESS' && answer)(await checkout('first', 2)), {
      what: 'a retry answered other than in progress',
      timeoutMs: 5_000,
      intervalMs: 100,
    });
    expect([retried.status, retried.body.code]).toEqual([409, 'OUT_OF_STOCK']);
    const another = await checkout('second');
    expect([another.status, another.body.code]).toEqual([202, undefined]);
    expect((await checkout('third')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
  });

  it('lost for longer than the command timeout: answers 503, and the claim is given back once the connection is back', { timeout: 30_000 }, async () => {
    const checkout = await saleOf('LAMP', 'LAMP2');
    const unanswered = await checkoutCutOff(checkout, CLAIM, OUTAGE_MS);
    expect([unanswered.status, unanswered.body.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    await expectTwoUses(checkout);
  });

  it('lost and back at once, the claim sent again and run twice: it takes the use once', { timeout: 30_000 }, async () => {
    const checkout = await saleOf('KETTLE', 'KETTLE2');
    // answered by the second run when the connection came back in time, else 503
    const first = await checkoutCutOff(checkout, CLAIM, 0);
    expect([202, 503]).toContain(first.status);
    await expectTwoUses(checkout);
  });

  it('lost and back at once, its reservation sent again and run twice: the order keeps the use its claim took', { timeout: 30_000 }, async () => {
    const checkout = await saleOf('TORCH', 'TORCH2');
    const first = await checkoutCutOff(checkout, RESERVATION, 0);
    expect([202, 503]).toContain(first.status);
    await expectTwoUses(checkout);
  });
});

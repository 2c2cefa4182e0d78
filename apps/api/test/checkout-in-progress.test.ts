import { buyerAddress, buyerOutsideBucketZero, createSku, createTestEnv, startFailingRedisLink, type HttpAnswer, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/** 1 s: the claim is abandoned 5 s after it was made, well after a busy box has closed the killed api and sent the checkout that must find it under way. */
const COMMAND_TIMEOUT_MS = 1_000;
/** How long a claim no request took up may still be under way: five REDIS_COMMAND_TIMEOUT_MS. */
const CLAIM_ABANDONED_AFTER_MS = 5 * COMMAND_TIMEOUT_MS;
const BUCKETS = 4;
/** What a checkout's claim of its key alone names among the commands before its reservation: the order's coupon hold. */
const CLAIM = ':coupon-held:';

describe('a checkout of a SKU split into buckets under an Idempotency-Key whose first checkout is under way', () => {
  let env: TestEnv;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('checkout_in_progress', { REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) });
    api = await startApi(env);
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  /** A SKU in buckets and a once-per-buyer coupon; a buyer outside bucket 0 checks out with it (`checkout(key)`), through `through` (this api unless named). */
  async function saleOf(skuId: string, { stock = 1_000 } = {}) {
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId, title: skuId, priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock, deduction: 'placement', stockBuckets: BUCKETS });
    const coupon = { code: skuId, kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await api.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
    // outside bucket 0 their cart runs in their bucket, and their key and coupon use are claimed in their own group first
    const buyer = buyerOutsideBucketZero(`${skuId}-buyer`, BUCKETS);
    return (key: string, { qty = 1, through = api }: { qty?: number; through?: ApiUnderTest } = {}) =>
      through.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId, qty }], address: buyerAddress, couponCode: skuId } });
  }

  /** A checkout's answer, or once it is 503 CHECKOUT_IN_PROGRESS its retries' (`again`, as API.md tells clients to retry 503s), until one is answered otherwise. */
  async function settled(sent: Promise<HttpAnswer>, again: () => Promise<HttpAnswer>): Promise<HttpAnswer> {
    let answer = await sent;
    while (answer.status === 503 && answer.body.code === 'CHECKOUT_IN_PROGRESS') {
      await new Promise((resolve) => setTimeout(resolve, 50));
      answer = await again();
    }
    return answer;
  }

  it('answers two sent at once the one order, and two refused their refusal, never 422 COUPON_LIMIT_EXCEEDED', async () => {
    const checkout = await saleOf('LANTERN');
    const twice = () => checkout('twice');
    const accepted = await Promise.all([settled(twice(), twice), settled(twice(), twice)]);
    expect(accepted.map((answer) => answer.status)).toEqual([202, 202]);
    expect(accepted[1]!.body.orderId).toBe(accepted[0]!.body.orderId);

    // more than all buckets hold: the first is refused after its claim took the coupon's use
    const short = await saleOf('TORCH', { stock: 2 * BUCKETS });
    const tooMany = () => short('too-many', { qty: 2 * BUCKETS + 1 });
    const refused = await Promise.all([settled(tooMany(), tooMany), settled(tooMany(), tooMany)]);
    expect(refused.map((answer) => [answer.status, answer.body.code])).toEqual([
      [409, 'OUT_OF_STOCK'],
      [409, 'OUT_OF_STOCK'],
    ]);
  });

  it("answers 503 CHECKOUT_IN_PROGRESS under a key an api killed between its claim and its reservation left claimed, until the claim is abandoned: the retry is then accepted with the coupon the claim held", { timeout: 30_000 }, async () => {
    const checkout = await saleOf('LAMP');
    const redisUrl = new URL(env.config.REDIS_URL);
    const link = await startFailingRedisLink({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    void link.dieAfter(CLAIM);
    const killed = await startApi({ ...env, config: { ...env.config, REDIS_URL: `redis://127.0.0.1:${link.port}` } });
    killed.deps.logRedisOutages({ warn: () => {}, info: () => {}, error: () => {} });
    let claimedAt: number;
    try {
      claimedAt = Date.now();
      // its reservation never reaches Redis: the buyer's answer is its command timeout's
      const lost = await checkout('first', { through: killed });
      expect([lost.status, lost.body.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    } finally {
      await link.close();
      await killed.close();
    }

    const inProgress = await checkout('first');
    expect(inProgress.status).toBe(503);
    expect(inProgress.headers['retry-after']).toBe('1');
    expect(inProgress.headers['content-type']).toContain('application/problem+json');
    expect(inProgress.body).toMatchObject({ type: 'urn:order-system:problem:checkout-in-progress', title: 'Service Unavailable', status: 503, code: 'CHECKOUT_IN_PROGRESS', instance: '/v1/orders' });

    const retried = await settled(Promise.resolve(inProgress), () => checkout('first'));
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(CLAIM_ABANDONED_AFTER_MS);
    expect([retried.status, retried.body.code]).toEqual([202, undefined]);
    expect((await checkout('first')).body.orderId).toBe(retried.body.orderId);
    // the coupon's one use is the order's: another key finds it used
    const another = await checkout('second');
    expect([another.status, another.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  });
});

import { buyerAddress, buyerOutsideBucketZero, createSku, createTestEnv, startFailingRedisLink, startReplicatedRedis, waitFor, type HttpAnswer, type ReplicatedRedis, type TestEnv } from '@orders/testing';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const COMMAND_TIMEOUT_MS = 300;
const BUCKETS = 4;
/** What a checkout's claim of its key alone names among the commands before its reservation: the order's coupon hold. */
const CLAIM = ':coupon-held:';

/** Sent again, after the retry-after it was answered with, while it is answered 503 (as API.md tells clients), up to `times` more times. */
async function retriedAsTold(send: () => Promise<HttpAnswer>, times: number): Promise<HttpAnswer[]> {
  const answers = [await send()];
  while (answers.at(-1)!.status === 503 && answers.length <= times) {
    await sleep(Number(answers.at(-1)!.headers['retry-after']) * 1000);
    answers.push(await send());
  }
  return answers;
}

describe('a buyer who retries a checkout answered 503 with the same Idempotency-Key, as told, within the velocity rule (2 checkouts a minute)', () => {
  let env: TestEnv;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('checkout_retry_velocity', { RISK_VELOCITY_MAX_CHECKOUTS: '2', RISK_VELOCITY_WINDOW_MS: '60000', RATE_LIMIT_PER_USER: '50', REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS), SOLD_OUT_MEMORY_MS: '60000' });
    api = await startApi(env);
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'LANTERN', title: 'Lantern', priceCents: 2_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement', stockBuckets: BUCKETS });
    await createSku(api, admin, { skuId: 'MUG', title: 'Mug', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    await createSku(api, admin, { skuId: 'LAST-LAMP', title: 'Last lamp', priceCents: 4_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'placement' });
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const checkoutOf = (buyer: string, skuId: string, orderType?: string) => (key: string, through: ApiUnderTest = api) =>
    through.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress, ...(orderType ? { orderType } : {}) } });
  /** A buyer whose cart of a SKU split into buckets runs outside bucket 0: their key is claimed in their own group first. */
  const bucketedBuyer = (prefix: string) => buyerOutsideBucketZero(prefix, BUCKETS);

  it('counts a retry answered from the sold-out memory as the attempt it retries: its order again, and the next checkout taken', async () => {
    const lamp = checkoutOf('last-lamp-buyer', 'LAST-LAMP');
    expect((await lamp('lamp')).status).toBe(202);
    // another buyer finds it sold out: the api answers the SKU's checkouts from memory for a minute
    expect((await checkoutOf('late-buyer', 'LAST-LAMP')('too-late')).body.code).toBe('OUT_OF_STOCK');
    expect((await lamp('lamp')).status).toBe(202);
    expect((await checkoutOf('last-lamp-buyer', 'MUG')('mug')).status).toBe(202);
    const third = await checkoutOf('last-lamp-buyer', 'MUG')('mug-again');
    expect([third.status, third.body.code]).toEqual([403, 'RISK_REJECTED']);
    // a refusal from memory is final: that key sent again is a new attempt, over the rule
    expect((await checkoutOf('late-buyer', 'LAST-LAMP')('too-late')).body.code).toBe('OUT_OF_STOCK');
    expect((await checkoutOf('late-buyer', 'LAST-LAMP')('too-late')).body.code).toBe('RISK_REJECTED');
  });

  it('gets the order of its second checkout in a bucket, whose api died before its reservation; the third in the minute is refused', { timeout: 30_000 }, async () => {
    const checkout = checkoutOf(bucketedBuyer('lantern-buyer'), 'LANTERN');
    expect((await checkout('first')).status).toBe(202);
    const redisUrl = new URL(env.config.REDIS_URL);
    const link = await startFailingRedisLink({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    void link.dieAfter(CLAIM);
    const dying = await startApi({ ...env, config: { ...env.config, REDIS_URL: `redis://127.0.0.1:${link.port}` } });
    dying.deps.logRedisOutages({ warn: () => {}, info: () => {}, error: () => {} });
    try {
      // its key claimed and its attempt counted, its reservation never reaches Redis: 503 with retry-after
      const lost = await checkout('second', dying);
      expect([lost.status, lost.body.code, lost.headers['retry-after']]).toEqual([503, 'SERVICE_UNAVAILABLE', '1']);
    } finally {
      await link.close();
      await dying.close();
    }

    const answers = await retriedAsTold(() => checkout('second'), 5);
    expect(answers.map((answer) => [answer.status, answer.body.code])).toEqual([...Array(answers.length - 1).fill([503, 'CHECKOUT_IN_PROGRESS']), [202, undefined]]);
    const third = await checkout('third');
    expect([third.status, third.body.code]).toEqual([403, 'RISK_REJECTED']);
  });

  it('counts each checkout answered with a final refusal as an attempt, under one key too: the third in the minute is refused', async () => {
    // standard SKUs asked for as a presale: refused by the reservation, after the velocity rule
    for (const checkout of [checkoutOf('mistaken-buyer', 'MUG', 'presale'), checkoutOf(bucketedBuyer('mistaken-split-buyer'), 'LANTERN', 'presale')]) {
      const answers = [await checkout('again'), await checkout('again'), await checkout('again')];
      expect(answers.map((answer) => [answer.status, answer.body.code])).toEqual([
        [422, 'ORDER_TYPE_MISMATCH'],
        [422, 'ORDER_TYPE_MISMATCH'],
        [403, 'RISK_REJECTED'],
      ]);
    }
  });
});

describe('a buyer who retries a checkout answered 503 while the Redis replica did not acknowledge it (RESERVATION_REPLICA_ACKS=1), 2 checkouts a minute', () => {
  let redis: ReplicatedRedis;
  let env: TestEnv;
  let api: ApiUnderTest;

  beforeAll(async () => {
    redis = await startReplicatedRedis();
    env = await createTestEnv('checkout_retry_velocity_replicas', {
      REDIS_URL: redis.master.url,
      RESERVATION_REPLICA_ACKS: '1',
      RESERVATION_REPLICA_TIMEOUT_MS: '200',
      RISK_VELOCITY_MAX_CHECKOUTS: '2',
      RISK_VELOCITY_WINDOW_MS: '60000',
      RATE_LIMIT_PER_USER: '50',
    });
    api = await startApi(env);
    await createSku(api, api.token('ops', 'admin'), { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
    await redis?.remove();
  });

  it('is not refused its next checkout for the retries: each retry is the same attempt; the third in the minute is refused', { timeout: 20_000 }, async () => {
    const checkout = (key: string) =>
      api.request('POST', '/v1/orders', { token: api.token('patient-buyer'), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress } });
    await redis.replica.stop();
    const unacknowledged = await retriedAsTold(() => checkout('first'), 2);
    expect(unacknowledged.map((answer) => [answer.status, answer.body.code])).toEqual(Array(3).fill([503, 'SERVICE_UNAVAILABLE']));

    await redis.replica.start();
    await waitFor(redis.inSync, { what: 'the replica to sync again' });
    // a replica that is back may still be slow to acknowledge on a busy box: the buyer retries as told again
    const retries = await retriedAsTold(() => checkout('first'), 3);
    expect(retries.at(-1)!.status).toBe(202);
    // the request budget counts every request, retries included: what bounds a flood under one key
    expect(Number(retries.at(-1)!.headers['x-ratelimit-remaining'])).toBe(50 - unacknowledged.length - retries.length);
    expect((await checkout('second')).status).toBe(202);
    const third = await checkout('third');
    expect([third.status, third.body.code]).toEqual([403, 'RISK_REJECTED']);
    expect((await api.request('GET', '/v1/admin/skus/KETTLE', { token: api.token('ops', 'admin') })).body.stock).toEqual({ available: 98, reserved: 2, sold: 0 });
  });
});

import { buyerAddress, createSku, createTestEnv, startFailingRedisLink, type FailingRedisLink, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const COMMAND_TIMEOUT_MS = 300;
/** later than the reservation's answer and the error handler's answer after it are waited for */
const LATE_MS = 4 * COMMAND_TIMEOUT_MS;

describe('a checkout whose reservation script is answered later than REDIS_COMMAND_TIMEOUT_MS (10 requests and 2 checkouts a minute per buyer)', () => {
  let env: TestEnv;
  let link: FailingRedisLink;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('late_checkout_counted_once', { RATE_LIMIT_PER_USER: '10', RATE_LIMIT_WINDOW_MS: '60000', RISK_VELOCITY_MAX_CHECKOUTS: '2', RISK_VELOCITY_WINDOW_MS: '60000' });
    const redisUrl = new URL(env.config.REDIS_URL);
    link = await startFailingRedisLink({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    api = await startApi({ ...env, config: { ...env.config, REDIS_URL: `redis://127.0.0.1:${link.port}`, REDIS_COMMAND_TIMEOUT_MS: COMMAND_TIMEOUT_MS } });
    // the late answers are the test's own: its connection's timeouts are expected
    api.deps.logRedisOutages({ warn: () => {}, info: () => {}, error: () => {} });
    await createSku(api, api.token('ops', 'admin'), { skuId: 'MUG', title: 'Mug', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
  });

  afterAll(async () => {
    await api?.close();
    await link?.close();
    await env?.cleanup();
  });

  const checkout = (key: string) => api.request('POST', '/v1/orders', { token: api.token('slow-sale-buyer'), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'MUG', qty: 1 }], address: buyerAddress } });

  it('answers 503, and counts that request once: its retry gets the order with 8 requests left, and the buyer can still make a second checkout', { timeout: 30_000 }, async () => {
    // the key alone names the reservation script among the checkout's commands
    const late = link.delayAnswersAfter('mug-first', LATE_MS);
    const unanswered = await checkout('mug-first');
    expect([unanswered.status, unanswered.body.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    await late;
    // whatever the api sent after the late script has run once this is answered
    await api.deps.redis.ping();

    // the script ran late and accepted the order: the retry is its replay, the second request of the window
    const retried = await checkout('mug-first');
    expect([retried.status, retried.headers['x-ratelimit-remaining']]).toEqual([202, '8']);
    const second = await checkout('mug-second');
    expect([second.status, second.body.code, second.headers['x-ratelimit-remaining']]).toEqual([202, undefined, '7']);
    const third = await checkout('mug-third');
    expect([third.status, third.body.code]).toEqual([403, 'RISK_REJECTED']);
  });
});

import { createTestEnv, startTcpProxy, type TcpProxy, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

describe('request budgets while the api cannot reach Redis', () => {
  let env: TestEnv;
  let proxy: TcpProxy;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('rate_limit_redis_away', { RATE_LIMIT_PER_USER: '4', RATE_LIMIT_PER_IP: '3', RATE_LIMIT_WINDOW_MS: '60000' });
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    api = await startApi({ ...env, config: { ...env.config, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_COMMAND_TIMEOUT_MS: 500 } });
  });
  afterAll(async () => {
    await api?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  it('are counted by the api process alone, so a flood still meets its limit on the way to MySQL, and the refusal is the same 429', { timeout: 30_000 }, async () => {
    await proxy.cut();
    try {
      // the buyer's order list is read from MySQL, which is there (without their orders still in the queue, in Redis)
      for (let i = 1; i <= 4; i++) {
        const served = await api.request('GET', '/v1/orders', { token: api.token('ivy') });
        expect([served.status, served.headers['x-ratelimit-remaining']], `request ${i}`).toEqual([200, String(4 - i)]);
      }
      const refused = await api.request('GET', '/v1/orders', { token: api.token('ivy') });
      expect([refused.status, refused.body.code]).toEqual([429, 'RATE_LIMITED']);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // anonymous requests spend their address's budget
      for (let i = 1; i <= 3; i++) expect((await api.request('GET', '/v1/orders')).status, `anonymous request ${i}`).toBe(401);
      expect((await api.request('GET', '/v1/orders')).status).toBe(429);
      // another buyer has a budget of their own
      expect((await api.request('GET', '/v1/orders', { token: api.token('jay') })).status).toBe(200);
      const metrics = await api.request('GET', '/metrics');
      expect(Number(/^request_budgets_unchecked_total\{[^}]*\} (\d+)/m.exec(String(metrics.body))?.[1])).toBeGreaterThanOrEqual(10);
    } finally {
      await proxy.restore();
    }
  });
});

import { createTestEnv, holdTable, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/**
 * What an api does when MySQL stalls under load. A statement past MYSQL_QUERY_TIMEOUT_MS is
 * answered 503 in that time (one request at a time); here many buyers poll at once, as after a
 * sale, while MySQL does not answer, and the pool has far fewer connections than requests: a
 * request's wait for a connection has the same deadline as its statement (NoConnectionInTime).
 */
describe('an api whose MySQL stalls while many buyers read their orders at once', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  const TIMEOUT_MS = 300;
  const POOL = 2;
  const READERS = 40;

  beforeAll(async () => {
    env = await createTestEnv('orders_read_mysql_stall');
    api = await startApi({ ...env, config: { ...env.config, MYSQL_QUERY_TIMEOUT_MS: TIMEOUT_MS, MYSQL_POOL_SIZE: POOL } }, { connections: READERS + 5 });
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it('answers every read 503 within about MYSQL_QUERY_TIMEOUT_MS, not after a wait that grows with the number of requests queued for a pool connection', { timeout: 120_000 }, async () => {
    const held = await holdTable(env.db, 'orders');
    const started = Date.now();
    let answers: Array<{ status: number; code: unknown; retryAfter: unknown; ms: number }>;
    try {
      answers = await Promise.all(
        Array.from({ length: READERS }, async (_, i) => {
          const answer = await api.request('GET', '/v1/orders', { token: api.token(`stall-${i}`) });
          return { status: answer.status, code: (answer.body as { code?: unknown }).code, retryAfter: answer.headers['retry-after'], ms: Date.now() - started };
        }),
      );
    } finally {
      await held.release();
    }
    const slowest = Math.max(...answers.map((answer) => answer.ms));
    expect(new Set(answers.map(({ status, code, retryAfter }) => `${status} ${String(code)} retry-after ${String(retryAfter)}`))).toEqual(new Set(['503 SERVICE_UNAVAILABLE retry-after 1']));
    // each read's own statement would end after 300 ms: a buyer waits for it, not for 39 others' statements to time out first
    expect(slowest).toBeLessThan(3 * TIMEOUT_MS + 1_000);
  });

  it('answers reads again once MySQL does: the connections the pool handed over after their callers gave up went back to it', { timeout: 60_000 }, async () => {
    const reads = await Promise.all(Array.from({ length: 4 * POOL }, (_, i) => api.request('GET', '/v1/orders', { token: api.token(`after-${i}`) })));
    expect(reads.map((read) => read.status)).toEqual(reads.map(() => 200));
  });
});

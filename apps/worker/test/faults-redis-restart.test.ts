import { buyerAddress, settledSaleInvariants, createSku, createTestEnv, signToken, spawnApp, startApiProcess, startRedisServer, waitFor, type ApiProcess, type HttpAnswer, type RedisServer, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// 500 checkouts answered before Redis goes, a thousand after it is back
const BUYERS = 1_500;
const STOCK = 2_500;

describe.each([
  // a restart as systemd or an operator does it: SIGTERM, Redis writes its AOF out and exits
  { how: 'stopped', name: 'stopped', appendfsync: 'everysec', takeDown: (server: RedisServer) => server.stop() },
  // a crash of the Redis process, with the AOF policy the compose file ships: what Redis acknowledged
  // is on disk. With `everysec` a slow fsync lets Redis put its writes off for up to two seconds while
  // it keeps replying, and a crash then loses them (README), which this sale would not survive
  { how: 'killed with SIGKILL', name: 'killed', appendfsync: 'always', takeDown: (server: RedisServer) => server.kill() },
])('Redis $how in the middle of a sale (its own redis-server, AOF appendfsync $appendfsync)', ({ name, appendfsync, takeDown }) => {
  let redis: RedisServer;
  let env: TestEnv;
  let api: ApiProcess;
  let worker: SpawnedProcess;

  beforeAll(async () => {
    redis = await startRedisServer(['--appendfsync', appendfsync]);
    env = await createTestEnv(`faults_redis_${name}`, {
      REDIS_URL: redis.url,
      WORKER_QUEUES: 'orders,timers',
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      STRANDED_ORDER_AFTER_MS: '3000',
      SWEEP_INTERVAL_MS: '1000',
    });
    api = await startApiProcess(env.env, 60);
    worker = spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' });
  });

  afterAll(async () => {
    await worker?.kill();
    await api?.close();
    // the key scan needs the server, so the env goes before it
    await env?.cleanup();
    await redis?.remove();
  });

  it('answers 503 problem details while Redis is gone, recovers by itself, and loses no order it acknowledged', { timeout: 120_000 }, async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'HOT-CONSOLE', title: 'Console', priceCents: 39_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: STOCK, deduction: 'placement' });

    // each buyer retries a 503 with the same Idempotency-Key, as API.md tells clients to
    const unavailable: HttpAnswer[] = [];
    const finalAnswers: HttpAnswer[] = [];
    let next = 0;
    const buyerLoop = async () => {
      for (let i = next++; i < BUYERS; i = next++) {
        const token = signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' });
        for (;;) {
          const answer = await api.request('POST', '/v1/orders', { token, headers: { 'idempotency-key': `checkout-${i}` }, body: { items: [{ skuId: 'HOT-CONSOLE', qty: 1 }], address: buyerAddress } });
          if (answer.status !== 503) {
            finalAnswers.push(answer);
            break;
          }
          unavailable.push(answer);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const sale = Promise.all(Array.from({ length: 40 }, buyerLoop));

    await waitFor(async () => finalAnswers.length >= 500, { what: '500 checkouts answered before the restart' });
    await takeDown(redis);
    await waitFor(async () => unavailable.length >= 20, { what: 'checkouts answered 503 while Redis is gone' });
    const ready = await api.request('GET', '/health/ready');
    expect([ready.status, ready.body.redis]).toEqual([503, 'down']);
    const checkoutReady = await api.request('GET', '/health/checkout');
    expect([checkoutReady.status, checkoutReady.body.redis]).toEqual([503, 'down']);
    // reads from MySQL are still served, without their budget check, and /metrics says so
    const read = await api.request('GET', '/v1/orders', { token: signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-1', role: 'buyer' }) });
    expect(read.status).toBe(200);
    const metrics = await api.request('GET', '/metrics');
    expect(Number(/^request_budgets_unchecked_total\{[^}]*\} (\d+)/m.exec(metrics.body)?.[1])).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const answeredWhileDown = finalAnswers.length;
    await redis.start();

    await sale;
    expect(finalAnswers.length).toBe(BUYERS);
    expect(finalAnswers.filter((a) => a.status !== 202)).toEqual([]);
    expect(unavailable.every((a) => a.status === 503 && a.body.code === 'SERVICE_UNAVAILABLE' && String(a.headers['content-type']).startsWith('application/problem+json'))).toBe(true);
    expect(unavailable.every((a) => a.headers['retry-after'] !== undefined)).toBe(true);
    // nothing was accepted while Redis was away: the 202s kept coming only once it was back
    expect(answeredWhileDown).toBeLessThan(BUYERS);
    expect((await api.request('GET', '/health/ready')).status).toBe(200);
    expect((await api.request('GET', '/health/checkout')).status).toBe(200);

    const acceptedIds = finalAnswers.map((a) => a.body.orderId as string);
    const persisted = async () => Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    await waitFor(async () => (await persisted()) === BUYERS, {
      what: `all ${BUYERS} orders in MySQL`,
      timeoutMs: 60_000,
      intervalMs: 250,
      // this timed out once in a full run (2026-12-01), its cause not captured: what to look at next time
      explain: async () => `${await persisted()} in MySQL; the worker's last output:\n${worker.output().slice(-20_000)}\nredis-server:\n${redis.output()}`,
    });
    const invariants = await settledSaleInvariants({ db: env.db, redis: env.redis, keyPrefix: env.config.REDIS_KEY_PREFIX, acceptedOrderIds: acceptedIds, initialStock: { 'HOT-CONSOLE': STOCK }, paymentWaitMs: env.config.PAYMENT_TIMEOUT_MS });
    expect(invariants.violations).toEqual([]);
    expect(invariants.stock['HOT-CONSOLE']!.redis).toEqual({ available: STOCK - BUYERS, reserved: BUYERS, sold: 0 });
  });
});

import { buyerAddress, createSku, createTestEnv, holdTable, httpClient, signToken, spawnApp, startApiProcess, tableLockWaits, waitFor, type ApiProcess, type HttpClient, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Every route of ../shared/API.md, as OpenAPI writes its paths. */
const API_MD_ROUTES = [
  'post /v1/admin/skus',
  'put /v1/admin/skus/{skuId}/stock',
  'get /v1/admin/skus/{skuId}',
  'post /v1/orders',
  'get /v1/orders/{orderId}',
  'get /v1/orders',
  'post /v1/orders/{orderId}/pay',
  'post /v1/orders/{orderId}/cancel',
  'patch /v1/orders/{orderId}/address',
  'post /v1/orders/{orderId}/confirm-receipt',
  'post /v1/orders/{orderId}/refunds',
  'post /v1/orders/{orderId}/returns',
  'get /v1/orders/{orderId}/refunds',
  'post /v1/callbacks/payment',
  'post /v1/callbacks/warehouse',
  'get /metrics',
  'get /health/live',
  'get /health/ready',
  'get /health/checkout',
];

/**
 * The drain delay of the api that is given SIGTERM with one: long enough for the test's reads and
 * checkout during it to all be answered on a loaded box, each of which takes a moment there.
 */
const DRAIN_MS = 5_000;

describe('operating the processes: the spec, logs and SIGTERM', () => {
  let env: TestEnv;
  let api: ApiProcess;
  /** the api processes of the tests that stop their own: with LOG_CHECKOUT_REQUESTS, given SIGTERM under load, given SIGTERM with a drain delay */
  let verbose: ApiProcess, closing: ApiProcess, draining: ApiProcess;
  const running = new Set<ApiProcess>();
  const close = async (own: ApiProcess) => {
    running.delete(own);
    await own.close();
  };
  const workers: SpawnedProcess[] = [];
  const buyer = (i: number) => signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' });
  const checkout = (http: HttpClient, i: number) =>
    http.request('POST', '/v1/orders', {
      token: buyer(i),
      headers: { 'idempotency-key': `graceful-${i}` },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress },
    });
  const persisted = async () => (await env.db.selectFrom('orders').select('order_id').execute()).map((row) => row.order_id);

  beforeAll(async () => {
    env = await createTestEnv('graceful_operations', { LOG_LEVEL: 'info', WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' });
    // each process takes seconds to start: all the tests' processes start side by side, a worker to
    // persist what they accept among them
    workers.push(spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' }));
    const started = await Promise.allSettled([
      startApiProcess(env.env),
      startApiProcess({ ...env.env, LOG_CHECKOUT_REQUESTS: 'true' }),
      startApiProcess({ ...env.env, SHUTDOWN_GRACE_MS: '10000' }),
      startApiProcess({ ...env.env, SHUTDOWN_DRAIN_DELAY_MS: String(DRAIN_MS) }),
    ]);
    for (const result of started) if (result.status === 'fulfilled') running.add(result.value);
    for (const result of started) if (result.status === 'rejected') throw result.reason;
    [api, verbose, closing, draining] = started.map((result) => (result as PromiseFulfilledResult<ApiProcess>).value) as [ApiProcess, ApiProcess, ApiProcess, ApiProcess];
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5_000, deduction: 'placement' });
  });

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.kill()));
    await Promise.all([...running].map(close));
    await env?.cleanup();
  });

  it('documents every route of API.md in the OpenAPI spec at /docs/json', async () => {
    const spec = await api.request('GET', '/docs/json');
    expect(spec.status).toBe(200);
    const documented = Object.entries(spec.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method} ${path}`),
    );
    expect(API_MD_ROUTES.filter((route) => !documented.includes(route))).toEqual([]);
    // the signed callbacks take no bearer token: a client generated from the spec must not send one
    for (const path of ['/v1/callbacks/payment', '/v1/callbacks/warehouse']) expect(spec.body.paths[path].post.security, path).toEqual([]);
    expect(spec.body.paths['/v1/orders'].post.security).toBeUndefined();
  });

  it('logs JSON lines; a checkout writes its request lines only with LOG_CHECKOUT_REQUESTS, and then they carry its order id', async () => {
    const checkoutLines = (output: string) => output.split('\n').filter((line) => line.includes('"method":"POST"') && line.includes('"url":"/v1/orders"'));
    // as shipped: a sale's checkouts stay out of the log, other routes' requests are in it
    const quiet = await checkout(api, 0);
    expect(quiet.status).toBe(202);
    expect((await api.request('GET', '/health/live')).status).toBe(200);
    await waitFor(async () => api.process.output().includes('"url":"/health/live"'), { what: 'the health check in the log' });
    expect(checkoutLines(api.process.output())).toEqual([]);
    expect(api.process.output()).not.toContain(quiet.body.orderId as string);
    // a request about an order: its lines after the incoming one (whose url has the id) name the order
    const statusUrl = `/v1/orders/${quiet.body.orderId as string}`;
    expect((await api.request('GET', statusUrl, { token: buyer(0) })).status).toBe(200);
    const logLines = () => api.process.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { reqId?: string; orderId?: string; msg: string; req?: { url: string } });
    const readId = () => logLines().find((line) => line.req?.url === statusUrl)?.reqId;
    await waitFor(async () => logLines().some((line) => line.reqId === readId() && line.msg === 'request completed'), { what: 'the order read in the log' });
    expect(logLines().filter((line) => line.reqId === readId()).map((line) => [line.msg, line.orderId])).toEqual([
      ['incoming request', undefined],
      ['request completed', quiet.body.orderId],
    ]);

    try {
      const answer = await checkout(verbose, 5_000);
      expect(answer.status).toBe(202);
      const orderId = answer.body.orderId as string;
      await waitFor(async () => verbose.process.output().includes(orderId), { what: 'a log line with the order id' });
      expect(checkoutLines(verbose.process.output())).toHaveLength(1);
      const lines = verbose.process.output().split('\n').filter((line) => line.includes(orderId));
      for (const line of lines) expect(JSON.parse(line)).toMatchObject({ orderId, level: expect.any(Number) });
      expect(lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toContain('request completed');
    } finally {
      await close(verbose);
    }
  });

  it('an api given SIGTERM answers what it took in, exits 0, and every order it accepted is kept', async () => {
    const own = closing;
    let answeredSoFar = 0;
    const answers: Array<Promise<{ status: number; body: { orderId?: string } } | 'not sent'>> = [];
    for (let i = 1; i <= 400; i++) {
      answers.push(
        checkout(own, i).then(
          (answer) => ((answeredSoFar += 1), answer),
          () => 'not sent' as const,
        ),
      );
    }
    await waitFor(async () => answeredSoFar >= 20, { what: 'the first answers', intervalMs: 1 });
    const exitCode = own.process.stop();
    const settled = await Promise.all(answers);
    const shutdownLines = () => own.process.output().split('\n').filter((line) => /shut|grace|drained/.test(line));
    expect({ exitCode: await exitCode, log: shutdownLines() }).toMatchObject({ exitCode: 0 });
    expect(shutdownLines().join('\n')).toContain('shutting down');
    await close(own);

    const answered = settled.filter((a) => a !== 'not sent');
    expect(answered.length).toBeGreaterThan(0);
    // a request the closing api took in got its real answer, never a 5xx
    expect(answered.filter((a) => a.status !== 202)).toEqual([]);

    // the worker started with the processes persists them
    const accepted = answered.map((a) => a.body.orderId as string);
    await waitFor(
      async () => {
        const ids = new Set(await persisted());
        return accepted.every((id) => ids.has(id));
      },
      { what: 'every accepted order in MySQL', timeoutMs: 30_000 },
    );
  });

  it('a worker given SIGTERM finishes its jobs and exits 0; the next worker finds nothing half-done', async () => {
    await Promise.all(workers.splice(0).map((earlier) => earlier.stop()));
    const worker = spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' });
    workers.push(worker);
    await waitFor(async () => worker.output().includes('worker started'), { what: 'the worker to start' });
    const before = (await persisted()).length;
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => checkout(api, 1_000 + i)));
    expect(answers.every((a) => a.status === 202)).toBe(true);
    await waitFor(async () => (await persisted()).length > before, { what: 'the worker to start persisting' });
    expect(await worker.stop()).toBe(0);
    expect(worker.output()).toContain('shutting down');

    workers.push(spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' }));
    await waitFor(async () => (await persisted()).length === before + 300, { what: 'all 300 orders in MySQL', timeoutMs: 30_000 });
    const ids = await persisted();
    expect(new Set(ids).size).toBe(ids.length);
    // a batch leaves the accepted set just after its commit: the last one may be a moment behind its rows
    await waitFor(async () => (await env.redis.zcard(`${env.config.REDIS_KEY_PREFIX}{g0}:accepted`)) === 0, { what: 'the accepted set to empty' });
  });

  it("a worker whose job outlasts SHUTDOWN_GRACE_MS exits 1 and logs what it waited for; the next worker persists the order once", async () => {
    await Promise.all(workers.splice(0).map((earlier) => earlier.stop()));
    const worker = spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0', SHUTDOWN_GRACE_MS: '1000' });
    workers.push(worker);
    await waitFor(async () => worker.output().includes('worker started'), { what: 'the worker to start' });
    const before = (await persisted()).length;
    // another session holds the orders table (a long ALTER TABLE): the persist job waits on it
    const held = await holdTable(env.db, 'orders');
    try {
      expect((await checkout(api, 2_000)).status).toBe(202);
      await waitFor(async () => (await tableLockWaits(env.db)) > 0, { what: 'the persist job waiting for the orders table' });
      expect(await worker.stop()).toBe(1);
    } finally {
      await held.release();
    }
    const graceOver = worker.output().split('\n').filter((line) => line.includes('shutdown grace period over')).map((line) => JSON.parse(line) as { graceMs: number; waitingFor: string });
    expect(graceOver).toEqual([expect.objectContaining({ graceMs: 1_000, waitingFor: expect.stringMatching(/\bthe workers of (.*; )?orders \(persist-order\S* \S+\)/) })]);

    // the job's lock lapses (2 s here) and the next worker runs it again
    workers.push(spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' }));
    await waitFor(async () => (await persisted()).length === before + 1, { what: 'the order in MySQL', timeoutMs: 30_000 });
    const ids = await persisted();
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('an api given SIGTERM answers readiness 503 for SHUTDOWN_DRAIN_DELAY_MS (5 s) while it still serves checkouts, new connections too, then exits 0', async () => {
    const own = draining;
    const signalled = Date.now();
    const exitCode = own.process.stop();
    await waitFor(async () => (await own.request('GET', '/health/ready')).status === 503, { what: 'readiness to answer 503', timeoutMs: DRAIN_MS, intervalMs: 10 });
    expect((await own.request('GET', '/health/ready')).body).toEqual({ status: 'shutting_down' });
    expect((await own.request('GET', '/health/checkout')).status).toBe(503);
    expect((await own.request('GET', '/health/live')).status).toBe(200);
    // a buyer the load balancer sends here before it has taken the instance out, on a connection of its own
    const late = httpClient(own.url, 1);
    try {
      expect((await checkout(late, 5_000)).status).toBe(202);
    } finally {
      await late.close();
    }
    expect(Date.now() - signalled).toBeLessThan(DRAIN_MS);
    expect(await exitCode).toBe(0);
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(DRAIN_MS);
    await close(own);
  });
});

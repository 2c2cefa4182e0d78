import { QUEUE } from '@orders/queues';
import { buyerAddress, settledSaleInvariants, createSku, createTestEnv, signToken, spawnApp, startApiProcess, startTcpProxy, waitFor, type ApiProcess, type HttpAnswer, type SpawnedProcess, type TcpProxy, type TestEnv } from '@orders/testing';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HIGH_WATER_MARK = 300;
const BUYERS = 1_500;
const OUTAGE_MS = 30_000;

describe('MySQL unreachable for 30 s in the middle of a sale (through a TCP proxy that refuses connections)', () => {
  let proxy: TcpProxy;
  let env: TestEnv;
  let api: ApiProcess;
  let worker: SpawnedProcess;
  let orders: Queue;

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 3306 });
    env = await createTestEnv('faults_mysql', {
      QUEUE_HIGH_WATER_MARK: String(HIGH_WATER_MARK),
      WORKER_QUEUES: 'orders,timers',
      JOB_BACKOFF_MS: '200',
      STRANDED_ORDER_AFTER_MS: '3000',
      SWEEP_INTERVAL_MS: '1000',
    });
    // the processes reach MySQL only through the proxy; the test itself reads it directly
    const throughProxy = new URL(env.env.MYSQL_URL!);
    throughProxy.port = String(proxy.port);
    const processEnv = { ...env.env, MYSQL_URL: throughProxy.toString() };
    api = await startApiProcess(processEnv, 40);
    worker = spawnApp('worker', { ...processEnv, WORKER_METRICS_PORT: '0' });
    orders = new Queue(QUEUE.orders, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
    // the outage starts once the worker takes jobs: one still starting would only wait for MySQL
    await waitFor(async () => (await orders.getWorkers()).length > 0, { what: 'the worker to take orders jobs', timeoutMs: 45_000 });
  });

  afterAll(async () => {
    await worker?.kill();
    await api?.close();
    await orders?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  it('retries persisting with backoff, accepts up to the high-water mark, sheds with 503 OVERLOADED, and persists every accepted order once MySQL is back', { timeout: 120_000 }, async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'HOT-WATCH', title: 'Watch', priceCents: 19_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: BUYERS, deduction: 'placement' });

    await proxy.cut();
    const cutAt = Date.now();
    const answers: HttpAnswer[] = [];
    let next = 0;
    const checkout = (i: number) =>
      api.request('POST', '/v1/orders', {
        token: signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' }),
        headers: { 'idempotency-key': `checkout-${i}` },
        body: { items: [{ skuId: 'HOT-WATCH', qty: 1 }], address: buyerAddress },
      });
    const buyerLoop = async () => {
      for (let i = next++; i < BUYERS; i = next++) {
        answers.push(await checkout(i));
        // a steady stream, so the api's queue-depth samples keep up with the backlog
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const sale = Promise.all(Array.from({ length: 10 }, buyerLoop));
    // awaited below; if an expectation fails first, the buyers' later failures are not news
    sale.catch(() => undefined);

    // persist jobs fail against the dead connection and wait out their backoff
    await waitFor(async () => (await orders.getJobCounts('delayed')).delayed! > 0, { what: 'persist jobs waiting out a backoff', timeoutMs: 10_000, intervalMs: 50 });
    await waitFor(async () => answers.some((a) => a.status === 503), { what: 'the intake to shed load', timeoutMs: OUTAGE_MS });
    // the api is not ready as a whole (reads need MySQL), and still ready to take checkouts
    const ready = await api.request('GET', '/health/ready');
    expect([ready.status, ready.body]).toEqual([503, { status: 'not_ready', redis: 'up', mysql: 'down' }]);
    const checkoutReady = await api.request('GET', '/health/checkout');
    expect([checkoutReady.status, checkoutReady.body]).toEqual([200, { status: 'ready', redis: 'up' }]);
    // and its metrics say so, whatever traffic there is (DependencyUnreachable)
    const reached = async (dependency: string) => Number(new RegExp(`^dependency_up\\{dependency="${dependency}"[^}]*\\} (\\d)$`, 'm').exec((await api.request('GET', '/metrics')).body)?.[1]);
    expect([await reached('mysql'), await reached('redis')]).toEqual([0, 1]);
    // the first buyer, whose 202 was lost, retries while the api sheds load: their order again, not a 503 hiding it
    const retried = await checkout(0);
    expect(retried.status).toBe(202);
    // its statusUrl answers from Redis, where the order waits for MySQL, as the checkout did
    const buyer0 = signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-0', role: 'buyer' });
    const status = await api.request('GET', retried.body.statusUrl, { token: buyer0 });
    expect([status.status, status.body.orderId, status.body.status]).toEqual([200, retried.body.orderId, 'ACCEPTED']);
    // what needs MySQL says it is away for now (503 with retry-after), not that something broke (500)
    const read = await api.request('GET', '/v1/orders', { token: buyer0 });
    expect([read.status, read.body.code, read.headers['retry-after']]).toEqual([503, 'SERVICE_UNAVAILABLE', '1']);
    await new Promise((resolve) => setTimeout(resolve, cutAt + OUTAGE_MS - Date.now()));
    const acceptedDuringOutage = answers.filter((a) => a.status === 202).length;
    expect(Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)).toBe(0);
    await proxy.restore();
    await waitFor(async () => (await reached('mysql')) === 1, { what: 'the api to reach MySQL again', timeoutMs: 10_000 });
    await sale;

    const accepted = answers.filter((a) => a.status === 202);
    const shed = answers.filter((a) => a.status !== 202);
    // up to the mark and no further while the backlog cannot drain (the api samples the backlog 4 times a second, so a little past it)
    expect(acceptedDuringOutage).toBeGreaterThanOrEqual(HIGH_WATER_MARK * 0.8);
    expect(acceptedDuringOutage).toBeLessThan(HIGH_WATER_MARK * 2);
    expect(shed.length).toBeGreaterThan(0);
    expect(shed.every((a) => a.status === 503 && a.body.code === 'OVERLOADED' && a.headers['retry-after'] !== undefined)).toBe(true);

    const acceptedIds = accepted.map((a) => a.body.orderId as string);
    expect(acceptedIds).toContain(retried.body.orderId);
    await waitFor(
      async () => Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n) === acceptedIds.length,
      { what: `all ${acceptedIds.length} accepted orders in MySQL`, timeoutMs: 60_000, intervalMs: 250 },
    );
    const invariants = await settledSaleInvariants({ db: env.db, redis: env.redis, keyPrefix: env.config.REDIS_KEY_PREFIX, acceptedOrderIds: acceptedIds, initialStock: { 'HOT-WATCH': BUYERS }, paymentWaitMs: env.config.PAYMENT_TIMEOUT_MS });
    expect(invariants.violations).toEqual([]);
    expect(await orders.getJobCounts('failed')).toEqual({ failed: 0 });
  });
});

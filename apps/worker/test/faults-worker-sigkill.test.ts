import { buyerAddress, settledSaleInvariants, createSku, createTestEnv, signToken, spawnApp, startApiProcess, waitFor, type ApiProcess, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ORDERS = 1_500;
const STOCK = 1_800;
const KILLS = 8;

describe('worker processes killed with SIGKILL again and again during a 1,500-order sale', () => {
  let env: TestEnv;
  let api: ApiProcess;
  const workers: SpawnedProcess[] = [];
  const startWorker = () => workers.push(spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' }));

  beforeAll(async () => {
    env = await createTestEnv('faults_sigkill', {
      // a killed worker's jobs come back after ~2 s instead of the production 30 s
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      WORKER_QUEUES: 'orders,timers',
      WORKER_CONCURRENCY: '50',
      PERSIST_BATCH_SIZE: '100',
      // every order expires unpaid while workers are still being killed, so the deadline timers are under fire too
      PAYMENT_TIMEOUT_MS: '15000',
      STRANDED_ORDER_AFTER_MS: '3000',
      SWEEP_INTERVAL_MS: '1000',
    });
    api = await startApiProcess(env.env, 100);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await api?.close();
    await env?.cleanup();
  });

  const count = async (status?: string) => {
    let query = env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n'));
    if (status) query = query.where('status', '=', status);
    return Number((await query.executeTakeFirstOrThrow()).n);
  };

  it('persists every accepted order exactly once, expires each on time, and gives all stock back', { timeout: 200_000 }, async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'HOT-PHONE', title: 'Phone', priceCents: 49_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: STOCK, deduction: 'placement' });
    startWorker();
    startWorker();

    const checkouts = Promise.all(
      Array.from({ length: ORDERS }, (_, i) =>
        api.request('POST', '/v1/orders', {
          token: signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' }),
          headers: { 'idempotency-key': `checkout-${i}` },
          body: { items: [{ skuId: 'HOT-PHONE', qty: 1 }], address: buyerAddress },
        }),
      ),
    );
    // kill the oldest live worker every 2.5 s and start a fresh one: persisting, then expiring, always has a crash in flight
    for (let kill = 0; kill < KILLS; kill++) {
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const victim = workers.find((w) => w.child.exitCode === null && w.child.signalCode === null);
      await victim?.kill();
      startWorker();
    }
    const answers = await checkouts;
    const acceptedIds = answers.filter((a) => a.status === 202).map((a) => a.body.orderId as string);
    expect(answers.filter((a) => a.status !== 202)).toEqual([]);
    expect(acceptedIds).toHaveLength(ORDERS);
    expect(workers.filter((w) => w.child.signalCode === 'SIGKILL')).toHaveLength(KILLS);

    // 90 s were not always enough beside three other test files on a slow box (bare Fastify at 13,000 req/s)
    await waitFor(async () => (await count()) === ORDERS && (await count('EXPIRED')) === ORDERS, {
      what: `all ${ORDERS} orders in MySQL and expired`,
      timeoutMs: 140_000,
      intervalMs: 500,
      explain: async () => `${await count()} in MySQL, ${await count('EXPIRED')} expired`,
    });
    const sale = await settledSaleInvariants({ db: env.db, redis: env.redis, keyPrefix: env.config.REDIS_KEY_PREFIX, acceptedOrderIds: acceptedIds, initialStock: { 'HOT-PHONE': STOCK }, paymentWaitMs: env.config.PAYMENT_TIMEOUT_MS });
    expect(sale.violations).toEqual([]);
    expect(sale.stock['HOT-PHONE']!.redis).toEqual({ available: STOCK, reserved: 0, sold: 0 });
    // each order expired exactly once: one history row per step, one release per reservation
    const history = await env.db.selectFrom('order_history').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(history.n)).toBe(3 * ORDERS);
  });
});

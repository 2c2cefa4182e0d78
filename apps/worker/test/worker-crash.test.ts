import { buyerAddress, createSku, createTestEnv, signToken, spawnApp, startApiProcess, waitFor, type ApiProcess, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('a worker killed with SIGKILL in the middle of a batch', () => {
  let env: TestEnv;
  let http: ApiProcess;
  const workers: SpawnedProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnv('worker_crash', {
      // a crashed worker's jobs come back after 2 s instead of the production 30 s
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      WORKER_CONCURRENCY: '50',
      PERSIST_BATCH_SIZE: '25',
    });
    http = await startApiProcess(env.env, 100);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await http?.close();
    await env?.cleanup();
  });

  const persistedCount = async () =>
    Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  it('leaves every accepted order in MySQL exactly once after a new worker starts', async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(http, admin, { skuId: 'SALE-PHONE', title: 'Phone', priceCents: 49_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10_000, deduction: 'placement' });

    workers.push(spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' }));
    const checkouts = Promise.all(
      Array.from({ length: 3000 }, (_, i) =>
        http.request('POST', '/v1/orders', {
          token: signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' }),
          headers: { 'idempotency-key': `checkout-${i}` },
          body: { items: [{ skuId: 'SALE-PHONE', qty: 1 }], address: buyerAddress },
        }),
      ),
    );
    await waitFor(async () => (await persistedCount()) >= 200, { what: 'the first worker to persist 200 orders' });
    await workers[0]!.kill();
    const persistedAtKill = await persistedCount();

    const answers = await checkouts;
    const acceptedIds = answers.filter((a) => a.status === 202).map((a) => a.body.orderId as string);
    expect(acceptedIds).toHaveLength(3000);
    expect(persistedAtKill).toBeLessThan(3000);

    workers.push(spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' }));
    await waitFor(async () => (await persistedCount()) === 3000, { what: 'all 3,000 orders in MySQL', timeoutMs: 60_000 });

    const rows = await env.db.selectFrom('orders').select('order_id').execute();
    expect(new Set(rows.map((r) => r.order_id))).toEqual(new Set(acceptedIds));
    const ledger = await env.db
      .selectFrom('stock_ledger')
      .select([sql<number>`COUNT(*)`.as('rows'), sql<number>`SUM(qty)`.as('units')])
      .where('kind', '=', 'reserve')
      .executeTakeFirstOrThrow();
    expect({ rows: Number(ledger.rows), units: Number(ledger.units) }).toEqual({ rows: 3000, units: -3000 });
    const history = await env.db.selectFrom('order_history').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(history.n)).toBe(2 * 3000);
    const stock = await http.request('GET', '/v1/admin/skus/SALE-PHONE', { token: admin });
    expect(stock.body.stock).toEqual({ available: 7000, reserved: 3000, sold: 0 });
    // nothing is left waiting for recovery: orders the killed worker committed but had not yet
    // taken out of the accepted set are taken out when their jobs, stalled, run again
    await waitFor(async () => (await env.redis.zcard(`${env.config.REDIS_KEY_PREFIX}{g0}:accepted`)) === 0, { what: 'the accepted set to empty', timeoutMs: 30_000 });
  });
});

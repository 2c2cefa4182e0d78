import type { AcceptedOrder } from '@orders/domain';
import { CatalogRepository } from '@orders/persistence';
import { enqueuePersistOrders } from '@orders/queues';
import { buyerAddress, createTestEnv, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, workerLog, type RunningWorkers } from '@orders/worker';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * The largest persist batch the config lets through: PERSIST_BATCH_SIZE orders of MAX_ORDER_LINES
 * lines each, every line a SKU with the longest title the catalog takes (200 characters, CJK as a
 * Chinese shop writes them: 3 bytes each) and every order with the longest address the api takes.
 * Each order is valid on its own; the api answered 202 for every one. Its rows are ~24 MB of
 * statement, past MariaDB's default max_allowed_packet (16 MiB), which closes the connection on
 * one that is larger: the batch read as MySQL away, and its jobs went round for ever.
 */
const LINES = 50; // MAX_ORDER_LINES default
const cjk = (n: number, seed: number) => Array.from({ length: n }, (_, i) => String.fromCodePoint(0x4e00 + ((seed * 131 + i * 7) % 20_000))).join('');
const skuIdOf = (n: number) => `SKU-${String(n).padStart(3, '0')}-${'x'.repeat(56)}`; // 64 characters, the most skuId takes
const shortSkuOf = (n: number) => `MUG-${n}`;
const longAddress = {
  name: cjk(100, 1),
  phone: `+${'1'.repeat(31)}`,
  line1: cjk(200, 2),
  city: cjk(100, 3),
  postalCode: cjk(20, 4),
  country: 'CN',
};

describe('a persist batch as large as the config allows', () => {
  let env: TestEnv | undefined;
  let workers: RunningWorkers | undefined;
  const logLines: Array<{ msg: string; err?: { code?: string } }> = [];

  afterEach(async () => {
    await workers?.close();
    workers = undefined;
    await env?.cleanup();
    env = undefined;
  });

  const run = async (overrides: Record<string, string>, orderCount: number, ordersPerJob: number, longest = true) => {
    env = await createTestEnv('large_persist_batches', { WORKER_QUEUES: 'orders', JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '50', PERSIST_BATCH_WAIT_MS: '1000', STRANDED_ORDER_AFTER_MS: '3600000', ...overrides });
    const catalog = new CatalogRepository(env.db);
    for (let n = 0; n < LINES; n++) {
      await catalog.createSku(
        longest
          ? { skuId: skuIdOf(n), title: cjk(200, n), priceCents: 1_000 + n, merchantId: `merchant-${'m'.repeat(55)}`, channel: 'self', warehouseId: `wh-${'w'.repeat(61)}`, deduction: 'placement', flashSale: null }
          : { skuId: shortSkuOf(n), title: `Mug ${n}`, priceCents: 1_000 + n, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', deduction: 'placement', flashSale: null },
        1_000_000,
        `opening-${n}`,
        async () => undefined,
      );
    }
    const acceptedAt = new Date();
    const orders: AcceptedOrder[] = Array.from({ length: orderCount }, (_, i) => ({
      orderId: `01JB1G${String(i).padStart(20, '0')}`,
      userId: `buyer-${String(i).padStart(58, '0')}`,
      type: 'standard',
      items: Array.from({ length: LINES }, (_, n) => ({ skuId: longest ? skuIdOf(n) : shortSkuOf(n), qty: longest ? 999 : 1 })),
      address: longest ? longAddress : buyerAddress,
      couponCode: null,
      acceptedAt: acceptedAt.toISOString(),
      paymentDeadline: new Date(acceptedAt.getTime() + 1_800_000).toISOString(),
    }));
    const deps = connectWorker(env.config, workerLog('warn', { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) }));
    // as the intake enqueues them: ORDERS_PER_JOB orders a job
    for (let i = 0; i < orders.length; i += ordersPerJob) await enqueuePersistOrders(deps.queues, orders.slice(i, i + ordersPerJob));
    workers = startWorkers(deps);
    const written = async () => Number((await env!.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const deadLetters = async () => (await deps.queues.deadLetter.getJobCounts('waiting')).waiting ?? 0;
    // the batch is written, or its jobs are dead-lettered, or 40 s pass
    await waitFor(async () => (await written()) === orderCount || (await deadLetters()) > 0, { what: 'the batch written or dead-lettered', timeoutMs: 40_000 }).catch(() => undefined);
    const outcome = {
      // as the worker's own pool (mysql2 through kysely) sees it
      maxAllowedPacket: (await sql<{ session: number; global: number }>`SELECT @@session.max_allowed_packet AS session, @@global.max_allowed_packet AS global`.execute(deps.db)).rows[0],
      written: await written(),
      deadLetters: await deadLetters(),
      jobs: await deps.queues.orders.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed'),
      errors: [...new Set(logLines.map((line) => `${line.msg}: ${line.err?.code ?? ''}`))],
    };
    return outcome;
  };

  it('the defaults (PERSIST_BATCH_SIZE 500, ORDERS_PER_JOB 100, MAX_ORDER_LINES 50): all 500 orders are written, none dead-lettered', async () => {
    const outcome = await run({}, 500, 100);
    expect(outcome).toMatchObject({ written: 500, deadLetters: 0 });
  }, 120_000);

  it('the largest PERSIST_BATCH_SIZE the config takes (5000) and short titles, ids and addresses (carts of 50 lines): all 5000 orders are written', async () => {
    // the intake's jobs of ORDERS_PER_JOB (100) orders, gathered by one worker (WORKER_CONCURRENCY 64 and more) into one batch
    const outcome = await run({ PERSIST_BATCH_SIZE: '5000', WORKER_CONCURRENCY: '100' }, 5000, 100, false);
    expect(outcome).toMatchObject({ written: 5000, deadLetters: 0 });
  }, 180_000);
});

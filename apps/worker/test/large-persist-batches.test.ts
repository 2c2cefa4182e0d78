import { CatalogRepository } from '@orders/persistence';
import { enqueuePersistOrders } from '@orders/queues';
import { acceptedOrder, createTestEnv, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, workerLog, type RunningWorkers } from '@orders/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The largest persist batch the default config lets through: PERSIST_BATCH_SIZE (500) orders of
 * MAX_ORDER_LINES (50) lines each, every line a SKU with the longest title the catalog takes (200
 * characters, CJK as a Chinese shop writes them: 3 bytes each) and every order with the longest
 * address the api takes. Each order is valid on its own; the api answered 202 for every one. Its
 * rows are ~24 MB of statement, past MariaDB's default max_allowed_packet (16 MiB), which closes
 * the connection on a larger one: the batch read as MySQL away, and its jobs went round for ever.
 */
const ORDERS = 500;
const LINES = 50;
const ORDERS_PER_JOB = 100;
const cjk = (n: number, seed: number) => Array.from({ length: n }, (_, i) => String.fromCodePoint(0x4e00 + ((seed * 131 + i * 7) % 20_000))).join('');
const skuIdOf = (n: number) => `SKU-${String(n).padStart(3, '0')}-${'x'.repeat(56)}`; // 64 characters, the most skuId takes
const longestAddress = { name: cjk(100, 1), phone: `+${'1'.repeat(31)}`, line1: cjk(200, 2), city: cjk(100, 3), postalCode: cjk(20, 4), country: 'CN' };

describe('a persist batch as large as the config allows', () => {
  let env: TestEnv;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    // the worker gathers the jobs into one batch: it waits for them all
    env = await createTestEnv('large_persist_batches', { WORKER_QUEUES: 'orders', JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '50', PERSIST_BATCH_WAIT_MS: '1000', STRANDED_ORDER_AFTER_MS: '3600000' });
    const catalog = new CatalogRepository(env.db);
    for (let n = 0; n < LINES; n++) {
      const sku = { skuId: skuIdOf(n), title: cjk(200, n), priceCents: 1_000 + n, merchantId: `merchant-${'m'.repeat(55)}`, channel: 'self', warehouseId: `wh-${'w'.repeat(61)}`, deduction: 'placement', flashSale: null } as const;
      await catalog.createSku(sku, 1_000_000, `opening-${n}`, async () => undefined);
    }
  });
  afterAll(async () => {
    await workers?.close();
    await env?.cleanup();
  });

  it('writes every order of it, none dead-lettered', async () => {
    const acceptedAt = new Date();
    const items = Array.from({ length: LINES }, (_, n) => ({ skuId: skuIdOf(n), qty: 999 }));
    const orders = Array.from({ length: ORDERS }, (_, i) => acceptedOrder('01JB1G', i, acceptedAt, { userId: `buyer-${String(i).padStart(58, '0')}`, items, address: longestAddress }));
    const deps = connectWorker(env.config, workerLog('silent'));
    // as the intake enqueues them: ORDERS_PER_JOB orders a job
    for (let i = 0; i < orders.length; i += ORDERS_PER_JOB) await enqueuePersistOrders(deps.queues, orders.slice(i, i + ORDERS_PER_JOB));
    workers = startWorkers(deps);
    const written = async () => Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    await waitFor(async () => (await written()) === ORDERS, { what: 'every order of the batch written', timeoutMs: 40_000 });
    expect(await deps.queues.deadLetter.getJobCounts('waiting')).toEqual({ waiting: 0 });
  }, 120_000);
});

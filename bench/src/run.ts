/**
 * npm run bench [-- --quick] [-- --profile] [-- --only=bare,intake,...] [-- --instructions [--count-redis]] [-- --pay-rate=N]
 *
 * Measures, in one run and with the same connections and duration, the ceilings of this
 * machine (bare Fastify, Fastify + one Redis reservation), the naive MySQL peer, our
 * intake (hot SKU and sold-out SKU), the workers' drain, a whole sale end to end, and its
 * buyers after it, polling their orders' statusUrl (`status`) and paying them (`pay`, the api's
 * side; `payments`, the payment wave end to end through the payment system, the workers and
 * its callbacks, left out of --quick unless named): they need orders in MySQL, the drain's or
 * the sale's.
 * Servers run as their own processes; the load comes from this one; 127.0.0.1 only.
 *
 * --instructions runs the HTTP servers and one worker under valgrind's callgrind instead and
 * counts the instructions each executes per request (per order drained, for the worker) once
 * warm, the garbage collector's and the optimizing compiler's apart (with --count-redis, those
 * of a Redis server of the bench's own beside them): outside those two the figure repeated to
 * ~0.1-2 % on boxes where req/s moves by 25 %, enough to tell whether a small change paid; on
 * another kind of vCPU it stepped by 13 % between windows of one process (bench/README item 37).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appEntry } from '@orders/config';
import type { AcceptedOrder } from '@orders/domain';
import { createOrderQueues, enqueuePersistOrders } from '@orders/queues';
import { createTestEnv, freePort, signToken, type TestEnv } from '@orders/testing';
import { sql } from 'kysely';
import { monotonicFactory } from 'ulid';
import { countInstructions } from './instructions.js';
import { runLoad, type LoadOptions, type LoadResult } from './load.js';
import { CoreUse, repoRoot, servicePids, sleep, spawnCountedRedis, spawnService, type Server, type SpawnOptions } from './processes.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profile = args.includes('--profile');
const instructions = args.includes('--instructions');
/**
 * --instructions: Redis too, a server of the bench's own under callgrind. Off by default: at
 * Redis's speed under valgrind the api serves fewer requests per event-loop turn, which moves
 * its own count per request (the sold-out answer's threefold), so the two are read apart.
 */
const countRedis = instructions && args.includes('--count-redis');
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
/** Phases whose cost is one process's own work, what counting its instructions can tell: the HTTP servers', one worker's. */
const COUNTABLE = ['bare', 'reserve', 'intake', 'soldout', 'drain', 'status'];
/** Phases a quick run leaves out unless named in --only: the payment wave alone takes half a minute or more on this box. */
const SLOW = ['payments'];
const want = (phase: string) => (only ? only.includes(phase) : !(quick && SLOW.includes(phase))) && (!instructions || COUNTABLE.includes(phase));
const numberArg = (name: string, fallback: number) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);

// under valgrind the server is ~50 × slower and reads every connection's request in one turn: 25 connections give
// jobs of ~12 orders (a turn's checkouts), near the ~24 of a full-speed run at 100
const CONNECTIONS = numberArg('connections', instructions ? 25 : 100);
const DURATION_S = numberArg('duration', quick ? 3 : 10);
const WARMUP_S = quick ? 1 : 2;
// several times what two workers take at once (64 jobs each): with fewer, the workers pull the whole
// queue in one go, their transactions commit together, and the clock sees only the last of them
const DRAIN_ORDERS = numberArg('drain-orders', quick ? 30_000 : 100_000);
const SALE_UNITS = numberArg('sale-units', quick ? 3_000 : 100_000);
const SALE_BUYERS = SALE_UNITS * 2;
const E2E_WORKERS = numberArg('e2e-workers', 2);
/** Orders whose buyers poll them in the status phase, each with a token of their own. */
const STATUS_ORDERS = numberArg('status-orders', 20_000);
/** Orders paid in the payment wave, end to end. */
const PAYMENT_WAVE_ORDERS = numberArg('payment-wave-orders', quick ? 3_000 : 10_000);
/**
 * The payment wave's pays a second, all connections together; 0: as fast as the box answers. At a
 * rate the box takes with cores to spare, the CPU each process spends per payment reads the same
 * from run to run, where at full speed it moves with how the box shares its saturated cores.
 */
const PAY_RATE = numberArg('pay-rate', 0);
/** Orders their buyers pay in the pay phase, each once. */
const PAY_ORDERS = numberArg('pay-orders', quick ? 20_000 : 60_000);
const API_PROCESSES = numberArg('api-processes', 1);
const HOUR = 3_600_000;
/** --instructions: requests to warm the JIT up before counting (uncounted), and requests counted. */
const WARMUP_REQUESTS = numberArg('warmup-requests', 24_000);
const COUNTED_REQUESTS = numberArg('counted-requests', 4_000);
/** --instructions: windows of COUNTED_REQUESTS counted one after the other; the median one is reported. */
const COUNTED_WINDOWS = numberArg('counted-windows', 1);
/** --instructions: orders one worker drains to warm up (uncounted), then orders counted. */
const WARMUP_ORDERS = numberArg('warmup-orders', 30_000);
const COUNTED_ORDERS = numberArg('counted-orders', 5_000);

const resultsDir = path.join(repoRoot, 'bench', 'results');
const profileDir = path.join(resultsDir, 'profiles');
const callgrindDir = path.join(resultsDir, 'callgrind');
mkdirSync(resultsDir, { recursive: true });
if (profile) mkdirSync(profileDir, { recursive: true });
if (instructions) mkdirSync(callgrindDir, { recursive: true });

const address = { name: 'Ada Lovelace', phone: '+44 20 7946 0000', line1: '12 Sale Street', city: 'London', postalCode: 'N1 9GU', country: 'GB' };

/** Cores each process used during the measured part (server, redis, mariadb, workers, load generator). */
type Cores = Record<string, number>;

interface HttpRow extends LoadResult {
  name: string;
  rssMb: number;
  cores: Cores;
  /** --instructions: the server's user-space instructions per request, counted by callgrind once warm. */
  instructionsPerRequest?: number;
  /** the part of them spent in V8's garbage collector */
  gcInstructionsPerRequest?: number;
  /** the part of them spent in V8's optimizing compiler, still at work under valgrind (instructions.ts) */
  compilerInstructionsPerRequest?: number;
  /** --instructions: Redis's user-space instructions per request in the same window */
  redisInstructionsPerRequest?: number;
}
interface DrainRow {
  name: string;
  workers: number;
  ordersPerJob: number;
  orders: number;
  ordersPerSec: number;
  seconds: number;
  rssMb: number;
  cores: Cores;
  /** --instructions: the worker's user-space instructions per order, counted by callgrind once warm */
  instructionsPerOrder?: number;
  gcInstructionsPerOrder?: number;
  compilerInstructionsPerOrder?: number;
  /** --instructions: Redis's per order in the same window (the jobs' BullMQ scripts) */
  redisInstructionsPerOrder?: number;
  /** --instructions: MariaDB's CPU per order in the same window (MariaDB runs at full speed) */
  mariadbMicrosPerOrder?: number;
}
interface SaleRow {
  units: number;
  buyers: number;
  accepted: number;
  rejected: Record<string, number>;
  intakeSeconds: number;
  /** when the last 202 came back: the sale was sold out from then on */
  secondsToSoldOut: number;
  secondsToLastOrderInMysql: number;
  persisted: number;
  /** how the workers got and wrote the orders: a job carries the orders of one event-loop turn of the api */
  ordersPerJob: number;
  ordersPerTransaction: number;
  oversold: number;
  lost: number;
  redisStock: { available: number; reserved: number; sold: number } | null;
  rssMb: number;
  cores: Cores;
}

/** The payment wave: each order paid once by its buyer, charged by the payment system, its callback applied (the order PAID). */
interface PaymentWaveRow {
  orders: number;
  /** 202 answers to the pay requests */
  accepted: number;
  /** pay requests answered per second, while they were sent */
  paysPerSec: number;
  p50: number;
  p99: number;
  paySeconds: number;
  /** from the first pay request until the last order's payment is SUCCEEDED in MySQL */
  secondsToLastPaid: number;
  paid: number;
  paidPerSec: number;
  /** orders with two payments SUCCEEDED: must be 0 */
  chargedTwice: number;
  /** orders not paid when the wave was given up (5 min after its last request): must be 0 */
  unpaid: number;
  /** the pays a second asked for (--pay-rate), null: as fast as answered */
  payRate: number | null;
  /** ms of CPU each process used per order paid, the wave's first request to its last payment */
  cpuMsPerPayment: Record<string, number>;
  rssMb: number;
  cores: Cores;
}

const running = new Set<Server>();
async function start(name: string, entry: string, env: Record<string, string>, listening: Pick<SpawnOptions, 'port' | 'waitForPort'> = {}): Promise<Server> {
  const server = await spawnService(name, entry, { env, ...listening, cpuProfDir: profile ? profileDir : undefined, callgrindDir: instructions ? callgrindDir : undefined });
  running.add(server);
  return server;
}
/** Worker processes started side by side, each returned once its metrics port answers. */
async function startWorkers(count: number, name: (index: number) => string, env: Record<string, string>): Promise<{ procs: Server[]; metricsPorts: number[] }> {
  const metricsPorts: number[] = [];
  for (let w = 0; w < count; w++) metricsPorts.push(await freePort());
  const started = await Promise.allSettled(
    metricsPorts.map((port, w) => start(name(w), appEntry('worker'), { ...env, WORKER_METRICS_PORT: String(port) }, { waitForPort: port })),
  );
  // the ones that did start are in `running` already, stopped with the rest
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return { procs: started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : [])), metricsPorts };
}
async function stop(server: Server | undefined) {
  if (!server) return;
  await server.stop();
  running.delete(server);
}

const services = { redis: servicePids('redis-server'), mariadb: [...servicePids('mariadbd'), ...servicePids('mysqld')] };
/** --instructions: the bench's own Redis, under callgrind; the servers and workers use it instead of the box's. */
let countedRedis: Server | undefined;
const pidsOf = (servers: Server[]) => servers.flatMap((server) => (server.child.pid ? [server.child.pid] : []));
const showCores = (cores: Cores) => Object.entries(cores).map(([name, used]) => `${name} ${used.toFixed(2)}`).join(', ');

/** How long a load runs: a duration, or a number of requests. */
type LoadLimit = Pick<LoadOptions, 'durationS' | 'amount'>;

/** Warm up, then measure; memory is the server's peak during the measured part, cores what each process used in it. */
async function measure(name: string, server: Server, run: (limit: LoadLimit) => Promise<LoadResult>): Promise<HttpRow> {
  if (instructions) return countPerRequest(name, server, run);
  await run({ durationS: WARMUP_S });
  server.resetPeak();
  const coreUse = CoreUse.start({ server: pidsOf([server]), ...services });
  const result = await run({ durationS: DURATION_S });
  return measured({ name, ...result, rssMb: server.peakRssMb(), cores: coreUse.read() });
}

/** Says a measured HTTP row as it is recorded. */
function measured(row: HttpRow): HttpRow {
  console.log(`  ${row.name}: ${row.reqPerSec} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, p99.9 ${row.p999} ms, ${row.rssMb} MB, codes ${JSON.stringify(row.statusCodes)}; cores: ${showCores(row.cores)}`);
  return row;
}

/**
 * --instructions: warm up in a few rounds (V8 keeps optimising for a while under valgrind), then
 * count COUNTED_WINDOWS windows and keep the median one by its count without the collector and
 * the compiler: a window that holds a mark-compact under valgrind also runs code V8 threw away
 * and is optimizing again, and reads high (bench/README item 37).
 */
async function countPerRequest(name: string, server: Server, run: (limit: LoadLimit) => Promise<LoadResult>): Promise<HttpRow> {
  const rounds = 3;
  for (let round = 0; round < rounds; round++) await run({ amount: Math.ceil(WARMUP_REQUESTS / rounds) });
  const windows: HttpRow[] = [];
  for (let window = 1; window <= COUNTED_WINDOWS; window++) {
    const coreUse = CoreUse.start({ server: pidsOf([server]), ...services });
    const { result, counted, countedAlongside } = await countInstructions(server.child.pid!, callgrindDir, () => run({ amount: COUNTED_REQUESTS }), countedRedis?.child.pid);
    const perRequest = (count: number) => Math.round(count / result.requests);
    const row = {
      name,
      ...result,
      rssMb: server.peakRssMb(),
      cores: coreUse.read(),
      instructionsPerRequest: perRequest(counted.total),
      gcInstructionsPerRequest: perRequest(counted.garbageCollector),
      compilerInstructionsPerRequest: perRequest(counted.optimizingCompiler),
      redisInstructionsPerRequest: countedAlongside && perRequest(countedAlongside.total),
    };
    console.log(
      `  ${name}${COUNTED_WINDOWS > 1 ? ` (window ${window})` : ''}: ${row.instructionsPerRequest} instructions per request, ${row.gcInstructionsPerRequest} of them garbage collection, ${row.compilerInstructionsPerRequest} the optimizing compiler${countedAlongside ? `, Redis ${row.redisInstructionsPerRequest}` : ''} (${result.requests} counted), codes ${JSON.stringify(row.statusCodes)}`,
    );
    windows.push(row);
  }
  const ownWork = (row: HttpRow) => row.instructionsPerRequest! - row.gcInstructionsPerRequest! - row.compilerInstructionsPerRequest!;
  const median = [...windows].sort((a, b) => ownWork(a) - ownWork(b))[Math.floor((windows.length - 1) / 2)]!;
  if (windows.length > 1) console.log(`  ${name}: the median window, ${ownWork(median)} without collector and compiler (of ${windows.map(ownWork).join(', ')})`);
  return median;
}

/**
 * --instructions: one worker under callgrind drains WARMUP_ORDERS, then COUNTED_ORDERS are
 * counted. Progress comes from MySQL once a second, not from the worker's metrics: a scrape
 * would be counted as the worker's work.
 */
async function countDrainPerOrder(
  env: TestEnv,
  perJob: number,
  fillOrdersQueue: (count: number, buyers: string) => Promise<void>,
  startWorker: () => Promise<{ procs: Server[] }>,
): Promise<DrainRow> {
  const before = await countOrders(env);
  const persisted = async (count: number) => {
    const deadline = Date.now() + 900_000;
    while ((await countOrders(env)) - before < count) {
      if (Date.now() > deadline) throw new Error(`the counted drain did not write ${count} orders in time`);
      await sleep(1_000);
    }
  };
  const {
    procs: [worker],
  } = await startWorker();
  await fillOrdersQueue(WARMUP_ORDERS, 'warm');
  await persisted(WARMUP_ORDERS);
  const coreUse = CoreUse.start({ workers: pidsOf([worker!]), ...services });
  const startedAt = performance.now();
  const { counted, countedAlongside } = await countInstructions(
    worker!.child.pid!,
    callgrindDir,
    async () => {
      await fillOrdersQueue(COUNTED_ORDERS, 'counted');
      await persisted(WARMUP_ORDERS + COUNTED_ORDERS);
    },
    countedRedis?.child.pid,
  );
  const seconds = (performance.now() - startedAt) / 1000;
  const cores = coreUse.read();
  const rssMb = worker!.peakRssMb();
  await stop(worker);
  const perOrder = (count: number) => Math.round(count / COUNTED_ORDERS);
  const row: DrainRow = {
    name: 'drain, 1 worker process',
    workers: 1,
    ordersPerJob: perJob,
    orders: COUNTED_ORDERS,
    ordersPerSec: Math.round(COUNTED_ORDERS / seconds),
    seconds,
    rssMb,
    cores,
    instructionsPerOrder: perOrder(counted.total),
    gcInstructionsPerOrder: perOrder(counted.garbageCollector),
    compilerInstructionsPerOrder: perOrder(counted.optimizingCompiler),
    redisInstructionsPerOrder: countedAlongside && perOrder(countedAlongside.total),
    mariadbMicrosPerOrder: Math.round(((cores.mariadb ?? 0) * seconds * 1e6) / COUNTED_ORDERS),
  };
  console.log(`  ${row.name}: ${row.instructionsPerOrder} instructions per order, ${row.gcInstructionsPerOrder} of them garbage collection, ${row.compilerInstructionsPerOrder} the optimizing compiler${countedAlongside ? `, Redis ${row.redisInstructionsPerOrder}` : ''} (${COUNTED_ORDERS} counted, jobs of ${perJob}); MariaDB ${row.mariadbMicrosPerOrder} µs of CPU per order`);
  return row;
}

/**
 * Orders the workers have written, as their own `orders_persisted_total` says. Progress is
 * read from the workers, not from MySQL: a `COUNT(*)` every 20 ms took ~0.15 of MariaDB's
 * core from the drain it was timing. MySQL is counted once, after. A scrape costs a worker
 * ~1.4 ms, hence one per PROGRESS_POLL_MS (~1.5 % of a worker, 0.1 s resolution).
 */
const PROGRESS_POLL_MS = 100;
/** What the workers say they did, from their own metrics: orders written, MySQL transactions, orders-queue jobs. */
async function workerProgress(metricsPorts: number[]): Promise<{ persisted: number; transactions: number; jobs: number }> {
  const each = await Promise.all(
    metricsPorts.map(async (port) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      const sum = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
      return {
        persisted: sum(/^orders_persisted_total(?:\{[^}]*\})? (\S+)$/gm),
        transactions: sum(/^persist_batch_size_count(?:\{[^}]*\})? (\S+)$/gm),
        jobs: sum(/^job_duration_seconds_count\{[^}]*queue="orders"[^}]*\} (\S+)$/gm),
      };
    }),
  );
  return each.reduce((total, w) => ({ persisted: total.persisted + w.persisted, transactions: total.transactions + w.transactions, jobs: total.jobs + w.jobs }), { persisted: 0, transactions: 0, jobs: 0 });
}

async function countOrders(env: TestEnv): Promise<number> {
  const row = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM orders`.execute(env.db);
  return Number(row.rows[0]?.n ?? 0);
}

async function main() {
  const startedAt = new Date();
  console.log(`bench ${quick ? '(quick) ' : ''}on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, ${CONNECTIONS} connections, ${DURATION_S} s per run`);
  // the levels the services ship with (config/default.json): what a log line costs is part of the product's cost
  const overrides: Record<string, string> = { LOG_LEVEL: 'info' };
  if (countRedis) {
    const port = await freePort();
    countedRedis = await spawnCountedRedis(callgrindDir, port);
    running.add(countedRedis);
    services.redis = [countedRedis.child.pid!];
    overrides.REDIS_URL = `redis://127.0.0.1:${port}`;
  }
  const env = await createTestEnv('bench', overrides);
  const base = env.env;
  const http: HttpRow[] = [];
  const drains: DrainRow[] = [];
  let sale: SaleRow | undefined;
  let paymentWave: PaymentWaveRow | undefined;
  const secret = env.config.AUTH_JWT_SECRET;
  try {
    // --- ceilings -------------------------------------------------------------------
    if (want('bare')) {
      const port = await freePort();
      const server = await start('bare', 'bench/src/servers/bare.ts', base, { port });
      const body = JSON.stringify({ items: [{ skuId: 'x', qty: 1 }], address });
      http.push(await measure('bare Fastify (constant)', server, (limit) => runLoad({ port, connections: CONNECTIONS, ...limit, request: { method: 'POST', path: '/bare', headers: { 'content-type': 'application/json' }, body } })));
      await stop(server);
    }
    if (want('reserve')) {
      const skuId = 'bench-reserve';
      await env.redis.hset(`${env.config.REDIS_KEY_PREFIX}{g0}:sku:${skuId}`, { available: 1_000_000_000, reserved: 0, sold: 0, deduction: 'placement', saleStartsAt: 0, saleEndsAt: 0, perUserLimit: 0 });
      const port = await freePort();
      const server = await start('reserve', 'bench/src/servers/reserve-only.ts', { ...base, BENCH_SKU: skuId }, { port });
      const body = JSON.stringify({ items: [{ skuId, qty: 1 }] });
      http.push(await measure('Fastify + Redis reserve script', server, (limit) => runLoad({ port, connections: CONNECTIONS, ...limit, request: { method: 'POST', path: '/reserve', headers: { 'content-type': 'application/json' }, body } })));
      await stop(server);
    }
    if (want('naive')) {
      await sql`CREATE TABLE IF NOT EXISTS bench_naive_stock (sku_id VARCHAR(64) PRIMARY KEY, available INT NOT NULL) ENGINE=InnoDB`.execute(env.db);
      await sql`CREATE TABLE IF NOT EXISTS bench_naive_orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, sku_id VARCHAR(64) NOT NULL, user_id VARCHAR(64) NOT NULL, qty INT NOT NULL, created_at DATETIME(3) NOT NULL) ENGINE=InnoDB`.execute(env.db);
      await sql`REPLACE INTO bench_naive_stock VALUES ('naive-hot', 1000000000)`.execute(env.db);
      const port = await freePort();
      const server = await start('naive', 'bench/src/servers/naive.ts', { ...base, BENCH_SKU: 'naive-hot' }, { port });
      const body = JSON.stringify({ items: [{ skuId: 'naive-hot', qty: 1 }], address });
      http.push(await measure('naive MySQL checkout (FOR UPDATE)', server, (limit) => runLoad({ port, connections: CONNECTIONS, ...limit, request: { method: 'POST', path: '/naive', headers: { 'content-type': 'application/json' }, body } })));
      await stop(server);
    }

    // --- our intake -----------------------------------------------------------------
    const apiEnv = { ...base, QUEUE_HIGH_WATER_MARK: '100000000', MIGRATE_ON_START: 'false', API_PROCESSES: String(API_PROCESSES) };
    const admin = signToken(secret, { sub: 'bench-admin', role: 'admin' });
    const queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: env.config.JOB_ATTEMPTS, backoffMs: env.config.JOB_BACKOFF_MS });
    /**
     * Before a phase with workers: earlier phases' orders leave the queue and the accepted set.
     * The intake phase runs no worker; left in the set, its orders were found a minute later by
     * the stranded-order sweeper of the drain's or the sale's workers and persisted during the
     * measurement, in single-order jobs (a drain read 41 orders more in MySQL than it enqueued,
     * a sale 1.2 orders per job). Called where no api is taking checkouts.
     */
    const dropUnpersistedOrders = async () => {
      await queues.orders.obliterate({ force: true });
      await env.redis.del(`${env.config.REDIS_KEY_PREFIX}{g0}:accepted`);
    };
    const createSku = async (port: number, skuId: string, stock: number, perUserLimit: number) => {
      const now = Date.now();
      const response = await fetch(`http://127.0.0.1:${port}/v1/admin/skus`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({
          skuId,
          title: `Bench ${skuId}`,
          priceCents: 99_900,
          merchantId: 'bench-shop',
          channel: 'self',
          warehouseId: 'wh-bench',
          stock,
          deduction: 'placement',
          flashSale: { priceCents: 49_900, startsAt: new Date(now - HOUR).toISOString(), endsAt: new Date(now + 6 * HOUR).toISOString(), perUserLimit },
        }),
      });
      if (response.status !== 201) throw new Error(`creating ${skuId}: ${response.status} ${await response.text()}`);
    };
    const buyerToken = (userId: string) => `Bearer ${signToken(secret, { sub: userId, role: 'buyer', exp: Math.floor(Date.now() / 1000) + 6 * 3600 })}`;
    const buyerTokens = (count: number, tag: string) => Array.from({ length: count }, (_, i) => buyerToken(`${tag}-${i}`));
    /** Each order's pay request, sent by its own buyer: `POST /v1/orders/:orderId/pay` by card. */
    const payRequests = (orders: ReadonlyArray<{ order_id: string; user_id: string }>) => {
      const body = JSON.stringify({ method: 'card' });
      return orders.map((order) => ({ path: `/v1/orders/${order.order_id}/pay`, body, headers: { 'content-type': 'application/json', authorization: buyerToken(order.user_id) } }));
    };
    const checkoutRequest = (skuId: string, tokens: string[], run: string) => {
      const body = JSON.stringify({ items: [{ skuId, qty: 1 }], address });
      let i = 0;
      return () => {
        i += 1;
        return { headers: { 'content-type': 'application/json', authorization: tokens[i % tokens.length]!, 'idempotency-key': `${run}-${i}` }, body };
      };
    };

    let apiPort = 0;
    let intakeOrdersPerJob = numberArg('drain-orders-per-job', 0);
    let api: Server | undefined;
    /** The api, started for the first phase that needs it, and again for one after the drain stopped it. */
    const apiStarted = async (): Promise<Server> => (api ??= await start('api', appEntry('api'), apiEnv, { port: apiPort || (apiPort = await freePort()) }));
    const needApi = want('intake') || want('soldout') || want('drain') || want('sale') || want('status') || want('pay') || want('payments');
    if (needApi) {
      api = await apiStarted();
      await createSku(apiPort, 'bench-hot', 1_000_000_000, 0);
      await createSku(apiPort, 'bench-soldout', 0, 0);
    }
    const tokens = needApi ? buyerTokens(20_000, 'buyer') : [];
    if (api && want('intake')) {
      let run = 0;
      let acceptedTotal = 0;
      http.push(
        await measure('intake POST /v1/orders (hot SKU)', api, async (limit) => {
          const result = await runLoad({ port: apiPort, connections: CONNECTIONS, ...limit, request: { method: 'POST', path: '/v1/orders', next: checkoutRequest('bench-hot', tokens, `hot${++run}`) } });
          acceptedTotal += result.statusCodes['202'] ?? 0;
          return result;
        }),
      );
      const { waiting = 0 } = await queues.orders.getJobCounts('waiting');
      if (waiting > 0) intakeOrdersPerJob = Math.max(1, Math.round(acceptedTotal / waiting));
      console.log(`  the intake queued ${acceptedTotal} orders in ${waiting} jobs (${intakeOrdersPerJob} per job)`);
      await queues.orders.obliterate({ force: true });
    }
    if (api && want('soldout')) {
      let run = 0;
      http.push(
        await measure('intake POST /v1/orders (sold out)', api, (limit) => runLoad({ port: apiPort, connections: CONNECTIONS, ...limit, request: { method: 'POST', path: '/v1/orders', next: checkoutRequest('bench-soldout', tokens, `out${++run}`) } })),
      );
    }

    // --- the drain --------------------------------------------------------------------
    if (api && want('drain')) {
      await stop(api);
      api = undefined;
      const newId = monotonicFactory();
      // the queue holds jobs shaped as the intake makes them (orders per job measured above)
      const perJob = Math.max(1, intakeOrdersPerJob || env.config.ORDERS_PER_JOB);
      const fillOrdersQueue = async (count: number, buyers: string) => {
        const now = Date.now();
        for (let done = 0; done < count; done += 1000) {
          const orders = Array.from({ length: Math.min(1000, count - done) }, (_, i) => {
            // accepted as during a sale: ten orders a millisecond, each deadline ten minutes on
            const acceptedAt = now + Math.floor((done + i) / 10);
            const order: AcceptedOrder = {
              orderId: newId(acceptedAt),
              userId: `${buyers}-${done + i}`,
              type: 'flash_sale',
              items: [{ skuId: 'bench-hot', qty: 1 }],
              address,
              couponCode: null,
              acceptedAt: new Date(acceptedAt).toISOString(),
              paymentDeadline: new Date(acceptedAt + 600_000).toISOString(),
            };
            return order;
          });
          for (let i = 0; i < orders.length; i += perJob) await enqueuePersistOrders(queues, orders.slice(i, i + perJob));
        }
      };
      if (instructions) {
        await dropUnpersistedOrders();
        drains.push(await countDrainPerOrder(env, perJob, fillOrdersQueue, () => startWorkers(1, () => 'worker1', { ...base, WORKER_QUEUES: 'orders', MIGRATE_ON_START: 'false' })));
        await queues.timers.obliterate({ force: true });
      }
      for (const workers of instructions ? [] : [1, 2]) {
        await dropUnpersistedOrders();
        const before = await countOrders(env);
        await fillOrdersQueue(DRAIN_ORDERS, `drain${workers}`);
        const { procs, metricsPorts } = await startWorkers(workers, (w) => `worker${w + 1}of${workers}`, { ...base, WORKER_QUEUES: 'orders', MIGRATE_ON_START: 'false' });
        let first = 0;
        let atFirst = 0;
        let last = 0;
        let coreUse: CoreUse | undefined;
        let cores: Cores = {};
        const deadline = Date.now() + 300_000;
        while (Date.now() < deadline) {
          const n = (await workerProgress(metricsPorts)).persisted;
          // the clock starts at the first poll that sees orders; those already written then are not counted
          if (n > 0 && !first) {
            [first, atFirst] = [Date.now(), n];
            coreUse = CoreUse.start({ workers: pidsOf(procs), ...services });
          }
          if (n >= DRAIN_ORDERS) {
            last = Date.now();
            cores = coreUse?.read() ?? {};
            break;
          }
          await sleep(PROGRESS_POLL_MS);
        }
        const rssMb = procs.reduce((sum, p) => sum + p.peakRssMb(), 0);
        for (const p of procs) await stop(p);
        if (!last) throw new Error(`drain with ${workers} worker(s) did not finish in time`);
        const inMysql = (await countOrders(env)) - before;
        if (inMysql !== DRAIN_ORDERS) throw new Error(`drain with ${workers} worker(s): the workers counted ${DRAIN_ORDERS} orders written, MySQL holds ${inMysql}`);
        const seconds = (last - first) / 1000;
        const row = { name: `drain, ${workers} worker process${workers > 1 ? 'es' : ''}`, workers, ordersPerJob: perJob, orders: DRAIN_ORDERS, ordersPerSec: Math.round((DRAIN_ORDERS - atFirst) / Math.max(seconds, 0.001)), seconds, rssMb, cores };
        console.log(`  ${row.name}: ${row.ordersPerSec} orders/s (${row.orders} in jobs of ${perJob}, ${seconds.toFixed(2)} s), ${rssMb} MB; cores: ${showCores(cores)}`);
        drains.push(row);
        await queues.timers.obliterate({ force: true });
      }
    }

    // --- a whole sale, end to end -------------------------------------------------------
    if (want('sale')) {
      api = await apiStarted();
      await dropUnpersistedOrders();
      // the drain's workers serve only the orders queue, so its 200,000 orders' events were never
      // published: they are not the sale's, and publishing them would take MariaDB from it
      await sql`UPDATE order_history SET published_at = at WHERE published_at IS NULL`.execute(env.db);
      const skuId = 'bench-sale';
      await createSku(apiPort, skuId, SALE_UNITS, 1);
      const saleTokens = buyerTokens(SALE_BUYERS, 'sale');
      const { procs, metricsPorts } = await startWorkers(E2E_WORKERS, (w) => `sale-worker${w + 1}`, { ...base, MIGRATE_ON_START: 'false' });
      await sleep(1000);
      api.resetPeak();
      const accepted: string[] = [];
      const coreUse = CoreUse.start({ api: pidsOf([api]), workers: pidsOf(procs), ...services });
      const t0 = Date.now();
      let lastAcceptedAt = t0;
      const load = await runLoad({
        port: apiPort,
        connections: CONNECTIONS,
        amount: SALE_BUYERS,
        durationS: 600,
        request: {
          method: 'POST',
          path: '/v1/orders',
          next: checkoutRequest(skuId, saleTokens, 'sale'),
          onResponse: (status, body) => {
            if (status !== 202) return;
            accepted.push((JSON.parse(body) as { orderId: string }).orderId);
            lastAcceptedAt = Date.now();
          },
        },
      });
      const intakeSeconds = (Date.now() - t0) / 1000;
      let progress = { persisted: 0, transactions: 0, jobs: 0 };
      const deadline = Date.now() + 300_000;
      while (Date.now() < deadline) {
        progress = await workerProgress(metricsPorts);
        if (progress.persisted >= accepted.length) break;
        await sleep(PROGRESS_POLL_MS);
      }
      const secondsToLastOrderInMysql = (Date.now() - t0) / 1000;
      const { persisted } = progress;
      const cores = coreUse.read();
      const rssMb = api.peakRssMb() + procs.reduce((sum, p) => sum + p.peakRssMb(), 0);
      for (const p of procs) await stop(p);
      const soldUnits = Number((await sql<{ n: number }>`SELECT COALESCE(SUM(qty), 0) AS n FROM order_items WHERE sku_id = ${skuId}`.execute(env.db)).rows[0]?.n ?? 0);
      let found = 0;
      for (let i = 0; i < accepted.length; i += 5000) {
        const ids = accepted.slice(i, i + 5000);
        found += Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).where('order_id', 'in', ids).executeTakeFirstOrThrow()).n);
      }
      const [available, reserved, sold] = await env.redis.hmget(`${env.config.REDIS_KEY_PREFIX}{g0}:sku:${skuId}`, 'available', 'reserved', 'sold');
      const redisStock = available === null ? null : { available: Number(available), reserved: Number(reserved), sold: Number(sold) };
      const rejected = { ...load.statusCodes };
      delete rejected['202'];
      sale = {
        units: SALE_UNITS,
        buyers: SALE_BUYERS,
        accepted: accepted.length,
        rejected,
        intakeSeconds,
        secondsToSoldOut: (lastAcceptedAt - t0) / 1000,
        secondsToLastOrderInMysql,
        persisted,
        ordersPerJob: Math.round((persisted / Math.max(progress.jobs, 1)) * 10) / 10,
        ordersPerTransaction: Math.round((persisted / Math.max(progress.transactions, 1)) * 10) / 10,
        oversold: Math.max(0, soldUnits - SALE_UNITS, accepted.length - SALE_UNITS, redisStock ? redisStock.reserved + redisStock.sold - SALE_UNITS : 0),
        lost: accepted.length - found,
        redisStock,
        rssMb,
        cores,
      };
      console.log(`  sale: ${JSON.stringify(sale)}`);
    }

    // --- buyers polling their statusUrl after it ------------------------------------------
    if (want('status')) {
      api = await apiStarted();
      // the newest orders in MySQL: the sale's, else the drain's; each read by its own buyer
      const polled = await env.db.selectFrom('orders').select(['order_id', 'user_id']).orderBy('order_id', 'desc').limit(STATUS_ORDERS).execute();
      if (polled.length === 0) throw new Error('the status reads poll orders in MySQL: run them with the drain or the sale (--only=drain,status)');
      const polls = polled.map((order) => ({ path: `/v1/orders/${order.order_id}`, headers: { authorization: buyerToken(order.user_id) } }));
      let i = 0;
      http.push(await measure('GET /v1/orders/:orderId (status poll)', api, (limit) => runLoad({ port: apiPort, connections: CONNECTIONS, ...limit, request: { method: 'GET', path: polls[0]!.path, next: () => polls[i++ % polls.length]! } })));
    }

    // --- and paying: each order once, the payment opened and its request queued (no worker runs) ---
    if (want('pay')) {
      api = await apiStarted();
      const unpaid = await env.db.selectFrom('orders').select(['order_id', 'user_id']).where('status', '=', 'PENDING_PAYMENT').orderBy('order_id', 'desc').limit(PAY_ORDERS).execute();
      if (unpaid.length === 0) throw new Error('the payments pay orders in MySQL: run them with the drain or the sale (--only=drain,pay)');
      const pays = payRequests(unpaid);
      let i = 0;
      // each order paid once: a second pay of an order is its first payment answered again, not a payment
      const next = () => pays[i++]!;
      const warmup = Math.min(2_000, Math.floor(pays.length / 4));
      await runLoad({ port: apiPort, connections: CONNECTIONS, amount: warmup, request: { method: 'POST', path: pays[0]!.path, next } });
      api.resetPeak();
      const coreUse = CoreUse.start({ server: pidsOf([api]), ...services });
      const result = await runLoad({ port: apiPort, connections: CONNECTIONS, amount: pays.length - warmup, durationS: DURATION_S, request: { method: 'POST', path: pays[0]!.path, next } });
      http.push(measured({ name: 'POST /v1/orders/:orderId/pay', ...result, rssMb: api.peakRssMb(), cores: coreUse.read() }));
    }
    // --- the payment wave end to end: charged by the payment system, its callbacks applied ---
    if (want('payments')) {
      api = await apiStarted();
      // the pay row's requests were never sent (no worker ran), and the drain's orders' events never published
      // (its workers serve only the orders queue): neither is this wave's work
      await queues.payments.obliterate({ force: true });
      await sql`UPDATE order_history SET published_at = at WHERE published_at IS NULL`.execute(env.db);
      const { rows: unpaid } = await sql<{ order_id: string; user_id: string }>`SELECT o.order_id, o.user_id FROM orders o WHERE o.status = 'PENDING_PAYMENT' AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id) ORDER BY o.order_id DESC LIMIT ${PAYMENT_WAVE_ORDERS}`.execute(env.db);
      if (unpaid.length === 0) throw new Error('the payment wave pays orders in MySQL: run it with the drain or the sale (--only=drain,payments)');
      const [paymentPort, warehousePort] = [await freePort(), await freePort()];
      // the payment system answers after its simulated latency (50 ms as shipped); the warehouse takes the parcels
      // and moves none of them on during the wave
      await start('payment-sim', appEntry('payment-sim'), { ...base, PAYMENT_SIM_PORT: String(paymentPort) }, { waitForPort: paymentPort });
      await start('warehouse-sim', appEntry('warehouse-sim'), { ...base, WAREHOUSE_SIM_PORT: String(warehousePort), WAREHOUSE_SIM_STEP_MS: String(HOUR) }, { waitForPort: warehousePort });
      const { procs } = await startWorkers(E2E_WORKERS, (w) => `payments-worker${w + 1}`, {
        ...base,
        MIGRATE_ON_START: 'false',
        PAYMENT_URL: `http://127.0.0.1:${paymentPort}`,
        WAREHOUSE_URL: `http://127.0.0.1:${warehousePort}`,
        CALLBACK_BASE_URL: `http://127.0.0.1:${apiPort}`,
      });
      const pays = payRequests(unpaid);
      let i = 0;
      api.resetPeak();
      const coreUse = CoreUse.start({ api: pidsOf([api]), workers: pidsOf(procs), ...services });
      const t0 = Date.now();
      const load = await runLoad({ port: apiPort, connections: CONNECTIONS, amount: pays.length, durationS: 600, ratePerSec: PAY_RATE, request: { method: 'POST', path: pays[0]!.path, next: () => pays[i++]! } });
      const paySeconds = (Date.now() - t0) / 1000;
      const paidCount = async () => Number((await sql<{ n: number }>`SELECT COUNT(DISTINCT order_id) AS n FROM payments WHERE status = 'SUCCEEDED'`.execute(env.db)).rows[0]?.n ?? 0);
      let paid = 0;
      const deadline = Date.now() + 300_000;
      while (Date.now() < deadline && (paid = await paidCount()) < pays.length) await sleep(500);
      const secondsToLastPaid = (Date.now() - t0) / 1000;
      const cores = coreUse.read();
      const used = coreUse.secondsUsed();
      const cpuMsPerPayment = Object.fromEntries(
        ['api', 'workers', 'redis', 'mariadb', 'other'].map((name) => [name, Number((((used[name] ?? 0) * 1000) / Math.max(paid, 1)).toFixed(2))]),
      );
      const rssMb = api.peakRssMb() + procs.reduce((sum, p) => sum + p.peakRssMb(), 0);
      for (const p of procs) await stop(p);
      const { rows: twice } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM (SELECT order_id FROM payments WHERE status = 'SUCCEEDED' GROUP BY order_id HAVING COUNT(*) > 1) t`.execute(env.db);
      paymentWave = {
        orders: pays.length,
        accepted: load.statusCodes['202'] ?? 0,
        paysPerSec: Math.round(pays.length / paySeconds),
        p50: load.p50,
        p99: load.p99,
        paySeconds,
        secondsToLastPaid,
        paid,
        paidPerSec: Math.round(paid / secondsToLastPaid),
        chargedTwice: Number(twice[0]?.n ?? 0),
        unpaid: pays.length - paid,
        payRate: PAY_RATE || null,
        cpuMsPerPayment,
        rssMb,
        cores,
      };
      console.log(`  payment wave: ${JSON.stringify(paymentWave)}`);
    }
    await stop(api);
    await queues.close();
  } finally {
    for (const server of [...running]) if (server !== countedRedis) await server.stop();
    // the bench's own Redis holds what cleanup removes: it stops last
    await env.cleanup();
    await stop(countedRedis);
  }
  report(startedAt, http, drains, sale, paymentWave);
}

function report(startedAt: Date, http: HttpRow[], drains: DrainRow[], sale: SaleRow | undefined, paymentWave: PaymentWaveRow | undefined) {
  const find = (prefix: string) => http.find((row) => row.name.startsWith(prefix));
  const bare = find('bare');
  const naive = find('naive');
  const reserve = find('Fastify + Redis');
  const intake = find('intake POST /v1/orders (hot');
  const soldOut = find('intake POST /v1/orders (sold');
  const statusPoll = find('GET /v1/orders/:orderId');
  const ratio = (a?: number, b?: number) => (a && b ? Number((a / b).toFixed(2)) : null);
  const ratios = {
    intakeOverBare: ratio(intake?.reqPerSec, bare?.reqPerSec),
    intakeOverNaive: ratio(intake?.reqPerSec, naive?.reqPerSec),
    soldOutOverBare: ratio(soldOut?.reqPerSec, bare?.reqPerSec),
    // how close the intake comes to what one Lua call per request allows on this box
    intakeOverReserve: ratio(intake?.reqPerSec, reserve?.reqPerSec),
    soldOutOverReserve: ratio(soldOut?.reqPerSec, reserve?.reqPerSec),
    drain1OverIntake: ratio(drains.find((d) => d.workers === 1)?.ordersPerSec, intake?.reqPerSec),
    drain2OverIntake: ratio(drains.find((d) => d.workers === 2)?.ordersPerSec, intake?.reqPerSec),
    // status polls the box answers per checkout it takes: after a sale every buyer polls
    statusPollOverIntake: ratio(statusPoll?.reqPerSec, intake?.reqPerSec),
  };
  // --instructions: the same ratios from work per request (fewer instructions, more requests a
  // core serves), without the optimizing compiler, whose share under valgrind a warm server has not
  const perRequest = (row?: HttpRow) => row?.instructionsPerRequest && row.instructionsPerRequest - (row.compilerInstructionsPerRequest ?? 0);
  const instructionRatios = instructions
    ? {
        intakeOverBare: ratio(perRequest(bare), perRequest(intake)),
        soldOutOverBare: ratio(perRequest(bare), perRequest(soldOut)),
        intakeOverReserve: ratio(perRequest(reserve), perRequest(intake)),
        soldOutOverReserve: ratio(perRequest(reserve), perRequest(soldOut)),
      }
    : undefined;
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  console.log('');
  console.log(`${'what'.padEnd(40)}${pad('req/s', 9)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('p99.9', 8)}${pad('RSS MB', 8)}`);
  for (const row of http) console.log(`${row.name.padEnd(40)}${pad(row.reqPerSec, 9)}${pad(row.p50, 8)}${pad(row.p99, 8)}${pad(row.p999, 8)}${pad(row.rssMb, 8)}`);
  for (const row of drains) console.log(`${`${row.name} (orders/s)`.padEnd(40)}${pad(row.ordersPerSec, 9)}${pad('-', 8)}${pad('-', 8)}${pad('-', 8)}${pad(row.rssMb, 8)}`);
  if (sale) {
    console.log(
      `sale: ${sale.units} units to ${sale.buyers} buyers: ${sale.accepted} accepted, sold out after ${sale.secondsToSoldOut.toFixed(1)} s, intake ${sale.intakeSeconds.toFixed(1)} s, last order in MySQL after ${sale.secondsToLastOrderInMysql.toFixed(1)} s (${sale.ordersPerJob} orders per job, ${sale.ordersPerTransaction} per MySQL transaction), oversold ${sale.oversold}, lost ${sale.lost}`,
    );
  }
  if (paymentWave) {
    console.log(
      `payment wave: ${paymentWave.orders} orders paid by their buyers: ${paymentWave.paysPerSec} pays/s answered (p50 ${paymentWave.p50} ms, p99 ${paymentWave.p99} ms), the last paid after ${paymentWave.secondsToLastPaid.toFixed(1)} s (${paymentWave.paidPerSec} orders paid/s${paymentWave.payRate ? `, asked at ${paymentWave.payRate}/s` : ''}), charged twice ${paymentWave.chargedTwice}, unpaid ${paymentWave.unpaid}`,
    );
    console.log(`  ms of CPU per order paid: ${Object.entries(paymentWave.cpuMsPerPayment).map(([name, ms]) => `${name} ${ms}`).join(', ')}`);
  }
  console.log('cores used during each measured run:');
  for (const row of [...http, ...drains]) console.log(`  ${row.name.padEnd(38)}${showCores(row.cores)}`);
  if (sale) console.log(`  ${'sale'.padEnd(38)}${showCores(sale.cores)}`);
  if (paymentWave) console.log(`  ${'payment wave'.padEnd(38)}${showCores(paymentWave.cores)}`);
  if (instructionRatios) {
    console.log(`${'what'.padEnd(40)}${pad('instructions per request', 26)}${pad('of them GC', 12)}${pad('compiler', 10)}${pad('Redis', 10)}`);
    for (const row of http) console.log(`${row.name.padEnd(40)}${pad(row.instructionsPerRequest ?? '-', 26)}${pad(row.gcInstructionsPerRequest ?? '-', 12)}${pad(row.compilerInstructionsPerRequest ?? '-', 10)}${pad(row.redisInstructionsPerRequest ?? '-', 10)}`);
    for (const row of drains) console.log(`${`${row.name} (per order)`.padEnd(40)}${pad(row.instructionsPerOrder ?? '-', 26)}${pad(row.gcInstructionsPerOrder ?? '-', 12)}${pad(row.compilerInstructionsPerOrder ?? '-', 10)}${pad(row.redisInstructionsPerOrder ?? '-', 10)}`);
    console.log(`ratios from instructions per request: ${JSON.stringify(instructionRatios)}`);
  } else {
    console.log(`ratios: ${JSON.stringify(ratios)}`);
  }
  const file = path.join(resultsDir, `${startedAt.toISOString().replace(/[:]/g, '-').replace(/\..+/, '')}${quick ? '-quick' : ''}${instructions ? '-instructions' : ''}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        quick,
        machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` },
        settings: { connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S, drainOrders: DRAIN_ORDERS, saleUnits: SALE_UNITS, saleBuyers: SALE_BUYERS, e2eWorkers: E2E_WORKERS, apiProcesses: API_PROCESSES, ...(instructions ? { warmupRequests: WARMUP_REQUESTS, countedRequests: COUNTED_REQUESTS, countedWindows: COUNTED_WINDOWS, warmupOrders: WARMUP_ORDERS, countedOrders: COUNTED_ORDERS } : {}) },
        http,
        drains,
        sale,
        paymentWave,
        ratios,
        instructionRatios,
      },
      null,
      2,
    ),
  );
  console.log(`written ${path.relative(repoRoot, file)}`);
  if ((sale && (sale.oversold > 0 || sale.lost > 0)) || (paymentWave && (paymentWave.chargedTwice > 0 || paymentWave.unpaid > 0))) process.exitCode = 1;
}

const hardStop = setTimeout(() => {
  console.error('bench: overall time limit reached');
  for (const server of running) server.child.kill('SIGKILL');
  process.exit(2);
}, (quick && !instructions ? 5 : 30) * 60_000);
hardStop.unref();

main()
  .catch((error: unknown) => {
    console.error(error);
    for (const server of running) console.error(`--- ${server.name} output ---\n${server.output()}`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const server of running) server.child.kill('SIGKILL');
  });

import { configDefaults, defineConfig } from 'vitest/config';
import LongestFirstSequencer from './vitest.sequencer.js';

/**
 * The checkout and order-lifecycle tests again, against a 3-master Redis Cluster that
 * vitest.cluster.setup.ts starts on loopback ports: every key a script or a BullMQ
 * queue touches must sit in its hash tag's slot, or these fail with CROSSSLOT.
 * Tests that need one Redis by nature (a restarted redis-server, the Lua scripts' own
 * tests on a plain connection) stay in the single-Redis project only, as do those whose keys and
 * scripts files here cover already (a return restocks as a paid cancel does; a killed worker's
 * job and a breaker's retries run the same jobs again; a merchant's action and an import move
 * orders in MySQL, their follow-up jobs those of order-life; a payment deadline releases as a
 * cancel of reverse-flows does, on the timers queue of order-life; persist jobs batched, an address
 * changed and pricing rules use the queues and keys flash-sale-checkout and order-life use), to keep
 * the suite within its 10 minutes. orders-awaiting-mysql runs on both: the backlog the intake sheds by
 * is one script call on one Redis and a pipeline per master on a cluster.
 */
const ON_A_REDIS_CLUSTER = [
  'apps/api/test/flash-sale-checkout.test.ts',
  'apps/api/test/flash-sale-changes.test.ts',
  'apps/api/test/bad-input.test.ts',
  'apps/api/test/orders-awaiting-mysql.test.ts',
  'apps/worker/test/order-life.test.ts',
  'apps/worker/test/order-types-life.test.ts',
  'apps/worker/test/reverse-flows.test.ts',
  'apps/worker/test/payment-time-deduction.test.ts',
  'apps/worker/test/stranded-orders.test.ts',
  'apps/worker/test/coupon-expiry.test.ts',
  'apps/worker/test/coupon-total-limit.test.ts',
  'apps/worker/test/stock-buckets.test.ts',
  'apps/worker/test/buyer-rules-across-buckets.test.ts',
  'apps/worker/test/refunds-across-payments.test.ts',
  'libs/testing/test/redis-cluster.test.ts',
];

/**
 * Files about what the cluster is for, a hot SKU's buckets and the stock groups its carts run in
 * (each its own slot, on its own master): their races of a thousand buyers run against the
 * cluster only. On one Redis the same scripts run on one connection (sku-off-sale, console-audit
 * and the stock check's tests sell bucketed SKUs there); run twice, the races were ~20 s of CPU a
 * run for nothing the first run does not check.
 */
const ON_A_REDIS_CLUSTER_ONLY = ['apps/worker/test/stock-buckets.test.ts', 'apps/worker/test/buyer-rules-across-buckets.test.ts'];

// This run's id (libs/testing's testRunName), set before any setup starts a process: every process the
// run starts inherits it, so a later run can stop them should this one be killed before its end
// (vitest.leftovers.setup.ts). Set, not kept from the shell: a stale id there would have the next run
// take this one's processes and databases for a dead run's.
process.env.TEST_RUN_ID = String(process.pid);

export default defineConfig({
  resolve: {
    // workspace packages resolve to their TypeScript sources (the "source" export condition)
    conditions: ['source'],
  },
  ssr: {
    resolve: { conditions: ['source'] },
  },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits as long as an answer may take with four files, their apps and a browser
    // on two busy cores: vitest's 1 s default failed a console page that was only slow. It reads
    // every 100 ms, not 50: each read is an api request and its queries, on the cores the other
    // files wait for (waitFor's pauses grow likewise)
    expect: { poll: { timeout: 10_000, interval: 100 } },
    // files run in parallel: each owns its database, key prefix and queue prefix
    fileParallelism: true,
    // vitest's default is one file at a time on two cores (cores - 1); the files mostly wait
    // on Redis, MySQL, timers and the processes they start, so five side by side, each still
    // with its own names. Five were slower than four (490 s against 467 s, 2026-12-05) while the
    // two cores were 95 % busy with four; once an api's routes compiled on first use, four left
    // 12 % of the cores idle, and five took 596 s against 647 s for four (2026-12-06).
    maxWorkers: 5,
    pool: 'forks',
    // a worker process keeps the modules it loaded for its next file: loading the apps again
    // for each was 130 s of a 340 s run here (2026-12-01). Files share no state but what they
    // name with their own database, prefixes and ports; none mocks a module or sets globals.
    // A process serves the files of one project only, so the cluster's files keep its Redis.
    isolate: false,
    sequence: { sequencer: LongestFirstSequencer },
    reporters: ['default'],
    // what killed runs left removed; one migrated database the test environments copy (TEST_MYSQL_TEMPLATE)
    globalSetup: ['./vitest.leftovers.setup.ts', './vitest.mysql-template.setup.ts'],
    // both in one run, sharing the four processes: run one after the other, the cluster's files
    // waited for the slowest single-Redis file, and each run loaded the apps anew (~60 s)
    projects: [
      {
        extends: true,
        test: {
          name: 'single-redis',
          include: ['apps/*/test/**/*.test.ts', 'libs/*/test/**/*.test.ts', 'scripts/test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...ON_A_REDIS_CLUSTER_ONLY],
        },
      },
      {
        extends: true,
        test: {
          name: 'redis-cluster',
          include: ON_A_REDIS_CLUSTER,
          globalSetup: ['./vitest.cluster.setup.ts'],
          setupFiles: ['./vitest.cluster.env.ts'],
        },
      },
    ],
  },
});

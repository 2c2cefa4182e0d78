import { loadConfig } from '@orders/config';
import { CatalogRepository, StockLedgerRepository, createDb } from '@orders/persistence';
import { Inventory, checkoutTimeoutsOf, connectRedis } from '@orders/stock';
import { StockReconciler, type ReconcileReport } from '@orders/worker';
import { pino } from 'pino';
import { runCommand } from './run-command.js';

const USAGE = 'usage: npm run reconcile [-- --repair]';
/** Drift found and left as it is: a cron job or a runbook step can tell it from "all clear" (0) and "could not check" (1). */
const EXIT_DRIFT_LEFT = 2;

function printReport(report: ReconcileReport): void {
  console.log(`${report.checkedSkus} SKU${report.checkedSkus === 1 ? '' : 's'} checked; ${report.ordersInFlight} accepted order(s) not yet in MySQL counted as in flight.`);
  if (report.unitsRebalanced > 0) console.log(`${report.unitsRebalanced} unit(s) moved between the buckets of SKUs split into buckets.`);
  if (report.drift.length === 0) {
    console.log('No drift: Redis matches the MySQL ledger.');
    return;
  }
  console.log(`Drift (Redis minus ledger) on ${report.drift.length} SKU${report.drift.length === 1 ? '' : 's'}:`);
  const signed = (n: number) => (n > 0 ? `+${n}` : String(n));
  const rows = report.drift.map((drift) => [
    drift.skuId,
    drift.missing ? 'no counters' : signed(drift.available),
    drift.missing ? '-' : signed(drift.reserved),
    drift.missing ? '-' : signed(drift.sold),
    `${drift.expected.available}/${drift.expected.reserved}/${drift.expected.sold}`,
  ]);
  const header = ['SKU', 'AVAILABLE', 'RESERVED', 'SOLD', 'LEDGER SAYS (available/reserved/sold)'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd());
  console.log(report.repaired ? 'Repaired: the Redis counters now match the ledger.' : 'Nothing changed; run with --repair to move the Redis counters to the ledger.');
}

/** npm run reconcile [-- --repair]: compares Redis stock with the MySQL ledger; repairs Redis only when asked. */
runCommand(async () => {
  const args = process.argv.slice(2);
  if (args.some((arg) => arg !== '--repair')) throw new Error(USAGE);
  const config = loadConfig();
  // an operator command fails at once when Redis is away rather than waiting for it
  const redis = connectRedis(config, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
  await redis.connect();
  const { db } = createDb(config.MYSQL_URL, 2);
  const inventory = new Inventory(redis, config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(config));
  const reconciler = new StockReconciler(
    { redis, inventory, ledger: new StockLedgerRepository(db), catalog: new CatalogRepository(db), log: pino({ level: 'silent' }) },
    { settleMs: config.RECONCILE_SETTLE_MS },
  );
  try {
    const report = await reconciler.reconcile({ repair: args.includes('--repair') });
    printReport(report);
    return report.drift.length > 0 && !report.repaired ? EXIT_DRIFT_LEFT : 0;
  } finally {
    await db.destroy();
    redis.disconnect();
  }
});

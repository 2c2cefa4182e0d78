import { loadConfig, urlWithoutPassword } from '@orders/config';
import type { mastersOf } from '@orders/stock';
import type { ReconcileReport, SaleRulesDrift } from '@orders/worker/stock-reconciler';
import { UsageError, refuseArguments, runCommand } from './run-command.js';

const USAGE = `usage: npm run reconcile [-- --repair [--into-empty-prefix]]
Compares the stock counters in Redis with the MySQL stock ledger and prints the drift. Like the
workers' scheduled stock check, it first finishes what was left half-done (stock sets whose answer
was lost, transfers between a SKU's buckets, checkout claims of an api that died), and says so.
  --repair   moves the Redis counters to the ledger, puts the catalog's flash sales (and SKUs off
             sale) back on every bucket whose sale differs (and publishes coupons from MySQL)
  --into-empty-prefix
             with --repair only: repairs even when the catalog has SKUs and Redis holds no key at
             all under REDIS_KEY_PREFIX, recreating the whole shop there (Redis lost everything).
             Without it such a run compares and writes nothing: a wrong REDIS_KEY_PREFIX or
             REDIS_URL reads the same. Check the prefix printed first.
Exits 0 when all is clear, 1 when it could not check, 2 when drift or an oversold SKU is left,
3 when Redis holds nothing under REDIS_KEY_PREFIX (nothing compared, nothing written).`;
/**
 * Drift found and left as it is, units a repair could not take back, or an oversold SKU: a
 * cron job or a runbook step can tell it from "all clear" (0) and "could not check" (1).
 */
const EXIT_NEEDS_ATTENTION = 2;
/**
 * Not one key under REDIS_KEY_PREFIX: a wrong prefix or Redis, or a Redis that lost everything.
 * Every SKU would read `no counters`, as after a real loss, and a repair would write the whole shop
 * where, with a wrong prefix, no process reads it: neither is run without --into-empty-prefix.
 */
const EXIT_EMPTY_PREFIX = 3;
const INTO_EMPTY_PREFIX = '--into-empty-prefix';

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

const saleText = (sale: SaleRulesDrift['catalog']) =>
  (sale.endsAt === 0 ? 'no flash sale' : `${new Date(sale.startsAt).toISOString()} to ${new Date(sale.endsAt).toISOString()}, ${sale.perUserLimit === 0 ? 'no per-buyer limit' : `at most ${sale.perUserLimit} per buyer`}`) +
  (sale.offSale ? ', off sale (every checkout refused)' : '');

function printSaleRulesDrift(report: ReconcileReport, repair: boolean): void {
  for (const { skuId, catalog, buckets } of report.saleRulesDrift) {
    console.log(`FLASH SALE DIFFERS: ${skuId}: the catalog (which prices orders) has ${saleText(catalog)}.`);
    for (const { bucket, ...sale } of buckets) console.log(`  bucket ${bucket} in Redis ${repair ? 'had' : 'sells by'} ${saleText(sale)}${repair ? ": now the catalog's" : ''}.`);
  }
  if (!repair && report.saleRulesDrift.length > 0) console.log("Left as it is; run with --repair to put the catalog's flash sale on every bucket.");
}

/** SKUs whose row another's work held past the lock wait: a check could not compare their sale, a repair changed nothing of them. */
function printBusy(report: ReconcileReport, repair: boolean): void {
  for (const skuId of report.skusBusy) {
    console.log(
      repair
        ? `NOT REPAIRED: ${skuId}: its MySQL row stayed locked past the lock wait (a stock set stuck halfway?); nothing changed.`
        : `NOT COMPARED: ${skuId}: its MySQL row stayed locked past the lock wait (a stock set stuck halfway?); its flash sale in Redis was not compared with the catalog's.`,
    );
  }
}

function printReport(report: ReconcileReport, repair: boolean): void {
  console.log(`${plural(report.checkedSkus, 'SKU')} checked; ${report.ordersInFlight} accepted order(s) not yet in MySQL counted as in flight.`);
  if (report.stockSetsFinished > 0) console.log(`${plural(report.stockSetsFinished, 'stock set')} left half-done in Redis (its answer lost) finished: every bucket and the ledger now hold what the merchant set.`);
  if (report.unitsRebalanced > 0) console.log(`${report.unitsRebalanced} unit(s) moved between the buckets of SKUs split into buckets.`);
  if (report.claimsAbandoned > 0) console.log(`${plural(report.claimsAbandoned, 'checkout claim')} abandoned (an api process died between claim and reservation, no order under the Idempotency-Key): the coupon uses held given back.`);
  if (report.reservationsRestored > 0) console.log(`${plural(report.reservationsRestored, 'open order')}' reservation records lost by Redis put back from MySQL, so their expiry, cancel or payment moves their units.`);
  if (report.checkoutKeysRestored > 0) console.log(`${plural(report.checkoutKeysRestored, 'Idempotency-Key record')} of orders in MySQL lost by Redis put back, so a checkout sent again under its key is answered its order, not a new one.`);
  if (report.ordersFinished > 0) console.log(`${plural(report.ordersFinished, 'order')} released, committed or restocked in the ledger finished in Redis too.`);
  if (report.movementsInFlight > 0) console.log(`${plural(report.movementsInFlight, 'release, commit or restock')} of recent orders under way (one side, Redis or the ledger, not yet run) counted as Redis has them and left to their own step.`);
  if (repair) console.log(`${plural(report.couponsPublished, 'coupon')} not yet ended published to Redis from MySQL; ${report.couponUsesRestored} buyer(s)' coupon uses counted again.`);
  if (repair) console.log(`${report.flashSaleCountsRestored} buyer(s)' counts toward a running flash sale's per-buyer limit counted again.`);
  printSaleRulesDrift(report, repair);
  for (const { skuId, available } of report.oversold) {
    console.log(`OVERSOLD: ${skuId}: the ledger has ${available} units available, more reserved or sold than there was stock.`);
  }
  if (report.drift.length === 0) {
    console.log(repair || report.saleRulesDrift.length === 0 ? 'No drift: Redis matches the MySQL ledger.' : 'No counter drift: the Redis counters match the MySQL ledger.');
    printBusy(report, repair);
    return;
  }
  console.log(`Drift (Redis minus ledger) on ${plural(report.drift.length, 'SKU')}:`);
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
  if (!repair) {
    console.log('The drift is left as it is; run with --repair to move the Redis counters to the ledger.');
    printBusy(report, repair);
  } else if (report.unitsLeft.length === 0 && report.skusBusy.length === 0 && report.skusDeferred.length === 0) {
    console.log('Repaired: the Redis counters now match the ledger.');
  } else {
    for (const { skuId, units } of report.unitsLeft) console.log(`NOT REPAIRED: ${skuId}: ${units} unit(s) too many in Redis could not be taken back (reserved meanwhile, or oversold).`);
    printBusy(report, repair);
    for (const skuId of report.skusDeferred) console.log(`NOT REPAIRED: ${skuId}: its lost counters were not recreated (a stock set of it ended while the repair ran, or the catalog has no such SKU); nothing changed.`);
    console.log('Repaired the rest; run again once those reservations have been paid or released and those rows are free.');
  }
}

interface Asked {
  repair: boolean;
  /** --into-empty-prefix: the operator checked that the empty prefix is the workers' (Redis lost everything). */
  intoEmptyPrefix: boolean;
}

function parseArguments(args: readonly string[]): Asked {
  refuseArguments(args.filter((arg) => arg !== '--repair' && arg !== INTO_EMPTY_PREFIX));
  const asked = { repair: args.includes('--repair'), intoEmptyPrefix: args.includes(INTO_EMPTY_PREFIX) };
  if (asked.intoEmptyPrefix && !asked.repair) throw new UsageError(`${INTO_EMPTY_PREFIX} goes with --repair (a check writes nothing into an empty prefix)`);
  return asked;
}

/** A SCAN pattern of every key under `prefix`: the prefix's own glob characters escaped. */
const under = (prefix: string) => `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;

/**
 * Whether any master of `redis` holds a key matching `pattern` (and `wanted`): a SCAN on each (a
 * Cluster's node sees its own keys only) that stops at the first key found. With none, it reads the
 * whole keyspace, COUNT keys a call.
 */
async function anyKey(masters: ReturnType<typeof mastersOf>, pattern: string, wanted: (key: string) => boolean = () => true): Promise<boolean> {
  for (const node of masters) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (found.some(wanted)) return true;
      cursor = next;
    } while (cursor !== '0');
  }
  return false;
}

/** npm run reconcile [-- --repair]: compares Redis stock with the MySQL ledger; repairs Redis only when asked. */
runCommand({ usage: USAGE, parse: parseArguments, flags: ['--repair', INTO_EMPTY_PREFIX] }, async ({ repair, intoEmptyPrefix }) => {
  const config = loadConfig();
  const [{ CatalogRepository, CouponRepository, StockLedgerRepository, createDb }, { Inventory, checkoutTimeoutsOf, mastersOf }, { StockReconciler }, { pino }, { checkServices, connectCommandRedis, redisLocation, unansweredByRedis }] =
    await Promise.all([import('@orders/persistence'), import('@orders/stock'), import('@orders/worker/stock-reconciler'), import('pino'), import('./preflight.js')]);
  // a wrong database finds no SKUs, which reads as all clear; a wrong prefix holds none of the shop's keys (anyKey below), said before anything is compared
  console.log(
    `Redis at ${redisLocation(config)}, key prefix ${config.REDIS_KEY_PREFIX}; MySQL at ${urlWithoutPassword(config.MYSQL_URL)}, database ${decodeURIComponent(new URL(config.MYSQL_URL).pathname.slice(1))}`,
  );
  await checkServices(config, { mysql: 'existing-database', redis: true });
  const redis = await connectCommandRedis(config);
  // a MySQL that stops answering fails the command (exit 1) rather than holding it, and the repair's lock, for hours
  const { db } = createDb(config.MYSQL_URL, 2, config.RECONCILE_QUERY_TIMEOUT_MS, 'RECONCILE_QUERY_TIMEOUT_MS');
  const ledger = new StockLedgerRepository(db);
  const inventory = new Inventory(redis, config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(config), { limitGivenBackBy: (restock) => ledger.limitGivenBack(restock) });
  const reconciler = new StockReconciler(
    { redis, inventory, ledger, catalog: new CatalogRepository(db), coupons: new CouponRepository(db), log: pino({ level: 'silent' }) },
    { settleMs: config.RECONCILE_SETTLE_MS },
  );
  try {
    // before the run writes anything there (its report, its markers): a second run must find the prefix as empty
    // a shop with no SKU yet (a new one) has nothing under its prefix either, and nothing to compare or lose
    // the shop's own keys: a prefix that is the start of the real one (`os` for `os:`) matches every real key, and holds none of them
    const emptyPrefix = !(repair && intoEmptyPrefix) && !(await anyKey(mastersOf(redis), under(config.REDIS_KEY_PREFIX), (key) => inventory.keys.isOwnKey(key)));
    const skus = emptyPrefix ? (await new CatalogRepository(db).salesOfAll()).length : 0;
    if (skus > 0) {
      const queues = await anyKey(mastersOf(redis), under(`${config.QUEUE_PREFIX}:`));
      console.log(
        `NOTHING UNDER THE KEY PREFIX: Redis holds no key of the shop's at all under ${config.REDIS_KEY_PREFIX} (no SKU's counters, no mark of the workers' stock check), ` +
          `while the catalog has ${plural(skus, 'SKU')}; ${queues ? `the queues under ${config.QUEUE_PREFIX} have keys, so this Redis has not lost everything (unless moments ago, the workers having written only their queues back so far): the prefix is most likely wrong` : `nor is any queue's key under ${config.QUEUE_PREFIX}`}.`,
      );
      console.log(
        `Either REDIS_KEY_PREFIX (or REDIS_URL) is not the workers' and the api's: set theirs and run again; or Redis lost everything and nothing has written under it since: ` +
          `then run \`npm run reconcile -- --repair ${INTO_EMPTY_PREFIX}\`, which recreates the shop's counters from the ledger under ${config.REDIS_KEY_PREFIX}.`,
      );
      console.log(repair ? `Nothing repaired: a repair writes into an empty prefix only with ${INTO_EMPTY_PREFIX}.` : 'Nothing compared.');
      return EXIT_EMPTY_PREFIX;
    }
    const report = await reconciler.reconcile({
      repair,
      // a repair killed (Ctrl-C, a pod evicted) leaves its lock until it lapses: said, or the wait reads as hung
      waitingForRepair: ({ holder, waitMs, lapsesWithinMs }) =>
        console.log(
          `WAITING: another stock repair holds ${config.REDIS_KEY_PREFIX}stock-repair-lock (${holder ?? 'it has just finished'}); this one waits up to ${waitMs / 1000} s for it to finish. ` +
            `A repair that was killed lets it go within ${lapsesWithinMs / 1000} s.`,
        ),
    });
    printReport(report, repair);
    // a repair that left SKUs unrepaired (NOT REPAIRED: their lost counters not recreated this run) has left drift
    const driftLeft = repair
      ? report.unitsLeft.length > 0 || report.skusBusy.length > 0 || report.skusDeferred.length > 0
      : report.drift.length > 0 || report.saleRulesDrift.length > 0 || report.skusBusy.length > 0;
    return driftLeft || report.oversold.length > 0 ? EXIT_NEEDS_ATTENTION : 0;
  } catch (error) {
    throw unansweredByRedis(config, error);
  } finally {
    await db.destroy();
    redis.disconnect();
  }
});

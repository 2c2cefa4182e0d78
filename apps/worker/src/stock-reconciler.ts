import type { StockDrift, StockReport } from '@orders/metrics';
import {
  StatementTooSlow,
  isTransientRefusal,
  type CatalogRepository,
  type CouponRepository,
  type LedgerMovements,
  type LedgerRestock,
  type LedgerStock,
  type StockLedgerRepository,
} from '@orders/persistence';
import { firstOrderIdAt, isOffSale, type Sku } from '@orders/domain';
import { AbandonedClaims, RELEASES_REMEMBERED_MS, SKU_COUNTERS, StockRebalancer, RunLock, RunUnderWay, StockSets, bucketSaleOf, splitStock, stockRulesOf, type BucketSale, type Inventory, type LockWait, type RedisClient } from '@orders/stock';
import type { Logger } from 'pino';

type Counters = Omit<LedgerStock, 'skuId'>;
/** A catalog SKU as the stock check reads it: its buckets, its flash sale and whether it is off sale. */
type CatalogSku = Pick<Sku, 'skuId' | 'flashSale' | 'offSaleSince'> & { stockBuckets: number };

/** One SKU whose Redis counters disagree with the ledger: Redis minus what they should be. */
export interface SkuDrift extends Counters {
  skuId: string;
  /** what the counters should hold */
  expected: Counters;
  /**
   * the SKU is in the catalog but Redis has no counters for it, or counters without its rules
   * (which the checkout refuses); for a SKU split into buckets, in any one of its buckets
   */
  missing: boolean;
}

/**
 * A SKU some bucket of which sells, in Redis, by another flash sale than the catalog's, which
 * orders are priced by: a change of the sale answered 503 that nobody sent again, MySQL away
 * when the api read whether its COMMIT took (catalog-admin.ts changeFlashSale).
 */
export interface SaleRulesDrift {
  skuId: string;
  /** the catalog's sale (0: none), and whether it has the SKU off sale */
  catalog: BucketSale;
  /** the buckets whose sale is another, and what they hold */
  buckets: Array<{ bucket: number } & BucketSale>;
}

export interface ReconcileReport {
  checkedSkus: number;
  /** accepted orders not yet in MySQL: their reservations were counted as in flight, not as drift */
  ordersInFlight: number;
  /**
   * repair only: releases, commits and restocks of recent orders that one side had and the other
   * not yet (the ledger a release or restock, Redis a commit): counted as Redis has them, left to their own late step
   */
  movementsInFlight: number;
  /**
   * merchants' stock sets left half-done in Redis (an answer that never came) finished before reading: the rest of their
   * buckets set, their ledger row written; with repair, also those that waited for a bucket Redis lost, once it is recreated
   */
  stockSetsFinished: number;
  /** units moved between the buckets of SKUs split into buckets before reading (open transfers finished, empty buckets refilled) */
  unitsRebalanced: number;
  /**
   * claims of Idempotency-Keys that checkouts of SKUs in buckets made in their buyer's own group
   * and nobody took up for five REDIS_COMMAND_TIMEOUT_MS, no order accepted under them (an api
   * killed between claim and reservation): abandoned, the coupon uses they held given back
   */
  claimsAbandoned: number;
  /** repair only: orders the ledger shows open (unpaid, a presale's deposit paid) whose reservation record Redis had lost, put back from MySQL */
  reservationsRestored: number;
  /**
   * repair only: records of the Idempotency-Keys of orders in MySQL accepted within IDEMPOTENCY_TTL_MS that Redis had lost,
   * put back, so a buyer resending such a checkout is answered its order, not accepted a second one
   */
  checkoutKeysRestored: number;
  /** repair only: orders the ledger shows released, committed or restocked whose Redis side was finished before comparing */
  ordersFinished: number;
  /** repair only: coupons not yet ended published to Redis again from MySQL, and buyers' lost coupon uses put back */
  couponsPublished: number;
  couponUsesRestored: number;
  /** repair only: buyers' counts toward a running flash sale's per-buyer limit that Redis had lost, put back (restoreFlashSaleCounts) */
  flashSaleCountsRestored: number;
  /** SKUs whose drift was the same in both readings */
  drift: SkuDrift[];
  /** SKUs whose flash sale in Redis is not the catalog's; with repair, each has the catalog's on every bucket now */
  saleRulesDrift: SaleRulesDrift[];
  /** the repair moved every unit of the drift, and put the catalog's sales back */
  repaired: boolean;
  /** units the repair could not take back (reserved meanwhile, or the ledger has fewer than none): drift still there */
  unitsLeft: Array<{ skuId: string; units: number }>;
  /**
   * SKUs whose row lock other work (a merchant's stock set stuck halfway) held past the lock wait: left
   * as they are, for the next run. A check lists those whose sale in Redis it could not compare so.
   */
  skusBusy: string[];
  /**
   * repair only: SKUs whose lost counters were not recreated in this run (the stock set they were measured
   * before ended meanwhile, or the catalog has no such SKU): left as they are, for the next run
   */
  skusDeferred: string[];
  /** SKUs the ledger has fewer than zero units of: more reserved or sold than there was stock */
  oversold: Array<{ skuId: string; available: number }>;
}

interface Reading {
  drift: SkuDrift[];
  /** SKUs whose counters were compared with the ledger */
  checkedSkus: number;
  ordersInFlight: number;
  movementsInFlight: number;
  /** repair only: the ledger's restocks whose Redis side had not run, left out of `expected`: counters recreated get them after */
  lateRestocks: LedgerRestock[];
  oversold: ReconcileReport['oversold'];
  /** the ref of the open stock set each SKU with a lost bucket in `drift` was measured before */
  stockSetsWaiting: Map<string, string>;
}

/** Orders whose reservation records the repair reads, and puts back, at a time. */
const RESTORE_BATCH = 1000;
/** How long a repair waits for another one to finish before it gives up, changing nothing. */
const REPAIR_LOCK_WAIT_MS = 120_000;

const addTo = (bySku: Map<string, Counters>, skuId: string, by: Counters) => {
  const sum = bySku.get(skuId) ?? { available: 0, reserved: 0, sold: 0 };
  bySku.set(skuId, { available: sum.available + by.available, reserved: sum.reserved + by.reserved, sold: sum.sold + by.sold });
};

const same = (a: SkuDrift, b: SkuDrift) => a.missing === b.missing && SKU_COUNTERS.every((counter) => a[counter] === b[counter]);

/** The SKU's buckets that sell by another sale than the catalog's; null when none does (a bucket Redis lost is the counters' repair's). */
function saleDriftOf(sku: Pick<Sku, 'skuId' | 'flashSale' | 'offSaleSince'>, buckets: ReadonlyArray<BucketSale | null>): SaleRulesDrift | null {
  const catalog = bucketSaleOf(sku.flashSale, isOffSale(sku));
  const differing = buckets.flatMap((sale, bucket) =>
    sale && (sale.startsAt !== catalog.startsAt || sale.endsAt !== catalog.endsAt || sale.perUserLimit !== catalog.perUserLimit || sale.offSale !== catalog.offSale) ? [{ bucket, ...sale }] : [],
  );
  return differing.length === 0 ? null : { skuId: sku.skuId, catalog, buckets: differing };
}

/**
 * Compares each SKU's counters in Redis with the MySQL ledger, reports the SKUs that drift
 * (the stock_drift_units gauges read the last report, stock_reconcile_last_success_timestamp_seconds
 * when it was made) and, on request, repairs Redis.
 *
 * What is the truth for what:
 * - the ledger for every movement the system of record has seen: operator adjustments,
 *   persisted reservations, releases, commits (sold) and restocks. Repair moves Redis's
 *   counters to match it, by increments, so checkouts running meanwhile are not overwritten.
 * - Redis for reservations of accepted orders not yet in MySQL: they are counted as in
 *   flight, never as drift. Writing them is the persist job's work, and the stranded-order
 *   sweeper's when that job went missing; the reconciler never repairs them away.
 * A movement is in flight for a moment between its MySQL and its Redis side (a release,
 * a commit), so drift counts only when two readings RECONCILE_SETTLE_MS apart agree.
 * Repair first puts back the reservation records Redis lost of orders the ledger holds
 * open, finishes, order by order, such movements whose Redis side never ran, and
 * publishes the coupons again; only the drift left then moves counters, movements whose
 * two sides still disagree when it reads counted as Redis has them (unsettledMovements).
 * One repair at a time (RunLock).
 * A SKU split into buckets is compared summed over its buckets; units on their way from
 * one bucket to another are in flight too. Each run first finishes transfers cut short
 * and refills empty buckets (StockRebalancer): that moves no unit in or out of a SKU,
 * except a transfer voided by a merchant's stock set, whose units the set overrode and
 * whose ledger `out` row says so. A bucket Redis lost makes its SKU missing: the repair
 * recreates it, moves the sum to the ledger (which counted the units on their way into
 * it), and then runs that step again, which gives those units to it and refills it.
 * Before all that, each run finishes the merchants' stock sets left half-done in Redis
 * (StockSets): their buckets would sell in two generations, and the ledger would lack the set.
 * One that waits for a bucket Redis lost makes its SKU missing, measured as before the set: the
 * repair recreates the bucket holding what the ledger says it held then, and finishes the set.
 * Each run also abandons the checkouts' claims left by an api killed between a request's claim
 * and its reservation (AbandonedClaims): they hold their buyers' coupon uses for orders that
 * never were, and the checkout gives them back only to a retry under the same key.
 */
export class StockReconciler {
  private readonly reportKey: string;
  private readonly checkedAtKey: string;
  private readonly rebalancer: StockRebalancer;
  private readonly stockSets: StockSets;
  private readonly abandonedClaims: AbandonedClaims;
  private readonly repairLock: RunLock;
  private readonly checkLock: RunLock;

  constructor(
    private readonly deps: { redis: RedisClient; inventory: Inventory; ledger: StockLedgerRepository; catalog: CatalogRepository; coupons: CouponRepository; log: Logger },
    private readonly options: { settleMs: number },
  ) {
    this.reportKey = `${deps.inventory.keys.prefix}stock-drift`;
    this.checkedAtKey = `${deps.inventory.keys.prefix}stock-drift-checked-at`;
    this.repairLock = new RunLock(deps.redis, `${deps.inventory.keys.prefix}stock-repair-lock`, 'stock repair');
    // a key of its own: a check running long must not keep an operator's repair waiting
    this.checkLock = new RunLock(deps.redis, `${deps.inventory.keys.prefix}stock-check:stock-repair-lock`, 'stock check');
    this.rebalancer = new StockRebalancer({
      inventory: deps.inventory,
      recordTransfer: (transfer) => deps.ledger.recordTransfer(transfer),
      clock: () => new Date(),
      onError: (error, skuId) => deps.log.warn({ err: error, skuId }, 'stock rebalance failed'),
    });
    this.stockSets = new StockSets({ inventory: deps.inventory, record: (...set) => deps.catalog.setStock(...set), clock: () => new Date() });
    this.abandonedClaims = new AbandonedClaims({ redis: deps.redis, inventory: deps.inventory, redeemedAmong: (orderIds) => deps.coupons.redeemedAmong(orderIds) });
  }

  /**
   * The periodic check (a job every RECONCILE_INTERVAL_MS, any worker serving timers): skipped
   * while another is still running, as on a large ledger one can take longer than the interval,
   * and runs piling up would hold the timers queue's slots. Undefined when skipped.
   */
  async checkUnlessRunning(): Promise<ReconcileReport | undefined> {
    try {
      return await this.checkLock.whileHeld(0, async () => this.reconcile({ repair: false }));
    } catch (error) {
      if (error instanceof RunUnderWay) return undefined;
      throw error;
    }
  }

  /** `waitingForRepair`: told when a repair waits for another one's lock (its holder, how soon a dead holder's lapses). */
  async reconcile({ repair, waitingForRepair }: { repair: boolean; waitingForRepair?: (wait: LockWait) => void }): Promise<ReconcileReport> {
    await this.foldSettledLedger();
    // the catalog's SKUs, their buckets and sales, read once for every step of the run
    const skus = await this.deps.catalog.salesOfAll();
    let stockSetsFinished = await this.finishStockSets();
    let unitsRebalanced = await this.rebalance(skus);
    const claimsAbandoned = await this.abandonClaims();
    if (!repair) {
      const { reading, lasting } = await this.compare({ repair }, skus);
      const sales = await this.compareSales({ repair }, skus);
      // one whose sale could not be compared under its lock is reported as it read without: the gauge errs towards an operator's look
      await this.saveReport(lasting, [...sales.drift.map((drift) => drift.skuId), ...sales.busy]);
      if (lasting.length > 0) this.deps.log.warn({ drift: lasting, repaired: false }, 'stock drift between Redis and the ledger');
      const report = { checkedSkus: reading.checkedSkus, ordersInFlight: reading.ordersInFlight, stockSetsFinished, unitsRebalanced, claimsAbandoned, drift: lasting, oversold: reading.oversold };
      return { ...report, saleRulesDrift: sales.drift, movementsInFlight: 0, reservationsRestored: 0, checkoutKeysRestored: 0, ordersFinished: 0, couponsPublished: 0, couponUsesRestored: 0, flashSaleCountsRestored: 0, repaired: false, unitsLeft: [], skusBusy: sales.busy, skusDeferred: [] };
    }
    // two repairs reading the same drift would each move the counters by it
    return this.repairLock.whileHeld(REPAIR_LOCK_WAIT_MS, async (stillHeld) => {
      const checkoutKeysRestored = await this.restoreCheckoutKeys();
      let ordersFinished = await this.finishOrders();
      const { couponsPublished, couponUsesRestored } = await this.publishCoupons();
      // before the SKUs Redis lost are back on sale (their recreation below): a checkout in between
      // would start a count from none, which the restore then kept, and the buyer bought past the limit
      const { keys: countsPutBack, countedSkus } = await this.restoreFlashSaleCounts();
      const { reading, lasting } = await this.compare({ repair }, skus);
      const unitsLeft: ReconcileReport['unitsLeft'] = [];
      const skusBusy: string[] = [];
      const skusDeferred: string[] = [];
      const recreated = new Set<string>();
      for (const drift of lasting) {
        if (!stillHeld()) throw new Error('the stock repair lock lapsed (Redis unreachable for too long?); run the repair again');
        const { untaken, stockSetFinished, busy, deferred, countersRecreated } = await this.repair(drift, reading.stockSetsWaiting.get(drift.skuId));
        if (countersRecreated) recreated.add(drift.skuId);
        if (untaken > 0) unitsLeft.push({ skuId: drift.skuId, units: untaken });
        if (stockSetFinished) stockSetsFinished++;
        if (busy) skusBusy.push(drift.skuId);
        if (deferred) skusDeferred.push(drift.skuId);
      }
      // once the counters hold their units: a run stopped before (Ctrl-C, a pod evicted, the lock lapsed)
      // leaves open orders without a record, their units reserved for good (drift the next repair
      // finds), never a record whose close gives back units the counters never held
      const reservationsRestored = await this.restoreLostReservations(countedSkus);
      // an order closed as its record went back found none to close, and gave nothing back: closed now
      if (reservationsRestored > 0) ordersFinished += await this.finishOrders();
      // the restocks under way were left out of the counters recreated: given now, once every lost SKU
      // they restock is back (one lost SKU's turn would leave another's units out, its marker set).
      // One whose own step ran meanwhile is not given again; run before the recreation, that step left
      // the lost SKU without its units (taken off sale, never sold twice): the next repair finds them.
      // A count put back from MySQL left a cancellation's units out already: they go back to no limit twice
      for (const restock of reading.lateRestocks.filter(({ lines }) => lines.some((line) => recreated.has(line.skuId)))) {
        await this.deps.inventory.restockStock(restock.orderId, restock.ref, restock.lines, countsPutBack);
      }
      // transfers into the buckets recreated are given now, and those left empty refilled
      if (lasting.some((drift) => drift.missing)) unitsRebalanced += await this.rebalance(skus);
      // after the buckets lost are back: they came back with the catalog's sale
      const sales = await this.compareSales({ repair }, skus);
      skusBusy.push(...sales.busy.filter((skuId) => !skusBusy.includes(skuId)));
      // what the repair could not take back, or left alone, is still drift, for the gauges too
      await this.saveReport(
        [...lasting.filter((drift) => skusBusy.includes(drift.skuId) || skusDeferred.includes(drift.skuId)), ...unitsLeft.map(({ skuId, units }) => ({ skuId, available: units, reserved: 0, sold: 0 }))],
        sales.busy,
      );
      if (lasting.length > 0) this.deps.log.warn({ drift: lasting, unitsLeft, skusBusy, skusDeferred, repaired: true }, 'stock drift between Redis and the ledger');
      return {
        checkedSkus: reading.checkedSkus,
        ordersInFlight: reading.ordersInFlight,
        movementsInFlight: reading.movementsInFlight,
        stockSetsFinished,
        unitsRebalanced,
        claimsAbandoned,
        reservationsRestored,
        checkoutKeysRestored,
        ordersFinished,
        couponsPublished,
        couponUsesRestored,
        flashSaleCountsRestored: countsPutBack.size,
        drift: lasting,
        saleRulesDrift: sales.drift,
        repaired: lasting.length + sales.drift.length > 0 && unitsLeft.length === 0 && skusBusy.length === 0 && skusDeferred.length === 0,
        unitsLeft,
        skusBusy,
        skusDeferred,
        oversold: reading.oversold,
      };
    }, waitingForRepair);
  }

  /**
   * Folds the ledger's long-settled movements into its sums first, so each reading reads the recent
   * rows only. The readings are as right without it, only slower: a failure is logged, and the check goes on.
   */
  private async foldSettledLedger(): Promise<void> {
    try {
      await this.deps.ledger.foldSettled();
    } catch (error) {
      this.deps.log.warn({ err: error }, 'stock check: could not fold the settled ledger rows into their sums; the check reads them all this time');
    }
  }

  /** Drift that two readings RECONCILE_SETTLE_MS apart agree on, and the later reading. */
  private async compare({ repair }: { repair: boolean }, skus: readonly CatalogSku[]): Promise<{ reading: Reading; lasting: SkuDrift[] }> {
    const first = await this.read({ repair }, skus);
    if (first.drift.length === 0) return { reading: first, lasting: [] };
    await new Promise((resolve) => setTimeout(resolve, this.options.settleMs));
    const reading = await this.read({ repair }, skus);
    const lasting = reading.drift.filter((drift) => first.drift.some((earlier) => earlier.skuId === drift.skuId && same(earlier, drift)));
    return { reading, lasting };
  }

  /**
   * The SKUs whose flash sale in Redis, or being off sale, is not the catalog's, in any bucket: found
   * in one reading of all, each then confirmed under the SKU's row lock, which a change of its sale
   * (or of its being on sale) holds from before its Redis side until its COMMIT, so a change under way
   * is never taken for drift. With repair, the catalog's sale is put on every bucket under that lock,
   * opened or not: orders are priced by the catalog's, so Redis selling by another only makes more
   * orders priced by a sale they were not accepted by; and a SKU the shop took off sale sells nothing. A SKU whose row stays locked past the lock wait is `busy`, for the next run.
   */
  private async compareSales({ repair }: { repair: boolean }, skus: readonly CatalogSku[]): Promise<{ drift: SaleRulesDrift[]; busy: string[] }> {
    const { catalog, inventory, log } = this.deps;
    const inRedis = await inventory.salesInBuckets(skus);
    const drift: SaleRulesDrift[] = [];
    const busy: string[] = [];
    for (const suspect of skus.filter((sku) => saleDriftOf(sku, inRedis.get(sku.skuId)!) !== null)) {
      try {
        await catalog.whileSkuLocked(suspect.skuId, async () => {
          const sku = await catalog.findSku(suspect.skuId);
          const found = sku && saleDriftOf(sku, (await inventory.salesInBuckets([sku])).get(sku.skuId)!);
          if (!sku || !found) return;
          drift.push(found);
          if (repair) await Promise.all([inventory.putCatalogSale(sku, sku.flashSale), inventory.putOffSale(sku, isOffSale(sku))]);
        });
      } catch (error) {
        if (!isTransientRefusal(error) && !(error instanceof StatementTooSlow)) throw error;
        log.warn({ err: error, skuId: suspect.skuId }, 'stock check: the row of the SKU stayed locked past the lock wait; its flash sale in Redis is compared with the catalog next run');
        busy.push(suspect.skuId);
      }
    }
    if (drift.length > 0) {
      log.warn(
        { saleRulesDrift: drift, repaired: repair },
        repair ? "flash sales in Redis were not the catalog's: the catalog's put on every bucket" : "flash sales in Redis are not the catalog's, which orders are priced by: run npm run reconcile -- --repair",
      );
    }
    return { drift, busy };
  }

  /**
   * Puts back from MySQL the reservation records Redis lost of the orders the ledger holds
   * open (unpaid, a presale's deposit paid). The repair counts their placement units
   * reserved, as the ledger does, and what closes such an order (its expiry, a cancel, its
   * balance deadline) gives back what its record holds: without one, nothing, and the units
   * stayed reserved for good. Put back by the repair, after it moved the counters, and nowhere
   * else: only then do the counters hold the units a record lost since gives back (before the
   * repair, after a failover to a replica behind, they never had them; a record put back
   * first, by a run stopped before the counters, gave them back on top, and they sold twice).
   * Its lines of a SKU whose buyer's count this run put back, with the order in it, count toward
   * the limit (`countedSkus`), as restoreBoughtCounts marks the records it finds. Before
   * finishOrders, which releases a record put back as its order closed.
   */
  private async restoreLostReservations(countedSkus: ReadonlyMap<string, ReadonlySet<string>>): Promise<number> {
    const { inventory, ledger, log } = this.deps;
    const open = await ledger.openReservations(firstOrderIdAt(inventory.reservationsKeptSince(new Date()).getTime()));
    let restored = 0;
    for (let i = 0; i < open.length; i += RESTORE_BATCH) {
      const batch = open.slice(i, i + RESTORE_BATCH);
      const states = await inventory.reservationStates(batch);
      for (const order of await ledger.reservationsOf(batch.filter((orderId) => !states.has(orderId)))) {
        if (await inventory.restoreReservation(order, countedSkus.get(order.orderId))) restored++;
      }
    }
    if (restored > 0) log.warn({ restored }, 'stock repair: put back from MySQL the reservation records Redis had lost');
    return restored;
  }

  /**
   * Puts back the records of the Idempotency-Keys of the orders MySQL has, accepted within
   * IDEMPOTENCY_TTL_MS, that Redis lost: they lived in Redis alone, and a buyer resending a
   * checkout whose 202 they never saw was accepted a second order, reserving (and maybe paying)
   * twice. Imported orders have no key. Orders accepted and not yet in MySQL are lost with their
   * records (docs/operations.md, "Redis restarted").
   */
  private async restoreCheckoutKeys(): Promise<number> {
    const { inventory, ledger, log } = this.deps;
    const since = inventory.checkoutKeysKeptSince(new Date());
    const restored = await inventory.restoreCheckoutKeys(await ledger.checkoutKeys(firstOrderIdAt(since.getTime()), since));
    if (restored > 0) log.warn({ restored }, "stock repair: put back from MySQL the records of buyers' Idempotency-Keys Redis had lost");
    return restored;
  }

  /**
   * Runs the Redis side of every release, commit and restock the ledger has and Redis has
   * not (a cancel whose Redis step failed, a process that died in between): the order's own
   * idempotent step, which marks its reservation record done. Moving the counters instead
   * leaves the record 'reserved', and whatever finishes the order later (its payment
   * deadline, a dead letter replayed) gives the same units back a second time.
   * Orders holding a SKU whose counters Redis lost get their step too: it moves no counter
   * of that SKU (the scripts leave a lost SKU's hash alone), and marks the record done, so
   * nothing gives the units back on top of the counters' recreation, which counts them from
   * the ledger.
   */
  private async finishOrders(): Promise<number> {
    const { inventory, ledger, log } = this.deps;
    const now = new Date();
    let finished = 0;
    const closed = await ledger.closedReservations(firstOrderIdAt(inventory.reservationsKeptSince(now).getTime()));
    const states = await inventory.reservationStates(closed.map((order) => order.orderId));
    for (const order of closed) {
      if (states.get(order.orderId) !== 'reserved') continue;
      if (order.kind === 'release') {
        if (await inventory.releaseStock(order.orderId, order.userId, order.reason)) finished++;
      } else {
        const outcome = await inventory.commitStock(order.orderId);
        if (outcome.status === 'committed') finished++;
        else log.warn({ orderId: order.orderId, outcome }, 'stock repair: the ledger has the order committed, Redis could not commit it');
      }
    }
    const restocks = await ledger.restocks(firstOrderIdAt(inventory.restocksKeptSince(now).getTime()));
    const restocked = await inventory.restockedRefs(restocks);
    for (const restock of restocks) {
      if (restocked.has(restock.ref)) continue;
      if (await inventory.restockStock(restock.orderId, restock.ref, restock.lines)) finished++;
    }
    if (finished > 0) log.warn({ finished }, 'stock repair: finished the Redis side of orders the ledger had moved');
    return finished;
  }

  /**
   * Coupons live in Redis only from their creation on: after Redis lost its data, the
   * checkout refuses every code. Each coupon not yet ended is published again from MySQL,
   * and buyers' uses Redis no longer counts are counted again from the orders that redeemed it.
   */
  private async publishCoupons(): Promise<{ couponsPublished: number; couponUsesRestored: number }> {
    const { inventory, coupons } = this.deps;
    let couponUsesRestored = 0;
    const now = new Date();
    // the orders whose use went back within the time their release may still be asked for again (releaseRemembered)
    const inForce = await coupons.inForce(now, new Date(now.getTime() - RELEASES_REMEMBERED_MS));
    for (const coupon of inForce) {
      // counts first: a checkout between the two would otherwise start a count the restore then keeps
      couponUsesRestored += await inventory.restoreCouponUses(coupon, coupon.redemptions, coupon.givenBack);
      await inventory.publishCoupon(coupon, coupon.redemptions.length);
    }
    return { couponsPublished: inForce.length, couponUsesRestored };
  }

  /**
   * The buyers' counts toward each running flash sale's per-buyer limit live in Redis alone: after
   * Redis lost one, the buyer could buy past the limit. Each count Redis no longer has is put back,
   * summed from the orders that still hold the buyer's units (MySQL's, and those accepted and not yet
   * in it: their reservation records), as the coupon uses are; counts Redis still has are kept, or
   * raised to that sum (restoreBought-1+n.lua). Returns the counts put back or raised (`keys`), and,
   * per order, the SKUs whose count put back holds its units (`countedSkus`): a reservation record put
   * back after (restoreLostReservations) counts those lines toward the limit, so its release gives
   * them back to it.
   */
  private async restoreFlashSaleCounts(): Promise<{ keys: Set<string>; countedSkus: Map<string, Set<string>> }> {
    const { inventory, ledger, log } = this.deps;
    // Redis first, then MySQL: an order persisted in between is in both, and `persisted` says so
    const inFlight = await this.limitedInFlight();
    const { sales, persisted } = await ledger.limitedSales(new Date(), inFlight.map((line) => line.orderId));
    const restored = new Set<string>();
    const countedSkus = new Map<string, Set<string>>();
    for (const sale of sales) {
      const accepted = inFlight.filter((line) => line.skuId === sale.skuId && !persisted.has(line.orderId));
      const held = [...sale.held, ...accepted];
      const keys = new Set(await inventory.restoreBoughtCounts(sale, held));
      for (const key of keys) restored.add(key);
      for (const { orderId, userId } of held) {
        if (keys.has(inventory.keys.bought(inventory.keys.groupOfOrder(orderId), sale.skuId, userId))) countedSkus.set(orderId, (countedSkus.get(orderId) ?? new Set()).add(sale.skuId));
      }
    }
    if (restored.size > 0) log.warn({ restored: restored.size }, "stock repair: put back buyers' flash-sale counts Redis had lost");
    return { keys: restored, countedSkus };
  }

  /** The units of the accepted orders not yet in MySQL that their reservations count toward a flash sale's per-buyer limit. */
  private async limitedInFlight(): Promise<Array<{ orderId: string; userId: string; skuId: string; qty: number }>> {
    const { redis, inventory } = this.deps;
    const lines: Array<{ orderId: string; userId: string; skuId: string; qty: number }> = [];
    for (const group of inventory.keys.groups()) {
      const reserved = await this.reservedLines(group, await redis.zrange(inventory.keys.accepted(group), 0, -1));
      for (const { orderId, userId, skuId, qty, limited } of reserved) if (limited && userId !== '') lines.push({ orderId, userId, skuId, qty });
    }
    return lines;
  }

  /**
   * Finishes the merchants' stock sets open longer than the settle time: their answer never
   * came, and the admin may never send them again. Before the transfers: one waiting for its
   * set to reach its receiving bucket is given in the same run.
   */
  private async finishStockSets(): Promise<number> {
    const finished = await this.stockSets.finishOpen(this.options.settleMs, (error, set) =>
      this.deps.log.warn({ err: error, skuId: set.skuId, stock: set.stock }, 'a stock set left half-done in Redis could not be finished; the next run tries again'),
    );
    if (finished > 0) this.deps.log.warn({ finished }, 'stock sets left half-done in Redis finished: every bucket and the ledger now hold what the merchant set');
    return finished;
  }

  /** Abandons the checkouts' claims whose requests are gone with no order accepted under them, each logged; returns how many. */
  private async abandonClaims(): Promise<number> {
    const abandoned = await this.abandonedClaims.abandonGone();
    for (const claim of abandoned) {
      this.deps.log.warn(claim, 'checkout claim abandoned: its request was killed between its claim and its reservation, no order under its Idempotency-Key; the coupon use it held given back');
    }
    return abandoned.length;
  }

  /** Finishes transfers open longer than the settle time (their process died) and refills every empty bucket. */
  private async rebalance(skus: readonly CatalogSku[]): Promise<number> {
    let moved = await this.rebalancer.completeOpenTransfers(this.options.settleMs);
    for (const { skuId, stockBuckets } of skus) if (stockBuckets > 1) moved += await this.rebalancer.rebalance(skuId);
    return moved;
  }

  /** The last report, per SKU that drifts, and when its check finished, for the stock check's gauges of every worker. */
  async lastReport(): Promise<StockReport> {
    const [fields, checkedAt] = await Promise.all([this.deps.redis.hgetall(this.reportKey), this.deps.redis.get(this.checkedAtKey)]);
    const drift: StockReport['drift'] = [];
    const saleRulesDrift: string[] = [];
    for (const [skuId, value] of Object.entries(fields)) {
      const [available = 0, reserved = 0, sold = 0, saleDiffers = 0] = JSON.parse(value) as number[];
      if (SKU_COUNTERS.some((counter) => ({ available, reserved, sold })[counter] !== 0)) drift.push({ skuId, available, reserved, sold });
      if (saleDiffers === 1) saleRulesDrift.push(skuId);
    }
    return { checkedAt: checkedAt === null ? null : new Date(Number(checkedAt)), drift, saleRulesDrift };
  }

  /**
   * Redis's counters against the ledger's. The repair also counts the movements of recent orders
   * whose two sides disagree as Redis has them (unsettledMovements). A check does not: a step
   * that never comes leaves drift, reported for an operator's repair, whose finishOrders runs it.
   */
  private async read({ repair }: { repair: boolean }, skus: readonly CatalogSku[]): Promise<Reading> {
    const { redis, inventory, ledger } = this.deps;
    const { keys } = inventory;
    const now = new Date();
    const movementsFrom = { orders: firstOrderIdAt(inventory.reservationsKeptSince(now).getTime()), restocks: firstOrderIdAt(inventory.restocksKeptSince(now).getTime()) };
    // a commit runs in Redis before the ledger: one Redis has before the counters are read is in them
    const committedBefore = repair ? await this.committedInRedis(movementsFrom.orders) : new Set<string>();
    // every bucket of each SKU, as many as the catalog says (fixed when it is created): Redis keeps that
    // number in bucket 0, and a SKU whose bucket 0 Redis lost says none
    const buckets = new Map(skus.map((sku) => [sku.skuId, sku.stockBuckets]));
    const skuIds = [...buckets.keys()];
    const counters = new Map<string, { values: Counters | null; lost: boolean }>();
    const acceptedByGroup: Array<[string, string[]]> = [];
    const settingStock = new Set<string>();
    const openSets = new Map<string, { ref: string; generation: number; shares: number[] }>();
    for (const [bucket, group] of keys.groups().entries()) {
      const inGroup = skuIds.filter((skuId) => bucket < buckets.get(skuId)!);
      // a group's keys share a hash tag, so this is one atomic MULTI on one node
      const transaction = redis.multi().zrange(keys.accepted(group), 0, -1);
      for (const skuId of inGroup) transaction.hmget(keys.sku(group, skuId), 'available', 'reserved', 'sold', 'deduction', 'generation', 'setFrom', 'setRef', 'setStock');
      // the open stock sets are bucket 0's group's: read in the same instant as its counters
      if (bucket === 0) transaction.zrange(keys.openStockSets(), 0, -1);
      const replies = (await transaction.exec()) ?? [];
      const [acceptedError, accepted] = replies[0] ?? [new Error('no reply'), []];
      if (acceptedError) throw acceptedError;
      acceptedByGroup.push([group, accepted as string[]]);
      if (bucket === 0) {
        const [setsError, open] = replies[inGroup.length + 1] ?? [new Error('no reply'), []];
        if (setsError) throw setsError;
        for (const skuId of open as string[]) settingStock.add(skuId);
      }
      inGroup.forEach((skuId, i) => {
        const [error, reply] = replies[i + 1] ?? [new Error('no reply'), null];
        if (error) throw error;
        const [available, reserved, sold, deduction, generation, setFrom, setRef, setStock] = reply as Array<string | null>;
        const values = available === null ? null : { available: Number(available), reserved: Number(reserved ?? 0), sold: Number(sold ?? 0) };
        // bucket 0 records the open set, and is read first
        if (bucket === 0 && setRef && settingStock.has(skuId)) openSets.set(skuId, { ref: setRef, generation: Number(generation), shares: splitStock(Number(setStock), buckets.get(skuId)!) });
        const set = openSets.get(skuId);
        // a bucket the open set has reached counts what it would hold without the set, as the
        // ledger does until the set's row, measured from what each bucket held before it
        if (values && set && Number(generation) === set.generation) values.available += Number(setFrom) - set.shares[bucket]!;
        const sum = counters.get(skuId) ?? { values: null, lost: false };
        counters.set(skuId, sum);
        // any bucket without counters, or with counters and without the rules (which the
        // checkout refuses), is lost: its buyers are refused until the repair recreates it
        if (values === null || deduction === null) sum.lost = true;
        if (values && sum.values) for (const counter of SKU_COUNTERS) sum.values[counter] += values[counter];
        else if (values) sum.values = values;
      });
    }
    // Redis first, then MySQL: an order persisted in between is in both, and the
    // snapshot's `persisted` says so; one cannot be in neither (its id leaves the
    // accepted set only after its MySQL commit)
    const acceptedIds = acceptedByGroup.flatMap(([, ids]) => ids);
    // in flight: what the accepted orders not yet persisted hold reserved at placement, as each
    // one's record has its lines (the SKU's hash may be lost with the units still held); the
    // records read before the ledger, as the counters: one read after the snapshot may have been
    // persisted since and released, and would be counted neither in flight nor in the ledger
    const acceptedLines = [];
    for (const [group, ids] of acceptedByGroup) acceptedLines.push(...(await this.reservedLines(group, ids)));
    const snapshot = await ledger.snapshot(acceptedIds, repair ? movementsFrom : undefined);
    const unsettled = snapshot.movements ? await this.unsettledMovements(snapshot.movements, committedBefore) : { bySku: new Map<string, Counters>(), lateRestocks: [], count: 0 };
    const inFlight = new Map<string, number>();
    for (const { orderId, skuId, qty, deduction } of acceptedLines) {
      if (deduction === 'placement' && !snapshot.persisted.has(orderId)) inFlight.set(skuId, (inFlight.get(skuId) ?? 0) + qty);
    }
    // units taken off a bucket and in none: on their way, or voided by a stock set whose
    // ledger row counted the SKU without them; a voided transfer's `out` row is written
    // just before it closes, so only in that instant are they counted twice
    const inTransit = new Map<string, number>();
    for (const transfer of await inventory.openTransfers(new Date())) {
      if (transfer.state !== 'given') inTransit.set(transfer.skuId, (inTransit.get(transfer.skuId) ?? 0) + transfer.qty);
    }

    const drift: SkuDrift[] = [];
    let checkedSkus = 0;
    const stockSetsWaiting = new Map<string, string>();
    const oversold = snapshot.stock.filter((sku) => sku.available < 0).map(({ skuId, available }) => ({ skuId, available }));
    for (const ledgerStock of snapshot.stock) {
      const redisStock = counters.get(ledgerStock.skuId);
      // created after the counters were read: next pass
      if (!redisStock) continue;
      const held = inFlight.get(ledgerStock.skuId) ?? 0;
      const moving = inTransit.get(ledgerStock.skuId) ?? 0;
      const late = unsettled.bySku.get(ledgerStock.skuId) ?? { available: 0, reserved: 0, sold: 0 };
      const expected = { available: ledgerStock.available - held - moving + late.available, reserved: ledgerStock.reserved + held + late.reserved, sold: ledgerStock.sold + late.sold };
      const actual = redisStock.values ?? { available: 0, reserved: 0, sold: 0 };
      const skuDrift: SkuDrift = {
        skuId: ledgerStock.skuId,
        available: actual.available - expected.available,
        reserved: actual.reserved - expected.reserved,
        sold: actual.sold - expected.sold,
        expected,
        missing: redisStock.lost,
      };
      checkedSkus++;
      // a merchant's stock set under way (its Redis side begun, its ledger row not yet written, or
      // left half-done) is in flight: its row will measure from what the buckets held before it,
      // so a repair moving them meanwhile would be counted again on top of the set. One that waits
      // for a lost bucket waits for the repair, which recreates it as before the set and finishes it
      const waiting = skuDrift.missing ? openSets.get(skuDrift.skuId)?.ref : undefined;
      if (settingStock.has(skuDrift.skuId) && waiting === undefined) continue;
      if (waiting !== undefined) stockSetsWaiting.set(skuDrift.skuId, waiting);
      if (skuDrift.missing || SKU_COUNTERS.some((counter) => skuDrift[counter] !== 0)) drift.push(skuDrift);
    }
    return {
      drift,
      checkedSkus,
      ordersInFlight: acceptedIds.length - snapshot.persisted.size,
      movementsInFlight: unsettled.count,
      lateRestocks: unsettled.lateRestocks,
      oversold,
      stockSetsWaiting,
    };
  }

  /**
   * What Redis holds more than the ledger, per SKU, for the movements of recent orders whose two
   * sides disagree: a release or restock in the ledger whose Redis step has not run (it runs
   * after the MySQL commit), or a commit in Redis whose ledger row is not written yet (it is
   * written after). Each is counted as Redis has it and left to its own step, late when a worker
   * died between the two sides and its job runs again after its lock: moved by the counters
   * instead, it would be moved a second time by that step, units sold twice or never.
   * A record still 'reserved', or a restock not done, when read after the counters was so then;
   * a commit counts only if Redis had it before them (`committedBefore`). A commit the ledger has
   * and Redis not is no step under way (Redis commits first): finishOrders failed to commit it,
   * and the counters move.
   */
  private async unsettledMovements(
    { closed, restocks }: LedgerMovements,
    committedBefore: ReadonlySet<string>,
  ): Promise<{ bySku: Map<string, Counters>; lateRestocks: LedgerRestock[]; count: number }> {
    const { inventory, ledger } = this.deps;
    const committed = new Set(closed.filter((order) => order.kind === 'commit').map((order) => order.orderId));
    const released = closed.filter((order) => order.kind === 'release' && !committed.has(order.orderId)).map((order) => order.orderId);
    const states = await inventory.reservationStates(released);
    // how the ledger has each order whose Redis record says otherwise
    const inLedger = new Map<string, 'open' | 'released'>();
    for (const orderId of released) if (states.get(orderId) === 'reserved') inLedger.set(orderId, 'released');
    const closedIds = new Set(closed.map((order) => order.orderId));
    for (const orderId of committedBefore) if (!closedIds.has(orderId)) inLedger.set(orderId, 'open');
    const bySku = new Map<string, Counters>();
    for (const { orderId, lines } of await ledger.reservationsOf([...inLedger.keys()])) {
      const open = inLedger.get(orderId) === 'open';
      for (const { skuId, qty, deduction } of lines) {
        // Redis minus the ledger, per line: a reservation holds placement units reserved, a commit every unit sold
        const reserved = deduction === 'placement' ? qty : 0;
        addTo(bySku, skuId, open ? { available: reserved - qty, reserved: -reserved, sold: qty } : { available: -reserved, reserved, sold: 0 });
      }
    }
    const done = await inventory.restockedRefs(restocks);
    const lateRestocks = restocks.filter((restock) => !done.has(restock.ref));
    // the ledger has these units back on sale, Redis still sold
    for (const { lines } of lateRestocks) for (const { skuId, qty } of lines) addTo(bySku, skuId, { available: -qty, reserved: 0, sold: qty });
    return { bySku, lateRestocks, count: inLedger.size + lateRestocks.length };
  }

  /**
   * The recent orders the ledger has not closed whose Redis record is committed: their payment's
   * commit ran in Redis, its ledger row (written after) not yet.
   */
  private async committedInRedis(fromOrderId: string): Promise<Set<string>> {
    const unclosed = await this.deps.ledger.unclosedOrders(fromOrderId);
    const states = await this.deps.inventory.reservationStates(unclosed);
    return new Set(unclosed.filter((orderId) => states.get(orderId) === 'committed'));
  }

  /** The lines of these orders of a group whose reservation records hold them reserved, as each record has them. */
  private async reservedLines(group: string, orderIds: readonly string[]): Promise<Array<{ orderId: string; userId: string; skuId: string; qty: number; deduction: string; limited: boolean }>> {
    if (orderIds.length === 0) return [];
    const pipeline = this.deps.redis.pipeline();
    for (const orderId of orderIds) pipeline.hmget(this.deps.inventory.keys.order(group, orderId), 's', 'u', 'p', 'l');
    const lines: Array<{ orderId: string; userId: string; skuId: string; qty: number; deduction: string; limited: boolean }> = [];
    ((await pipeline.exec()) ?? []).forEach(([error, reply], i) => {
      if (error) throw error;
      const [state, userId, payload, recorded] = reply as Array<string | null>;
      if (state !== 'reserved' || !payload || !recorded) return;
      const { items } = JSON.parse(payload) as { items: Array<{ skuId: string }> };
      // per line, in the order's line order: [units, deduction, limited] (reserveStock-7+c+2n.lua)
      (JSON.parse(recorded) as Array<[number, string, number]>).forEach(([qty, deduction, limited], line) => {
        const skuId = items[line]?.skuId;
        if (skuId !== undefined) lines.push({ orderId: orderIds[i]!, userId: userId ?? '', skuId, qty, deduction, limited: limited === 1 });
      });
    });
    return lines;
  }

  /**
   * Moves a SKU's counters to the ledger; returns the sellable units it could not take away.
   * Lost buckets are recreated and filled under the SKU's row lock, as a stock set runs: a set
   * between the two would measure a recreated bucket empty, and the fill then put its units on
   * sale on top of the set. A SKU whose open stock set (`waitingSet`, its ref) waits for its
   * lost buckets was measured as before the set: the buckets are recreated holding that under
   * the set's finish, which then measures the set's ledger row from them. `busy`: the row lock
   * was not had within the lock wait, nothing changed. `countersRecreated`: its lost buckets are back.
   */
  private async repair(drift: SkuDrift, waitingSet: string | undefined): Promise<{ untaken: number; stockSetFinished: boolean; busy: boolean; deferred: boolean; countersRecreated: boolean }> {
    const { inventory, catalog, log } = this.deps;
    let untaken = 0;
    let stockSetFinished = false;
    let countersRecreated = false;
    if (drift.missing) {
      const sku = await catalog.findSku(drift.skuId);
      if (!sku) return { untaken, stockSetFinished, busy: false, deferred: true, countersRecreated };
      const recreate = async () => {
        // the lost buckets come back empty, and buckets Redis still has (a cluster node that lost
        // one bucket) keep their counters, their orders' units in them, and get their rules back
        // if they had none; the sum then moves to the ledger
        const recreated = await inventory.recreateLostBuckets(stockRulesOf(sku));
        // Redis holds no fewer than none: a ledger below zero (oversold) stays as drift
        const target = { ...drift.expected, available: Math.max(drift.expected.available, 0) };
        untaken = Math.max(-drift.expected.available, 0);
        // what the buckets kept lack is what the lost ones held (to the unit when one was lost and
        // the others are right): it goes back to the first, where its orders will pay or release it.
        // From the reading the drift was found in, not a fresh read of the kept buckets: they went on
        // selling since, and each checkout, release or restock meanwhile moves the ledger as well
        // (moving them to the reading's target put its units back on sale, to be sold twice)
        const held = { available: drift.expected.available + drift.available, reserved: drift.expected.reserved + drift.reserved, sold: drift.expected.sold + drift.sold };
        const by = { available: target.available - held.available, reserved: target.reserved - held.reserved, sold: target.sold - held.sold };
        untaken += await inventory.correctCounters(drift.skuId, by, { into: recreated[0] ?? 0 });
        countersRecreated = true;
      };
      try {
        if (waitingSet === undefined) {
          if (!(await catalog.whileSkuLocked(drift.skuId, recreate))) return { untaken, stockSetFinished, busy: false, deferred: true, countersRecreated };
        } else {
          stockSetFinished = await this.stockSets.finishRecreating({ skuId: drift.skuId, ref: waitingSet }, recreate);
          if (!stockSetFinished) {
            // its ledger row was written, or the set closed, since the reading that measured the SKU before it
            log.warn({ skuId: drift.skuId, ref: waitingSet }, 'stock repair: the stock set the SKU was measured before ended meanwhile; the next run repairs it');
            return { untaken, stockSetFinished, busy: false, deferred: true, countersRecreated };
          }
        }
      } catch (error) {
        // one SKU's row held by a stuck set must not keep the other SKUs from their repair
        if (!isTransientRefusal(error) && !(error instanceof StatementTooSlow)) throw error;
        log.warn({ err: error, skuId: drift.skuId }, 'stock repair: the row of the SKU stayed locked past the lock wait (a stock set stuck halfway?); left as it is for the next run');
        return { untaken: 0, stockSetFinished: false, busy: true, deferred: false, countersRecreated };
      }
    } else {
      untaken = await inventory.correctCounters(drift.skuId, { available: -drift.available, reserved: -drift.reserved, sold: -drift.sold });
    }
    // reserved since the reading (no bucket goes below zero for it), or oversold: the next run finds what is left
    if (untaken > 0) log.warn({ skuId: drift.skuId, untaken }, 'stock drift repair could not take every unit');
    log.warn({ skuId: drift.skuId, drift }, 'stock drift repaired: Redis counters moved to the ledger');
    return { untaken, stockSetFinished, busy: false, deferred: false, countersRecreated };
  }

  /**
   * Replaces the report with the SKUs among `drift` whose counters differ, and those whose sale in
   * Redis differs (a fourth number, 1), and only those: every worker's scrapes read it, and each
   * SKU without drift would cost series on each /metrics and a field read from the checkouts'
   * Redis, for every SKU of the catalog. One hash, so that one MULTI replaces both.
   */
  private async saveReport(drift: StockDrift, saleRulesDrift: readonly string[]): Promise<void> {
    const fields = new Map<string, number[]>();
    for (const sku of drift) if (SKU_COUNTERS.some((counter) => sku[counter] !== 0)) fields.set(sku.skuId, [sku.available, sku.reserved, sku.sold]);
    for (const skuId of saleRulesDrift) fields.set(skuId, [...(fields.get(skuId) ?? [0, 0, 0]), 1]);
    const transaction = this.deps.redis.multi().del(this.reportKey);
    if (fields.size > 0) {
      transaction.hset(this.reportKey, Object.fromEntries([...fields].map(([skuId, value]) => [skuId, JSON.stringify(value)])));
    }
    await transaction.exec();
    // when, in a key of its own (under Redis Cluster on another node than the report's, so no
    // MULTI of both): written after the report, it never vouches for one not saved
    await this.deps.redis.set(this.checkedAtKey, String(Date.now()));
  }
}

import type { StockDrift } from '@orders/metrics';
import type { CatalogRepository, LedgerStock, StockLedgerRepository } from '@orders/persistence';
import { SKU_COUNTERS, StockRebalancer, type Inventory, type RedisClient } from '@orders/stock';
import type { Logger } from 'pino';

type Counters = Omit<LedgerStock, 'skuId'>;

/** One SKU whose Redis counters disagree with the ledger: Redis minus what they should be. */
export interface SkuDrift extends Counters {
  skuId: string;
  /** what the counters should hold */
  expected: Counters;
  /** the SKU is in the catalog but Redis has no counters for it */
  missing: boolean;
}

export interface ReconcileReport {
  checkedSkus: number;
  /** accepted orders not yet in MySQL: their reservations were counted as in flight, not as drift */
  ordersInFlight: number;
  /** units moved between the buckets of SKUs split into buckets before reading (open transfers finished, empty buckets refilled) */
  unitsRebalanced: number;
  /** SKUs whose drift was the same in both readings */
  drift: SkuDrift[];
  repaired: boolean;
}

interface Reading {
  drift: SkuDrift[];
  all: StockDrift;
  ordersInFlight: number;
}

const same = (a: SkuDrift, b: SkuDrift) => a.missing === b.missing && SKU_COUNTERS.every((counter) => a[counter] === b[counter]);

/**
 * Compares each SKU's counters in Redis with the MySQL ledger, reports the difference
 * (the stock_drift_units gauges read the last report) and, on request, repairs Redis.
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
 * A SKU split into buckets is compared summed over its buckets; units on their way from
 * one bucket to another are in flight too. Each run first finishes transfers cut short
 * and refills empty buckets (StockRebalancer): that moves no unit in or out of a SKU,
 * except a transfer voided by a merchant's stock set, whose units the set overrode and
 * whose ledger `out` row says so.
 */
export class StockReconciler {
  private readonly reportKey: string;
  private readonly rebalancer: StockRebalancer;

  constructor(
    private readonly deps: { redis: RedisClient; inventory: Inventory; ledger: StockLedgerRepository; catalog: CatalogRepository; log: Logger },
    private readonly options: { settleMs: number },
  ) {
    this.reportKey = `${deps.inventory.keys.prefix}stock-drift`;
    this.rebalancer = new StockRebalancer({
      inventory: deps.inventory,
      recordTransfer: (transfer) => deps.ledger.recordTransfer(transfer),
      clock: () => new Date(),
      onError: (error, skuId) => deps.log.warn({ err: error, skuId }, 'stock rebalance failed'),
    });
  }

  async reconcile({ repair }: { repair: boolean }): Promise<ReconcileReport> {
    const unitsRebalanced = await this.rebalance();
    const first = await this.read();
    let reading = first;
    let lasting: SkuDrift[] = [];
    if (first.drift.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.options.settleMs));
      reading = await this.read();
      lasting = reading.drift.filter((drift) => first.drift.some((earlier) => earlier.skuId === drift.skuId && same(earlier, drift)));
    }
    if (repair) for (const drift of lasting) await this.repair(drift);
    const lastingSkus = new Set(lasting.map((drift) => drift.skuId));
    await this.saveReport(
      reading.all.map((sku) => (repair || !lastingSkus.has(sku.skuId) ? { skuId: sku.skuId, available: 0, reserved: 0, sold: 0 } : sku)),
    );
    if (lasting.length > 0) this.deps.log.warn({ drift: lasting, repaired: repair }, 'stock drift between Redis and the ledger');
    return { checkedSkus: reading.all.length, ordersInFlight: reading.ordersInFlight, unitsRebalanced, drift: lasting, repaired: repair && lasting.length > 0 };
  }

  /** Finishes transfers open longer than the settle time (their process died) and refills every empty bucket. */
  private async rebalance(): Promise<number> {
    let moved = await this.rebalancer.completeOpenTransfers(this.options.settleMs);
    const buckets = await this.deps.inventory.bucketsOf(await this.deps.ledger.skuIds());
    for (const [skuId, count] of buckets) if (count > 1) moved += await this.rebalancer.rebalance(skuId);
    return moved;
  }

  /** The last report, per SKU, for the drift gauges of every worker. */
  async lastReport(): Promise<StockDrift> {
    const fields = await this.deps.redis.hgetall(this.reportKey);
    return Object.entries(fields).map(([skuId, value]) => {
      const [available = 0, reserved = 0, sold = 0] = JSON.parse(value) as number[];
      return { skuId, available, reserved, sold };
    });
  }

  private async read(): Promise<Reading> {
    const { redis, inventory, ledger } = this.deps;
    const { keys } = inventory;
    const skuIds = await ledger.skuIds();
    const buckets = await inventory.bucketsOf(skuIds);
    const counters = new Map<string, { values: Counters | null; deduction: string | null }>();
    const acceptedByGroup: Array<[string, string[]]> = [];
    for (const [bucket, group] of keys.groups().entries()) {
      const inGroup = skuIds.filter((skuId) => bucket < buckets.get(skuId)!);
      // a group's keys share a hash tag, so this is one atomic MULTI on one node
      const transaction = redis.multi().zrange(keys.accepted(group), 0, -1);
      for (const skuId of inGroup) transaction.hmget(keys.sku(group, skuId), 'available', 'reserved', 'sold', 'deduction');
      const replies = (await transaction.exec()) ?? [];
      const [acceptedError, accepted] = replies[0] ?? [new Error('no reply'), []];
      if (acceptedError) throw acceptedError;
      acceptedByGroup.push([group, accepted as string[]]);
      inGroup.forEach((skuId, i) => {
        const [error, reply] = replies[i + 1] ?? [new Error('no reply'), null];
        if (error) throw error;
        const [available, reserved, sold, deduction] = reply as Array<string | null>;
        const values = available === null ? null : { available: Number(available), reserved: Number(reserved ?? 0), sold: Number(sold ?? 0) };
        const sum = counters.get(skuId);
        // bucket 0 says whether the SKU has counters at all; a later bucket without them holds nothing
        if (!sum) counters.set(skuId, { values, deduction: deduction ?? null });
        else if (sum.values && values) for (const counter of SKU_COUNTERS) sum.values[counter] += values[counter];
      });
    }
    // Redis first, then MySQL: an order persisted in between is in both, and the
    // snapshot's `persisted` says so; one cannot be in neither (its id leaves the
    // accepted set only after its MySQL commit)
    const acceptedIds = acceptedByGroup.flatMap(([, ids]) => ids);
    const snapshot = await ledger.snapshot(acceptedIds);
    const inFlight = new Map<string, number>();
    for (const [group, ids] of acceptedByGroup) {
      await this.reservedInFlight(group, ids.filter((orderId) => !snapshot.persisted.has(orderId)), counters, inFlight);
    }
    // units taken off a bucket and in none: on their way, or voided by a stock set whose
    // ledger row counted the SKU without them; a voided transfer's `out` row is written
    // just before it closes, so only in that instant are they counted twice
    const inTransit = new Map<string, number>();
    for (const transfer of await inventory.openTransfers(new Date())) {
      if (transfer.state !== 'given') inTransit.set(transfer.skuId, (inTransit.get(transfer.skuId) ?? 0) + transfer.qty);
    }

    const drift: SkuDrift[] = [];
    const all: StockDrift = [];
    for (const ledgerStock of snapshot.stock) {
      const redisStock = counters.get(ledgerStock.skuId);
      // created after the counters were read: next pass
      if (!redisStock) continue;
      const held = inFlight.get(ledgerStock.skuId) ?? 0;
      const moving = inTransit.get(ledgerStock.skuId) ?? 0;
      const expected = { available: ledgerStock.available - held - moving, reserved: ledgerStock.reserved + held, sold: ledgerStock.sold };
      const actual = redisStock.values ?? { available: 0, reserved: 0, sold: 0 };
      const skuDrift: SkuDrift = {
        skuId: ledgerStock.skuId,
        available: actual.available - expected.available,
        reserved: actual.reserved - expected.reserved,
        sold: actual.sold - expected.sold,
        expected,
        missing: redisStock.values === null,
      };
      all.push({ skuId: skuDrift.skuId, available: skuDrift.available, reserved: skuDrift.reserved, sold: skuDrift.sold });
      if (skuDrift.missing || SKU_COUNTERS.some((counter) => skuDrift[counter] !== 0)) drift.push(skuDrift);
    }
    return { drift, all, ordersInFlight: acceptedIds.length - snapshot.persisted.size };
  }

  /** Adds the units per SKU that a group's accepted, not yet persisted orders hold reserved in Redis (placement SKUs only). */
  private async reservedInFlight(group: string, orderIds: string[], counters: Map<string, { deduction: string | null }>, held: Map<string, number>): Promise<void> {
    if (orderIds.length === 0) return;
    const pipeline = this.deps.redis.pipeline();
    for (const orderId of orderIds) pipeline.hmget(this.deps.inventory.keys.order(group, orderId), 's', 'p');
    for (const [error, reply] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      const [state, payload] = reply as Array<string | null>;
      if (state !== 'reserved' || !payload) continue;
      for (const line of (JSON.parse(payload) as { items: Array<{ skuId: string; qty: number }> }).items) {
        if (counters.get(line.skuId)?.deduction === 'placement') held.set(line.skuId, (held.get(line.skuId) ?? 0) + line.qty);
      }
    }
  }

  private async repair(drift: SkuDrift): Promise<void> {
    const { inventory, catalog, log } = this.deps;
    if (drift.missing) {
      const sku = await catalog.findSku(drift.skuId);
      if (!sku) return;
      await inventory.initSku({
        skuId: sku.skuId,
        available: drift.expected.available,
        deduction: sku.deduction,
        saleStartsAt: sku.flashSale?.startsAt ?? null,
        saleEndsAt: sku.flashSale?.endsAt ?? null,
        perUserLimit: sku.flashSale?.perUserLimit ?? 0,
        buckets: sku.stockBuckets ?? 1,
      });
      await inventory.correctCounters(drift.skuId, { available: 0, reserved: drift.expected.reserved, sold: drift.expected.sold });
    } else {
      const untaken = await inventory.correctCounters(drift.skuId, { available: -drift.available, reserved: -drift.reserved, sold: -drift.sold });
      // reserved since the reading: no bucket goes below zero for it, the next run finds what is left
      if (untaken > 0) log.warn({ skuId: drift.skuId, untaken }, 'stock drift repair could not take every unit: reserved meanwhile');
    }
    log.warn({ skuId: drift.skuId, drift }, 'stock drift repaired: Redis counters moved to the ledger');
  }

  private async saveReport(report: StockDrift): Promise<void> {
    const transaction = this.deps.redis.multi().del(this.reportKey);
    if (report.length > 0) {
      transaction.hset(this.reportKey, Object.fromEntries(report.map((sku) => [sku.skuId, JSON.stringify([sku.available, sku.reserved, sku.sold])])));
    }
    await transaction.exec();
  }
}

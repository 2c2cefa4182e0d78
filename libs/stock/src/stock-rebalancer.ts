import { randomUUID } from 'node:crypto';
import type { GiveOutcome, Inventory, StockTransfer, TakenTransfer } from './inventory.js';

/** A transfer whose receiving side is done: given, or voided by a stock set (its units went nowhere). */
export interface FinishedTransfer extends StockTransfer {
  voided: boolean;
}

/** How often a transfer's own run tries each of its sides, and the wait before the next try (times the tries so far). */
const STEP_ATTEMPTS = 3;
const STEP_RETRY_MS = 200;

/**
 * Keeps a bucketed SKU's units where its buyers are. A bucket whose buyer just heard
 * OUT_OF_STOCK (it holds fewer units than they asked for) gets half of the fullest other
 * bucket's available units (the last unit too), or what the buyer lacked if more, so
 * units do not stay unsold in buckets whose buyers are gone; a SKU with every bucket
 * empty is sold out, and the intake answers it from memory for a moment. The reconciler's
 * pass, which knows of no buyer, refills each empty bucket with half of the fullest one's
 * units without emptying it.
 *
 * A transfer is one script per side, each idempotent by the transfer id: take (the
 * giving bucket records what it took in its open set), give, the ledger's pair of
 * `adjust` rows, close. A step that fails is tried again shortly; a process that dies in
 * between, or steps that keep failing, leave the transfer open, and
 * `completeOpenTransfers` (the reconciler's run) finishes it; the units are never
 * given twice nor lost. Summed over the buckets, available + reserved + sold never
 * changes, so rebalancers running at once at worst move units back and forth.
 *
 * A merchant's stock set (Inventory.setAvailable) overrides what every bucket holds.
 * Units taken before it are not given after it (that would sell them on top of the
 * new quantity): the give voids the transfer, and the ledger gets its `out` row
 * alone, as the set's own row counted without them; but only once the set is closed
 * (MySQL has it): until then the transfer waits, open, as a set MySQL refuses is taken
 * back to what the buckets held before it, without those units, and they are then given
 * (StockSets). Units taken after the set
 * reached the giving bucket wait until it reaches the receiving one; the transfer
 * stays open meanwhile and the reconciler's run gives them.
 *
 * A bucket Redis lost (a cluster node restarted empty) gets no units: its buyers are
 * refused until the stock repair recreates it. A transfer already on its way into it
 * stays open, counted as units on their way, and is given once the repair has.
 */
export class StockRebalancer {
  private readonly running = new Map<string, Promise<void>>();
  /** per SKU, the buckets that heard OUT_OF_STOCK while a rebalance of it was running, each with the most units a buyer asked for */
  private readonly waiting = new Map<string, Map<number, number>>();

  constructor(
    private readonly deps: {
      inventory: Inventory;
      /** Writes the transfer's pair of ledger rows (the `out` row alone if voided); must do nothing when they are already there. */
      recordTransfer: (transfer: FinishedTransfer) => Promise<void>;
      clock: () => Date;
      onError: (error: unknown, skuId: string) => void;
    },
  ) {}

  /**
   * Asks, without waiting, for `units` of a SKU in the bucket of a buyer who just found fewer
   * there (the intake, on OUT_OF_STOCK). One rebalance runs per SKU at a time; the buckets
   * asked for meanwhile are served by one more run after it.
   */
  request(skuId: string, userId: string, units: number): void {
    const bucket = this.deps.inventory.bucketOfBuyer(skuId, userId);
    if (bucket === null) return;
    if (this.running.has(skuId)) {
      const waiting = this.waiting.get(skuId) ?? new Map<number, number>();
      this.waiting.set(skuId, waiting.set(bucket, Math.max(units, waiting.get(bucket) ?? 0)));
      return;
    }
    this.run(skuId, new Map([[bucket, units]]));
  }

  /** Waits for the rebalances asked for so far (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  /**
   * Moves units from the fullest other bucket into the SKU's buckets that hold fewer than
   * wanted: into the buckets named (bucket → the units a buyer asked for there), half of the
   * fullest's units rounded up, or what the bucket lacks if more (as much as the fullest
   * has); with none named, into every empty bucket, half rounded down (a bucket is never
   * emptied for a bucket nobody asked for), never into a bucket Redis lost. Returns the units
   * moved (taken and given).
   */
  async rebalance(skuId: string, into?: ReadonlyMap<number, number>): Promise<number> {
    const returnsHeardBefore = this.deps.inventory.soldOutReturnsHeard();
    const buckets = await this.deps.inventory.bucketStockOrLost(skuId);
    if (!buckets || buckets.length < 2) return 0;
    const available = buckets.map((bucket) => bucket?.available ?? 0);
    if (available.every((units) => units <= 0)) {
      this.deps.inventory.rememberSoldOut(skuId, this.deps.clock(), returnsHeardBefore);
      return 0;
    }
    const wanted = into ?? new Map(available.map((_, bucket) => [bucket, 1]));
    let moved = 0;
    for (const [to, units] of wanted) {
      if (!buckets[to] || available[to]! >= units) continue;
      const others = available.map((held, bucket) => (bucket === to ? 0 : held));
      const from = others.indexOf(Math.max(...others));
      const qty = into ? Math.min(Math.max(Math.ceil(others[from]! / 2), units - available[to]!), others[from]!) : Math.floor(others[from]! / 2);
      if (qty <= 0) continue;
      const { taken, given } = await this.move({ transferId: randomUUID(), skuId, from, to, qty });
      available[from]! -= taken;
      available[to]! += given;
      moved += given;
    }
    return moved;
  }

  /**
   * Finishes transfers taken longer ago than `olderThanMs` and never closed (one still
   * waiting for a stock set to reach its receiving bucket, or for the repair of a receiving
   * bucket Redis lost, stays open); returns the units given now.
   */
  async completeOpenTransfers(olderThanMs: number): Promise<number> {
    let units = 0;
    for (const transfer of await this.deps.inventory.openTransfers(this.deps.clock(), olderThanMs)) {
      if ((await this.complete(transfer)) === 'given') units += transfer.qty;
    }
    return units;
  }

  private run(skuId: string, into: ReadonlyMap<number, number>): void {
    const done = this.rebalance(skuId, into)
      .then(() => undefined)
      .catch((error: unknown) => this.deps.onError(error, skuId))
      .finally(() => {
        this.running.delete(skuId);
        const next = this.waiting.get(skuId);
        this.waiting.delete(skuId);
        if (next) this.run(skuId, next);
      });
    this.running.set(skuId, done);
  }

  /**
   * Returns the units taken off `from` and those given to `to` (fewer when voided, waiting or
   * lost). A take, give, record or close that fails is tried again shortly, each step being
   * idempotent by the transfer id: a take whose answer came too late (Redis ran it) and units
   * taken and not given are on sale nowhere, and the reconciler's run that would finish the
   * transfer may be a minute away, the whole of a flash sale's rush.
   */
  private async move(transfer: StockTransfer): Promise<{ taken: number; given: number }> {
    const now = this.deps.clock();
    const taken = await retried(() => this.deps.inventory.takeForTransfer(transfer, now));
    if (taken.qty === 0) return { taken: 0, given: 0 };
    const outcome = await retried(() => this.complete(taken));
    return { taken: taken.qty, given: outcome === 'given' ? taken.qty : 0 };
  }

  /** Gives, records and closes; a transfer waiting for a stock set, or for its lost receiving bucket to be recreated, stays open. */
  private async complete(transfer: TakenTransfer): Promise<GiveOutcome> {
    const outcome = await this.deps.inventory.giveForTransfer(transfer);
    if (outcome === 'waiting' || outcome === 'lost') return outcome;
    const { transferId, skuId, from, to, qty } = transfer;
    await this.deps.recordTransfer({ transferId, skuId, from, to, qty, voided: outcome === 'voided' });
    await this.deps.inventory.closeTransfer(transfer);
    return outcome;
  }
}

/** Runs a transfer's step, idempotent by its id, again after a failure, up to STEP_ATTEMPTS times. */
async function retried<T>(step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (attempt >= STEP_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, STEP_RETRY_MS * attempt));
    }
  }
}

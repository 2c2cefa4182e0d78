import { StockBucketLost, StockSetClosed, StockSetUnderWay, type Inventory, type StockSet } from './inventory.js';

/**
 * A stock set's MySQL side, as the catalog writes it (CatalogRepository.setStock): under the
 * SKU's row lock, the SKU's stock and, with what `redis.set` answers, the ledger's row under
 * `ref`, once per ref (a set already in the ledger runs nothing); `redis.takeBack` when MySQL
 * refused after Redis had the set, before its COMMIT (a COMMIT that failed may have committed:
 * the set stays open, finished by its ledger row). `keyPrefix`: the ref names an Idempotency-Key,
 * and a row of the SKU under another ref beginning with it (another body) is IdempotencyConflict,
 * nothing run. False for an unknown SKU.
 */
export type RecordStockSet = (
  skuId: string,
  stock: number,
  ref: string,
  redis: { set: () => Promise<number | null>; takeBack?: (previous: number) => Promise<void> },
  keyPrefix?: string,
) => Promise<boolean>;

/** What a merchant's stock set did: `set` the stock, found it `recorded` before under its ref (a repeat), or found no such SKU (`unknown`). */
export type StockSetOutcome = 'set' | 'recorded' | 'unknown';

/** How many times a set is tried when another set of its SKU starts between its look for one and its own start. */
const SET_ATTEMPTS = 3;

/**
 * A merchant's stock sets, Redis and MySQL sides together. Redis holds a set in several
 * buckets, each its own command: a set whose answer did not come may have reached bucket 0
 * alone, after MySQL rolled it back. Nobody can take back what they do not know has run,
 * so such a set goes forward instead: bucket 0 records it (Inventory.setAvailable) and
 * whoever finds it open (the SKU's next set, before its own; the stock check, every run)
 * sets the buckets it missed in its generation and writes the ledger row it never got, from
 * what each bucket held before it. The SKU then sells what the merchant set, every bucket in
 * one generation, so transfers between them are given again, and the ledger says so.
 *
 * A set whose every Redis answer came and whose MySQL write failed is taken back at once
 * (the request knows what it did and still holds the row lock), and closed first, so
 * nothing finishes it. One whose COMMIT failed is left open: MySQL may have committed it, and
 * whoever finishes it finds its ledger row (and only closes it) or writes the row.
 */
export class StockSets {
  constructor(private readonly deps: { inventory: Inventory; record: RecordStockSet; clock: () => Date }) {}

  /**
   * Sets the SKU's sellable quantity under `ref` (the ledger row's reference), after finishing
   * its set left open, if any; a ref the ledger has (a set sent again under its Idempotency-Key,
   * `keyPrefix`) sets nothing. Either way it is done once the replicas hold the SKU's buckets
   * (Inventory.awaitStockSetReplicas: StockNotReplicated, the set made, else). `tookBack` hears
   * what a set taken back could not take (reserved meanwhile): drift for the reconciler.
   * StockBucketLost, nothing set, while Redis has lost any bucket of the SKU (or one its open set
   * has not reached).
   */
  async set(skuId: string, stock: number, ref: string, tookBack: (untaken: number) => void, keyPrefix?: string): Promise<StockSetOutcome> {
    const { inventory } = this.deps;
    for (let attempt = 1; ; attempt++) {
      const open = await inventory.openStockSet(skuId);
      if (open) await this.finish(open);
      let ran = false;
      try {
        const found = await this.deps.record(
          skuId,
          stock,
          ref,
          {
            set: async () => {
              ran = true;
              const previous = await inventory.setAvailable(skuId, stock, { ref, now: this.deps.clock() });
              // the catalog has the SKU (it runs the set for one it has only): Redis lost its bucket 0
              if (previous === null) throw new StockBucketLost(skuId, [0]);
              return previous;
            },
            takeBack: async (previous) => tookBack(await inventory.takeBackStockSet({ skuId, ref }, previous, stock)),
          },
          keyPrefix,
        );
        if (!found) return 'unknown';
        await inventory.closeStockSet({ skuId, ref });
        await inventory.awaitStockSetReplicas(skuId);
        return ran ? 'set' : 'recorded';
      } catch (error) {
        if (!(error instanceof StockSetUnderWay) || attempt === SET_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Finishes the sets started longer ago than `olderThanMs` and still open (the stock check's
   * run); returns how many it finished. One it could not finish (`failed` hears why) stays
   * open for the next run.
   */
  async finishOpen(olderThanMs: number, failed: (error: unknown, set: StockSet) => void): Promise<number> {
    let finished = 0;
    for (const set of await this.deps.inventory.openStockSets(this.deps.clock(), olderThanMs)) {
      try {
        if (await this.finish(set)) finished++;
      } catch (error) {
        failed(error, set);
      }
    }
    return finished;
  }

  /**
   * Finishes the SKU's open set `ref` that waits for buckets Redis lost (the stock repair):
   * `recreate` first puts them back, holding what they held before the set, under the SKU's row
   * lock, so no other process finishes the set before they hold it and its ledger row measures
   * from it. Nothing run when `ref` is no longer open or its ledger row is written: the repair's
   * reading, made before the set, no longer holds. True when it finished the set.
   */
  async finishRecreating({ skuId, ref }: Pick<StockSet, 'skuId' | 'ref'>, recreate: () => Promise<void>): Promise<boolean> {
    const open = await this.deps.inventory.openStockSet(skuId);
    if (open?.ref !== ref) return false;
    return this.finish(open, recreate);
  }

  /** Runs an open set in the buckets it missed and writes its ledger row, under the SKU's row lock; false when another process had done so. */
  private async finish(set: StockSet, recreate?: () => Promise<void>): Promise<boolean> {
    let ran = false;
    try {
      await this.deps.record(set.skuId, set.stock, set.ref, {
        set: async () => {
          ran = true;
          return this.deps.inventory.completeStockSet(set, recreate);
        },
      });
    } catch (error) {
      if (!(error instanceof StockSetClosed)) throw error;
      return false;
    }
    await this.deps.inventory.closeStockSet(set);
    return ran;
  }
}

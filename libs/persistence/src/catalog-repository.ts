import { IdempotencyConflict, SkuAlreadyExists, type FlashSale, type Sku } from '@orders/domain';
import { sql, type Transaction } from 'kysely';
import type { OrderDb } from './connection.js';
import { isDuplicateKey } from './mysql-errors.js';
import type { Database, SkuRow } from './schema.js';

type SaleColumns = Pick<SkuRow, 'flash_price_cents' | 'flash_starts_at' | 'flash_ends_at' | 'flash_per_user_limit'>;

const flashSaleOf = (row: SaleColumns): FlashSale | null =>
  row.flash_price_cents !== null && row.flash_starts_at && row.flash_ends_at
    ? { priceCents: Number(row.flash_price_cents), startsAt: row.flash_starts_at, endsAt: row.flash_ends_at, perUserLimit: row.flash_per_user_limit ?? 0 }
    : null;

export function toSku(row: SkuRow): Sku {
  return {
    skuId: row.sku_id,
    title: row.title,
    priceCents: Number(row.price_cents),
    merchantId: row.merchant_id,
    channel: row.channel,
    warehouseId: row.warehouse_id,
    deduction: row.deduction,
    flashSale: flashSaleOf(row),
    stockBuckets: Number(row.stock_buckets),
    orderType: row.order_type,
    offSaleSince: row.off_sale_at,
  };
}

/** The catalog as the order system keeps it: what workers price orders from. */
export class CatalogRepository {
  constructor(private readonly db: OrderDb) {}

  /**
   * Inserts the SKU and its opening stock movement, then, once they are committed, runs
   * `publish` (the Redis side, which puts it on sale). Never the other way round: counters in
   * Redis for a SKU whose commit was then lost (its api killed, MySQL failing the commit) took
   * checkouts no worker could write, and held the SKU's id for ever. `beforeCommit` may still refuse
   * the create, the row held and nothing committed. A SKU committed whose publish
   * never ran is refused at checkout as unknown until an identical create finishes it
   * (createdAsAsked), or the stock repair recreates its counters from the ledger.
   */
  async createSku(sku: Sku, stock: number, adjustmentRef: string, publish: () => Promise<unknown>, beforeCommit?: () => Promise<unknown>): Promise<void> {
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('skus')
          .values({
            sku_id: sku.skuId,
            title: sku.title,
            price_cents: sku.priceCents,
            merchant_id: sku.merchantId,
            channel: sku.channel,
            warehouse_id: sku.warehouseId,
            deduction: sku.deduction,
            stock,
            flash_price_cents: sku.flashSale?.priceCents ?? null,
            flash_starts_at: sku.flashSale?.startsAt ?? null,
            flash_ends_at: sku.flashSale?.endsAt ?? null,
            flash_per_user_limit: sku.flashSale?.perUserLimit ?? null,
            stock_buckets: sku.stockBuckets ?? 1,
            order_type: sku.orderType ?? 'standard',
          })
          .execute();
        await trx
          .insertInto('stock_ledger')
          .values({ sku_id: sku.skuId, kind: 'adjust', ref: adjustmentRef, order_id: null, qty: stock, reason: 'opening stock' })
          .execute();
        await beforeCommit?.();
      });
    } catch (error) {
      if (isDuplicateKey(error)) throw new SkuAlreadyExists(sku.skuId);
      throw error;
    }
    await publish();
  }

  /** The ref of the SKU's opening stock movement: the create's (a keyed create's names its key and body). */
  async openingStockRef(skuId: string): Promise<string | null> {
    const opening = await this.db
      .selectFrom('stock_ledger')
      .select('ref')
      .where('sku_id', '=', skuId)
      .where('kind', '=', 'adjust')
      .where('reason', '=', 'opening stock')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    return opening?.ref ?? null;
  }

  /**
   * Whether the SKU is in the catalog exactly as this create asks, with its opening stock as
   * its only stock movement: an earlier create of it committed, and nothing has moved its stock
   * since, so publishing its counters now sells what the ledger has.
   */
  async createdAsAsked(sku: Sku, stock: number): Promise<boolean> {
    const stored = await this.findSku(sku.skuId);
    if (!stored) return false;
    const movements = await this.db.selectFrom('stock_ledger').select(['kind', 'qty']).where('sku_id', '=', sku.skuId).limit(2).execute();
    // a SKU taken off sale since was created all the same: its create's answer does not say it. Compared
    // field by field, in whatever order each was built (the demo seed's SKUs list theirs in another)
    const asCreated = ({ offSaleSince: _, ...one }: Sku & { stock: number }) =>
      JSON.stringify(
        inKeyOrder({
          ...one,
          stockBuckets: one.stockBuckets ?? 1,
          orderType: one.orderType ?? 'standard',
          flashSale: one.flashSale && { ...one.flashSale, startsAt: one.flashSale.startsAt.getTime(), endsAt: one.flashSale.endsAt.getTime() },
        }),
      );
    return asCreated(stored) === asCreated({ ...sku, stock }) && movements.length === 1 && movements[0]!.kind === 'adjust' && Number(movements[0]!.qty) === stock;
  }

  /**
   * Changes, adds or withdraws (`sale` null) a SKU's flash sale, its row held while `publish`
   * changes the sale in Redis with the sale it replaces: Redis sells by it, and the workers price
   * orders by what this commits. A refusal by `publish` (the sale opened) commits nothing.
   * Returns the sale replaced, or undefined when there is no such SKU.
   */
  async changeFlashSale(skuId: string, sale: FlashSale | null, publish: (previous: FlashSale | null) => Promise<unknown>): Promise<FlashSale | null | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('skus').selectAll().where('sku_id', '=', skuId).forUpdate().executeTakeFirst();
      if (!row) return undefined;
      const previous = toSku(row).flashSale;
      await trx
        .updateTable('skus')
        .set({
          flash_price_cents: sale?.priceCents ?? null,
          flash_starts_at: sale?.startsAt ?? null,
          flash_ends_at: sale?.endsAt ?? null,
          flash_per_user_limit: sale?.perUserLimit ?? null,
        })
        .where('sku_id', '=', skuId)
        .execute();
      await publish(previous);
      return previous;
    });
  }

  /**
   * Takes the SKU off sale (`offSale`) or puts it back on sale, its row held while `publish`
   * makes the change in Redis: a refusal by `publish` commits nothing. One already so keeps its
   * `off_sale_at`, MySQL's clock when it was taken off. Returns since when it is off sale now (null:
   * on sale), or undefined when there is no such SKU.
   */
  async putOffSale(skuId: string, offSale: boolean, publish: () => Promise<unknown>): Promise<Date | null | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('skus').select('sku_id').where('sku_id', '=', skuId).forUpdate().executeTakeFirst();
      if (!row) return undefined;
      // taken off sale when it first was: one already off keeps its time
      await trx.updateTable('skus').set({ off_sale_at: offSale ? sql<Date>`COALESCE(off_sale_at, NOW(3))` : null }).where('sku_id', '=', skuId).execute();
      await publish();
      const now = await trx.selectFrom('skus').select('off_sale_at').where('sku_id', '=', skuId).executeTakeFirstOrThrow();
      return now.off_sale_at;
    });
  }

  /**
   * The catalog's SKUs by id, after `after` (a page's last), at most `limit`: those off sale only
   * (or on sale only) with `offSale`, one merchant's with `merchantId`.
   */
  async listSkus(filter: { offSale?: boolean; merchantId?: string; after?: string; limit: number }): Promise<Array<Sku & { stock: number }>> {
    let query = this.db.selectFrom('skus').selectAll().orderBy('sku_id').limit(filter.limit);
    if (filter.offSale !== undefined) query = query.where('off_sale_at', filter.offSale ? 'is not' : 'is', null);
    if (filter.merchantId !== undefined) query = query.where('merchant_id', '=', filter.merchantId);
    if (filter.after !== undefined) query = query.where('sku_id', '>', filter.after);
    return (await query.execute()).map((row) => ({ ...toSku(row), stock: Number(row.stock) }));
  }

  /** How many SKUs the shop has off sale. */
  async countOffSale(): Promise<number> {
    const row = await this.db.selectFrom('skus').select((eb) => eb.fn.countAll<number>().as('count')).where('off_sale_at', 'is not', null).executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** Every SKU's flash sale (null: none), whether it is off sale, and bucket count (fixed when it is created), for the stock check's readings of Redis. */
  async salesOfAll(): Promise<Array<Pick<Sku, 'skuId' | 'flashSale' | 'offSaleSince'> & { stockBuckets: number }>> {
    const rows = await this.db
      .selectFrom('skus')
      .select(['sku_id', 'stock_buckets', 'flash_price_cents', 'flash_starts_at', 'flash_ends_at', 'flash_per_user_limit', 'off_sale_at'])
      .orderBy('sku_id')
      .execute();
    return rows.map((row) => ({ skuId: row.sku_id, stockBuckets: Number(row.stock_buckets), flashSale: flashSaleOf(row), offSaleSince: row.off_sale_at }));
  }

  async findSku(skuId: string): Promise<(Sku & { stock: number }) | null> {
    const row = await this.db.selectFrom('skus').selectAll().where('sku_id', '=', skuId).executeTakeFirst();
    return row ? { ...toSku(row), stock: Number(row.stock) } : null;
  }

  async findSkus(skuIds: readonly string[]): Promise<Map<string, Sku>> {
    if (skuIds.length === 0) return new Map();
    const rows = await this.db.selectFrom('skus').selectAll().where('sku_id', 'in', [...new Set(skuIds)]).execute();
    return new Map(rows.map((row) => [row.sku_id, toSku(row)]));
  }

  /**
   * Sets the sellable quantity: `redis.set` sets it in Redis and returns the previous
   * quantity there; the difference is written to the ledger in the same transaction, once
   * per `adjustmentRef`: a set the ledger already has (finished again by another process,
   * its Redis side left open after the commit) runs nothing.
   * Should MySQL fail after Redis took the new quantity, `redis.takeBack` undoes that set
   * while the SKU's row lock still keeps other sets out: otherwise the operator's retry
   * would find the new quantity already in Redis and write no difference to the ledger, and
   * the reconciler's repair would later move Redis to the stale ledger (a lowered stock put
   * back on sale). Not when the COMMIT itself failed: MySQL may have committed all the same
   * (its answer too slow or lost), and a set taken back then would have the retry write its
   * difference a second time. Such a set stays open in Redis, as one being finished (its
   * Redis answer lost) does, and whoever finishes it finds its ledger row, or writes it.
   * `keyPrefix`: the ref names the caller's Idempotency-Key (and the body): a set row of the
   * SKU under another ref beginning with it, another body's, is IdempotencyConflict, looked for
   * under the row lock so that of two bodies sent at once the second is refused.
   * Returns false for an unknown SKU.
   */
  async setStock(
    skuId: string,
    stock: number,
    adjustmentRef: string,
    redis: { set: () => Promise<number | null>; takeBack?: (previous: number) => Promise<void> },
    keyPrefix?: string,
  ): Promise<boolean> {
    let previous: number | null = null;
    return this.lockingSku(
      skuId,
      async (trx) => {
        const recorded = await trx
          .selectFrom('stock_ledger')
          .select('ref')
          .where('sku_id', '=', skuId)
          .where('kind', '=', 'adjust')
          .where((eb) => (keyPrefix === undefined ? eb('ref', '=', adjustmentRef) : eb.or([eb('ref', '=', adjustmentRef), eb(sql<string>`LEFT(ref, ${keyPrefix.length})`, '=', keyPrefix)])))
          .execute();
        if (recorded.some((row) => row.ref === adjustmentRef)) return;
        if (recorded.length > 0) throw new IdempotencyConflict();
        await trx.updateTable('skus').set({ stock, updated_at: new Date() }).where('sku_id', '=', skuId).execute();
        previous = await redis.set();
        if (previous === null) throw new Error(`SKU ${skuId} is in MySQL but has no counters in Redis`);
        await trx
          .insertInto('stock_ledger')
          .values({ sku_id: skuId, kind: 'adjust', ref: adjustmentRef, order_id: null, qty: stock - previous, reason: 'stock set by operator' })
          .execute();
      },
      async () => {
        if (previous !== null) await redis.takeBack?.(previous);
      },
    );
  }

  /**
   * Runs `redis` (work on the SKU's stock in Redis: the stock repair's recreation of its lost
   * buckets) holding the SKU's row lock, as a stock set does, so no set measures the SKU
   * halfway through it. False, nothing run, for an unknown SKU.
   */
  async whileSkuLocked(skuId: string, redis: () => Promise<void>): Promise<boolean> {
    return this.lockingSku(skuId, redis);
  }

  /**
   * Runs `work` in a transaction holding the SKU's row (SELECT … FOR UPDATE on `skus`), the
   * lock every change of its stock in Redis that a stock set must not interleave with is made
   * under, and commits; when `work` fails, `undo` runs while the lock still holds, then the
   * transaction is rolled back. A failed COMMIT is not undone: it may have committed. False,
   * nothing run, for an unknown SKU.
   */
  private async lockingSku(skuId: string, work: (trx: Transaction<Database>) => Promise<void>, undo?: () => Promise<void>): Promise<boolean> {
    const trx = await this.db.startTransaction().execute();
    let committing = false;
    try {
      const row = await trx.selectFrom('skus').select('sku_id').where('sku_id', '=', skuId).forUpdate().executeTakeFirst();
      if (!row) {
        await trx.rollback().execute();
        return false;
      }
      await work(trx);
      committing = true;
      await trx.commit().execute();
      return true;
    } catch (error) {
      try {
        if (!committing) await undo?.();
      } finally {
        await trx.rollback().execute().catch(() => undefined);
      }
      throw error;
    }
  }
}

/** A plain object's fields (and its plain objects' fields) sorted by name, so that two built in another order serialize alike. */
function inKeyOrder(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, field]) => [key, inKeyOrder(field)]),
  );
}

import { hash } from 'node:crypto';
import { IdempotencyConflict, SkuAlreadyExists, isOffSale, sameFlashSale, type FlashSale, type Sku } from '@orders/domain';
import type { CatalogRepository } from '@orders/persistence';
import { stockRulesOf, type Inventory } from '@orders/stock';
import { canonicalJson } from './canonical-json.js';
import type { Principal } from './plugins/auth.js';
import { HttpProblem } from './problems.js';

/**
 * A stock movement's ref made under an Idempotency-Key: `kind`, the caller's key (`keyPrefix`)
 * and the body's fingerprint, kept with the SKU (the ledger's ref, 64 characters). A request
 * sent again finds its own ref; another body under the key, the key's prefix only.
 */
function keyedRef(kind: 'key' | 'set', caller: Principal, key: string, body: unknown): { ref: string; keyPrefix: string } {
  const keyPrefix = `${kind}:${hash('sha256', `${caller.role}:${caller.sub}\u0000${key}`, 'base64url').slice(0, 27)}:`;
  return { ref: keyPrefix + hash('sha256', canonicalJson(body), 'base64url').slice(0, 27), keyPrefix };
}

/** The opening stock movement's ref of a SKU created under an Idempotency-Key. */
export const keyedCreateRef = (caller: Principal, key: string, body: unknown) => keyedRef('key', caller, key, body);

/** The ledger ref of a stock set sent under an Idempotency-Key: a key the caller created the SKU with is no set's. */
export const keyedStockSetRef = (caller: Principal, key: string, body: unknown) => keyedRef('set', caller, key, body);

/**
 * Creates a SKU in MySQL (with its opening ledger entry), then its counters in Redis, which
 * put it on sale. `replacedLeftover`: Redis held counters of a SKU the catalog did not have,
 * now replaced by this one's. `finishedEarlier`: an earlier create of this very SKU was
 * committed and never reached Redis (its api killed between the two, Redis failing it): its
 * retry, asking the same, puts it on sale rather than answering that it exists. `replayed`:
 * the create under this Idempotency-Key (`keyPrefix`, its ref `adjustmentRef`) was done
 * before; the same key with another body is 422 IDEMPOTENCY_CONFLICT.
 */
export async function createSkuWithStock(
  deps: { catalog: CatalogRepository; inventory: Inventory },
  sku: Sku,
  stock: number,
  adjustmentRef: string,
  keyPrefix?: string,
): Promise<{ replacedLeftover: boolean; finishedEarlier: boolean; replayed: boolean }> {
  let replacedLeftover = false;
  const publish = async () => {
    replacedLeftover = await deps.inventory.initSku({ ...stockRulesOf(sku), available: stock });
  };
  try {
    // with the row held: counters of it that orders took units of are refused before anything is committed
    await deps.catalog.createSku(sku, stock, adjustmentRef, publish, () => deps.inventory.refuseHeldLeftover(sku.skuId));
    return { replacedLeftover, finishedEarlier: false, replayed: false };
  } catch (error) {
    if (!(error instanceof SkuAlreadyExists)) throw error;
    // Redis without its bucket 0 while the catalog has the SKU as asked, its stock never moved: a publish that never
    // ran, or one running now (the other create's), whose buckets this one then leaves as they are
    if ((await deps.inventory.bucketStock(sku.skuId)) === null && (await deps.catalog.createdAsAsked(sku, stock))) {
      let published = false;
      // by the catalog's SKU, under its row as the off-sale switch is: one taken off sale since (which found no bucket
      // to change) is published off sale, where the request's rules put it on sale
      await deps.catalog.whileSkuLocked(sku.skuId, async () => {
        const stored = await deps.catalog.findSku(sku.skuId);
        published = stored !== null && (await deps.inventory.publishUnpublishedSku({ ...stockRulesOf(stored), available: stock }));
      });
      if (published) return { replacedLeftover, finishedEarlier: true, replayed: false };
    }
    if (keyPrefix === undefined) throw error;
    const opening = await deps.catalog.openingStockRef(sku.skuId);
    if (opening === adjustmentRef) return { replacedLeftover: false, finishedEarlier: false, replayed: true };
    if (opening?.startsWith(keyPrefix)) throw new IdempotencyConflict();
    throw error;
  }
}

/**
 * Changes, adds or withdraws (`sale` null) a SKU's flash sale in the catalog and in every bucket
 * in Redis, the catalog's row held meanwhile (Inventory.changeSale refuses a sale that opened).
 * `endOnly`: only the end of the catalog's sale moves, earlier, opened or not (Inventory.endSale); a
 * sale changed otherwise, or ended earlier, since `sale` was read is refused with 409, nothing changed.
 * Should the COMMIT fail once Redis has the change, what the catalog holds then decides: not
 * taken, Redis gets the replaced sale back, so that it never sells by a sale the workers do not
 * price by; taken (its answer lost), the change stands. Returns the sale replaced, undefined for
 * an unknown SKU.
 */
export async function changeFlashSale(
  deps: { catalog: CatalogRepository; inventory: Inventory },
  sku: Pick<Sku, 'skuId' | 'stockBuckets'>,
  sale: FlashSale | null,
  endOnly = false,
): Promise<FlashSale | null | undefined> {
  let published: { replaced: FlashSale | null } | undefined;
  try {
    return await deps.catalog.changeFlashSale(sku.skuId, sale, async (replaced) => {
      if (!endOnly) await deps.inventory.changeSale(sku, sale, replaced);
      else if (replaced && sale && sameFlashSale(replaced, { ...sale, endsAt: replaced.endsAt }) && sale.endsAt.getTime() < replaced.endsAt.getTime()) await deps.inventory.endSale(sku, sale.endsAt, replaced);
      else throw new HttpProblem(409, 'CONFLICT', `The flash sale of SKU ${sku.skuId} was changed, withdrawn or ended earlier meanwhile: read it again`);
      published = { replaced };
    });
  } catch (error) {
    if (!published) throw error;
    // read on a connection of its own; MySQL away as well leaves it to the caller's retry, which finishes the change
    const stored = await deps.catalog.findSku(sku.skuId);
    if (stored && sameFlashSale(stored.flashSale, sale)) return published.replaced;
    await deps.inventory.putCatalogSale(sku, published.replaced);
    throw error;
  }
}

/**
 * Takes a SKU off sale (`offSale`) or puts it back on sale, in the catalog and in every bucket in
 * Redis, the catalog's row held meanwhile. Should the COMMIT fail once Redis has the change, what
 * the catalog holds then decides, as for a flash sale's change: not taken, Redis gets the catalog's
 * back; taken (its answer lost), the change stands. Returns since when the SKU is off sale (null:
 * on sale), undefined for an unknown SKU.
 */
export async function putSkuOffSale(deps: { catalog: CatalogRepository; inventory: Inventory }, sku: Pick<Sku, 'skuId' | 'stockBuckets'>, offSale: boolean): Promise<Date | null | undefined> {
  let published = false;
  try {
    return await deps.catalog.putOffSale(sku.skuId, offSale, async () => {
      await deps.inventory.putOffSale(sku, offSale);
      published = true;
    });
  } catch (error) {
    if (!published) throw error;
    // read on a connection of its own; MySQL away as well leaves it to the caller's retry, which finishes the change
    const stored = await deps.catalog.findSku(sku.skuId);
    if (stored && isOffSale(stored) === offSale) return stored.offSaleSince ?? null;
    if (stored) await deps.inventory.putOffSale(sku, !offSale);
    throw error;
  }
}

import type { Sku } from '@orders/domain';
import type { CatalogRepository } from '@orders/persistence';
import { stockRulesOf, type Inventory } from '@orders/stock';

/**
 * Creates a SKU in MySQL (with its opening ledger entry) and its counters in Redis, together.
 * `replacedLeftover`: Redis held counters of an earlier create whose MySQL commit was lost,
 * now replaced by this one's.
 */
export async function createSkuWithStock(deps: { catalog: CatalogRepository; inventory: Inventory }, sku: Sku, stock: number, adjustmentRef: string): Promise<{ replacedLeftover: boolean }> {
  let replacedLeftover = false;
  await deps.catalog.createSku(sku, stock, adjustmentRef, async () => {
    replacedLeftover = await deps.inventory.initSku({ ...stockRulesOf(sku), available: stock });
  });
  return { replacedLeftover };
}

import { CatalogRepository } from '@orders/persistence';
import { Inventory, StockSets, checkoutTimeoutsOf, stockRulesOf } from '@orders/stock';
import { createTestEnv, dbWhoseCommitsGoUnanswered, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A merchant's stock set whose COMMIT fails at the api: MySQL's answer came too late (past
 * MYSQL_QUERY_TIMEOUT_MS) or the connection dropped on the way back. The api cannot tell
 * whether MySQL committed; the merchant, answered 5xx, sends the set again.
 */
describe("a merchant's stock set whose COMMIT gets no answer", () => {
  let env: TestEnv;
  let inventory: Inventory;
  let catalog: CatalogRepository;
  const lossyDbs: Array<{ close(): Promise<void> }> = [];

  /** The catalog on the test's database, its COMMIT failing after MySQL has run it (`committed`) or without running it. */
  function catalogWhoseCommitFails(committed: boolean): CatalogRepository {
    const lossy = dbWhoseCommitsGoUnanswered(env.config.MYSQL_URL, committed);
    lossyDbs.push(lossy);
    return new CatalogRepository(lossy.db);
  }

  const setStock = (on: CatalogRepository, skuId: string, stock: number, ref: string) =>
    new StockSets({ inventory, record: (...set) => on.setStock(...set), clock: () => new Date() }).set(skuId, stock, ref, () => undefined);

  /** What the merchant, the stock check and the buyers see: the SKU's stock in MySQL, the ledger's sum and what Redis sells. */
  async function stockEverywhere(skuId: string) {
    const row = await env.db.selectFrom('skus').select('stock').where('sku_id', '=', skuId).executeTakeFirstOrThrow();
    const ledger = await env.db.selectFrom('stock_ledger').select('qty').where('sku_id', '=', skuId).execute();
    return { mysql: Number(row.stock), ledger: ledger.reduce((sum, entry) => sum + Number(entry.qty), 0), redis: (await inventory.getSkuStock(skuId))!.available };
  }

  async function createSku(skuId: string, stock: number) {
    const sku = { skuId, title: skuId, priceCents: 1_000, merchantId: 'shop', channel: 'self' as const, warehouseId: 'wh-east', deduction: 'placement' as const, flashSale: null };
    await catalog.createSku(sku, stock, `create-${skuId}`, () => inventory.initSku({ ...stockRulesOf(sku), available: stock }));
  }

  beforeAll(async () => {
    env = await createTestEnv('stock_set_commit_unanswered');
    inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
    catalog = new CatalogRepository(env.db);
  });

  afterAll(async () => {
    await Promise.all(lossyDbs.map((lossy) => lossy.close()));
    await env?.cleanup();
  });

  it('counts a set MySQL committed once, raised or lowered, when the merchant sends it again', async () => {
    await createSku('LAMP', 10);
    await expect(setStock(catalogWhoseCommitFails(true), 'LAMP', 100, 'raise-1')).rejects.toThrow('Query inactivity timeout');
    await setStock(catalog, 'LAMP', 100, 'raise-2');
    expect(await stockEverywhere('LAMP')).toEqual({ mysql: 100, ledger: 100, redis: 100 });

    await expect(setStock(catalogWhoseCommitFails(true), 'LAMP', 40, 'lower-1')).rejects.toThrow('Query inactivity timeout');
    await setStock(catalog, 'LAMP', 40, 'lower-2');
    expect(await stockEverywhere('LAMP')).toEqual({ mysql: 40, ledger: 40, redis: 40 });
  });

  it('writes the ledger row of a set MySQL did not commit when the set is finished, by the next set or the stock check', async () => {
    await createSku('DESK', 10);
    await expect(setStock(catalogWhoseCommitFails(false), 'DESK', 70, 'raise-1')).rejects.toThrow('Query inactivity timeout');
    // left open: Redis sells what the merchant set, and the next set finishes it
    expect((await inventory.openStockSet('DESK'))?.ref).toBe('raise-1');
    await setStock(catalog, 'DESK', 70, 'raise-2');
    expect(await stockEverywhere('DESK')).toEqual({ mysql: 70, ledger: 70, redis: 70 });

    await expect(setStock(catalogWhoseCommitFails(false), 'DESK', 30, 'lower-1')).rejects.toThrow('Query inactivity timeout');
    const stockCheck = new StockSets({ inventory, record: (...set) => catalog.setStock(...set), clock: () => new Date() });
    expect(await stockCheck.finishOpen(0, (error) => { throw error; })).toBe(1);
    expect(await stockEverywhere('DESK')).toEqual({ mysql: 30, ledger: 30, redis: 30 });
  });
});

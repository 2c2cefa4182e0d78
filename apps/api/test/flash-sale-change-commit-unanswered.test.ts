import { changeFlashSale } from '@orders/api';
import type { FlashSale } from '@orders/domain';
import { CatalogRepository } from '@orders/persistence';
import { Inventory, checkoutTimeoutsOf, stockRulesOf } from '@orders/stock';
import { createTestEnv, dbWhoseCommitsGoUnanswered, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HOUR = 3600_000;
const BUCKETS = 4;

/**
 * A change of a flash sale whose COMMIT gets no answer after every bucket in Redis took it: MySQL
 * committed or rolled back, and the api cannot tell which. Redis must end up selling by the sale
 * the catalog has, which the workers price orders by.
 */
describe('a flash-sale change whose COMMIT gets no answer', () => {
  let env: TestEnv;
  let inventory: Inventory;
  let catalog: CatalogRepository;
  const lossyDbs: Array<{ close(): Promise<void> }> = [];
  const now = Date.now();
  const soon: FlashSale = { priceCents: 500, startsAt: new Date(now + HOUR), endsAt: new Date(now + 2 * HOUR), perUserLimit: 1 };
  const later: FlashSale = { priceCents: 400, startsAt: new Date(now + 3 * HOUR), endsAt: new Date(now + 4 * HOUR), perUserLimit: 2 };

  function catalogWhoseCommitFails(committed: boolean): CatalogRepository {
    const lossy = dbWhoseCommitsGoUnanswered(env.config.MYSQL_URL, committed);
    lossyDbs.push(lossy);
    return new CatalogRepository(lossy.db);
  }

  async function createSku(skuId: string) {
    const sku = { skuId, title: skuId, priceCents: 1_000, merchantId: 'shop', channel: 'self' as const, warehouseId: 'wh-east', deduction: 'placement' as const, flashSale: soon, stockBuckets: BUCKETS };
    await catalog.createSku(sku, 40, `create-${skuId}`, () => inventory.initSku({ ...stockRulesOf(sku), available: 40 }));
    return sku;
  }

  /** The sale the catalog prices by, and each bucket's as Redis sells by it. */
  async function saleEverywhere(skuId: string) {
    const stored = (await catalog.findSku(skuId))!.flashSale;
    const buckets = await Promise.all(Array.from({ length: BUCKETS }, (_, bucket) => env.redis.hmget(inventory.keys.sku(inventory.keys.bucketGroup(bucket), skuId), 'saleStartsAt', 'saleEndsAt', 'perUserLimit')));
    return { catalog: stored?.startsAt.getTime() ?? 0, buckets: buckets.map(([startsAt]) => Number(startsAt)) };
  }

  beforeAll(async () => {
    env = await createTestEnv('sale_change_commit_unanswered');
    inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
    catalog = new CatalogRepository(env.db);
  });

  afterAll(async () => {
    await Promise.all(lossyDbs.map((lossy) => lossy.close()));
    await env?.cleanup();
  });

  it('puts the old sale back in Redis when MySQL did not commit the change, so the staff retry it', async () => {
    const sku = await createSku('LAMP');
    await expect(changeFlashSale({ catalog: catalogWhoseCommitFails(false), inventory }, sku, later)).rejects.toThrow('Query inactivity timeout');
    expect(await saleEverywhere('LAMP')).toEqual({ catalog: soon.startsAt.getTime(), buckets: Array(BUCKETS).fill(soon.startsAt.getTime()) });
    // the retry goes through
    expect(await changeFlashSale({ catalog, inventory }, sku, later)).toEqual(soon);
    expect(await saleEverywhere('LAMP')).toEqual({ catalog: later.startsAt.getTime(), buckets: Array(BUCKETS).fill(later.startsAt.getTime()) });
  });

  it('keeps the change when MySQL committed it though its answer was lost', async () => {
    const sku = await createSku('RUG');
    expect(await changeFlashSale({ catalog: catalogWhoseCommitFails(true), inventory }, sku, null)).toEqual(soon);
    expect(await saleEverywhere('RUG')).toEqual({ catalog: 0, buckets: Array(BUCKETS).fill(0) });
  });
});

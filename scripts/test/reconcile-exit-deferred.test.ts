import { createSkuWithStock } from '@orders/api';
import { CatalogRepository } from '@orders/persistence';
import { Inventory, StockSets, checkoutTimeoutsOf } from '@orders/stock';
import { createTestEnv, runOperatorCommand, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('npm run reconcile -- --repair: exit code when it left a SKU unrepaired', () => {
  let env: TestEnv;
  let inventory: Inventory;
  let catalog: CatalogRepository;

  beforeAll(async () => {
    env = await createTestEnv('reconcile_exit');
    inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
    catalog = new CatalogRepository(env.db);
  });
  afterAll(async () => env?.cleanup());

  it('exits non-zero when it printed NOT REPAIRED for a SKU whose lost bucket it did not recreate (skusDeferred)', { timeout: 120_000 }, async () => {
    const sku = { skuId: 'STOOL', title: 'Stool', priceCents: 1_500, merchantId: 'shop', channel: 'self' as const, warehouseId: 'wh-east', deduction: 'placement' as const, flashSale: null, stockBuckets: 4 };
    await createSkuWithStock({ catalog, inventory }, sku, 40, 'stool-opening');
    // the merchant's set to 20: Redis and the MySQL COMMIT done, the api died before it closed the set in Redis
    const sets = new StockSets({
      inventory,
      clock: () => new Date(),
      record: async (...set) => {
        await catalog.setStock(...set);
        throw new Error('the api process died after its MySQL commit, before closing the set');
      },
    });
    await expect(sets.set('STOOL', 20, 'stool-recount', () => undefined)).rejects.toThrow('died after its MySQL commit');
    // the node holding bucket 2 came back empty
    await env.redis.del(`${env.config.REDIS_KEY_PREFIX}{g2}:sku:STOOL`);

    // a settle time longer than the command's start: the set is still "recent" when the run begins
    const answer = await runOperatorCommand('reconcile', ['--repair'], { ...env.env, RECONCILE_SETTLE_MS: '6000' });
    expect(answer.output).toContain('NOT REPAIRED: STOOL');
    // the bucket is still lost ...
    expect(await env.redis.exists(`${env.config.REDIS_KEY_PREFIX}{g2}:sku:STOOL`)).toBe(0);
    // ... yet a cron job or runbook step reads "all clear"
    expect(answer.exitCode).toBe(2);
  });
});

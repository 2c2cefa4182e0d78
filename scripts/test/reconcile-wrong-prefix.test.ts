import { createSkuWithStock } from '@orders/api';
import { CatalogRepository } from '@orders/persistence';
import { Inventory, checkoutTimeoutsOf } from '@orders/stock';
import { createTestEnv, runOperatorCommand, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * docs/operations.md, "Stock drift" and "Redis restarted": the SKUs come from MySQL, so a wrong
 * REDIS_KEY_PREFIX read every SKU as `no counters` (exit 2), just as a Redis that lost everything,
 * and the runbook's next step, `--repair`, wrote the whole shop where no process reads it and said
 * "Repaired". A prefix holding none of the shop's keys (a prefix that is the start of the real one
 * included) is now said so (exit 3), and repaired into only with --into-empty-prefix.
 */
describe('npm run reconcile with a REDIS_KEY_PREFIX that holds nothing', () => {
  let env: TestEnv;
  const wrongPrefix = () => `${env.config.REDIS_KEY_PREFIX}typo:`;
  const keysUnder = (prefix: string) => env.redis.keys(`${prefix}*`);
  const vaseKey = () => `${env.config.REDIS_KEY_PREFIX}{g0}:sku:VASE`;

  beforeAll(async () => {
    env = await createTestEnv('reconcile_wrong_prefix');
    const inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
    const catalog = new CatalogRepository(env.db);
    const sku = { skuId: 'VASE', title: 'Vase', priceCents: 1_500, merchantId: 'shop', channel: 'self' as const, warehouseId: 'wh-east', deduction: 'placement' as const, flashSale: null };
    await createSkuWithStock({ catalog, inventory }, sku, 10, 'vase-opening');
  });
  afterAll(async () => {
    for (const key of await keysUnder(wrongPrefix())) await env.redis.del(key);
    await env?.cleanup();
  });

  it('a check under a mistyped prefix says the prefix holds nothing, naming it and both causes, not every SKU lost; exit 3, nothing written there', async () => {
    const check = await runOperatorCommand('reconcile', [], { ...env.env, REDIS_KEY_PREFIX: wrongPrefix() });
    expect(check.output).not.toContain('no counters');
    expect(check.output).toContain(`NOTHING UNDER THE KEY PREFIX: Redis holds no key of the shop's at all under ${wrongPrefix()}`);
    expect(check.output).toContain('the catalog has 1 SKU');
    expect(check.output).toContain('REDIS_KEY_PREFIX (or REDIS_URL) is not the workers');
    expect(check.output).toContain('Redis lost everything');
    expect(check.exitCode).toBe(3);
    // nor its report or markers: a second run finds the prefix as empty
    expect(await keysUnder(wrongPrefix())).toEqual([]);
  });

  it('--repair under the wrong prefix writes no copy of the shop where no process reads it, nor says "Repaired"; exit 3', async () => {
    const repair = await runOperatorCommand('reconcile', ['--repair'], { ...env.env, REDIS_KEY_PREFIX: wrongPrefix() });
    expect(repair.output).not.toContain('Repaired');
    expect(repair.output).toContain('Nothing repaired: a repair writes into an empty prefix only with --into-empty-prefix');
    expect(repair.exitCode).toBe(3);
    expect(await keysUnder(wrongPrefix())).toEqual([]);
  });

  it("a prefix that is the start of the real one (its ':' left off) matches every key of the shop's and holds none: exit 3, nothing written", async () => {
    const shortened = env.config.REDIS_KEY_PREFIX.slice(0, -1);
    const repair = await runOperatorCommand('reconcile', ['--repair'], { ...env.env, REDIS_KEY_PREFIX: shortened });
    expect(repair.output).not.toContain('no counters');
    expect(repair.output).toContain(`NOTHING UNDER THE KEY PREFIX: Redis holds no key of the shop's at all under ${shortened}`);
    expect(repair.exitCode).toBe(3);
    expect((await env.redis.keys(`${shortened}*`)).filter((key) => !key.startsWith(env.config.REDIS_KEY_PREFIX))).toEqual([]);
  });

  it('"Redis restarted" for a Redis that lost everything: the check says the prefix is empty, --repair --into-empty-prefix recreates the shop there', { timeout: 60_000 }, async () => {
    for (const key of await keysUnder(env.config.REDIS_KEY_PREFIX)) await env.redis.del(key);
    const check = await runOperatorCommand('reconcile', [], env.env);
    expect([check.exitCode, check.output]).toEqual([3, expect.stringContaining(`no key of the shop's at all under ${env.config.REDIS_KEY_PREFIX}`)]);

    const repair = await runOperatorCommand('reconcile', ['--repair', '--into-empty-prefix'], env.env);
    expect(repair.output).toContain('Repaired: the Redis counters now match the ledger.');
    expect(repair.exitCode).toBe(0);
    expect(await env.redis.hmget(vaseKey(), 'available', 'reserved', 'sold')).toEqual(['10', '0', '0']);
    expect((await runOperatorCommand('reconcile', [], env.env)).exitCode).toBe(0);
  });

  it('a Redis that lost everything while the workers ran: their stock check wrote its mark back, so the SKUs read `no counters` (exit 2) and --repair needs no flag', { timeout: 60_000 }, async () => {
    for (const key of await keysUnder(env.config.REDIS_KEY_PREFIX)) await env.redis.del(key);
    await env.redis.set(`${env.config.REDIS_KEY_PREFIX}stock-drift-checked-at`, String(Date.now()));
    const check = await runOperatorCommand('reconcile', [], env.env);
    expect(check.output).toContain('no counters');
    expect(check.exitCode).toBe(2);

    const repair = await runOperatorCommand('reconcile', ['--repair'], env.env);
    expect([repair.exitCode, repair.output]).toEqual([0, expect.stringContaining('Repaired: the Redis counters now match the ledger.')]);
    expect(await env.redis.hmget(vaseKey(), 'available', 'reserved', 'sold')).toEqual(['10', '0', '0']);
  });
});

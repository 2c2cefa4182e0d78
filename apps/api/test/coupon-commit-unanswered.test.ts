import type { Coupon } from '@orders/domain';
import { PricingRepository } from '@orders/persistence';
import { Inventory, checkoutTimeoutsOf } from '@orders/stock';
import { createTestEnv, dbWhoseCommitsGoUnanswered, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoupon } from '../src/pricing-admin.js';

/**
 * An admin's new coupon whose COMMIT gets no answer: the api cannot tell whether MySQL has
 * it, and the admin, answered 5xx, sends the same create again. Checkout's copy in Redis
 * must never hold a coupon MySQL does not: its buyers' uses would be taken at checkout and
 * their orders, the worker finding no coupon, charged full price.
 */
describe("a new coupon whose COMMIT gets no answer", () => {
  let env: TestEnv;
  let inventory: Inventory;
  const lossyDbs: Array<{ close(): Promise<void> }> = [];

  const coupon = (code: string): Coupon => ({ code, kind: 'fixed', percentOff: 0, offCents: 500, minSpendCents: 0, perBuyerLimit: 1, startsAt: new Date('2020-01-01T00:00:00Z'), endsAt: new Date('2100-01-01T00:00:00Z') });
  const createdThrough = (pricing: PricingRepository, created: Coupon) => createCoupon({ pricing, inventory }, created);
  function pricingWhoseCommitFails(committed: boolean): PricingRepository {
    const lossy = dbWhoseCommitsGoUnanswered(env.config.MYSQL_URL, committed);
    lossyDbs.push(lossy);
    return new PricingRepository(lossy.db);
  }
  const inMysql = async (code: string) => (await env.db.selectFrom('coupons').select('code').where('code', '=', code).execute()).length === 1;

  beforeAll(async () => {
    env = await createTestEnv('coupon_commit_unanswered');
    inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
  });
  afterAll(async () => {
    await Promise.all(lossyDbs.map((lossy) => lossy.close()));
    await env?.cleanup();
  });

  it('is not on sale at checkout when MySQL rolled it back, and is created by the same create sent again', async () => {
    await expect(createdThrough(pricingWhoseCommitFails(false), coupon('SPRING'))).rejects.toThrow('Query inactivity timeout');
    expect([await inMysql('SPRING'), await inventory.couponPublished('SPRING')]).toEqual([false, false]);

    await createdThrough(new PricingRepository(env.db), coupon('SPRING'));
    expect([await inMysql('SPRING'), await inventory.couponPublished('SPRING')]).toEqual([true, true]);
  });

  it('is put on sale by the same create sent again when MySQL committed it; another coupon under its code is refused', async () => {
    await expect(createdThrough(pricingWhoseCommitFails(true), coupon('SUMMER'))).rejects.toThrow('Query inactivity timeout');
    expect([await inMysql('SUMMER'), await inventory.couponPublished('SUMMER')]).toEqual([true, false]);

    const pricing = new PricingRepository(env.db);
    await expect(createdThrough(pricing, { ...coupon('SUMMER'), offCents: 900 })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await inventory.couponPublished('SUMMER')).toBe(false);
    await createdThrough(pricing, coupon('SUMMER'));
    expect(await inventory.couponPublished('SUMMER')).toBe(true);
    // once on sale, the same create again is the coupon that exists
    await expect(createdThrough(pricing, coupon('SUMMER'))).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});

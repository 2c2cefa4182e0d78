import { priceOrder } from '@orders/domain';
import { CatalogRepository, PricingRepository } from '@orders/persistence';
import { Inventory, checkoutTimeoutsOf } from '@orders/stock';
import { buyerAddress, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoCatalog } from '../src/demo-catalog.js';
import { DEMO_BUYER } from '../src/demo-shop.js';

describe('the demo seed', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('demo_seed');
  });
  afterAll(async () => env?.cleanup());

  it('loads the catalog with a promotion, a coupon and the demo buyer as a gold member, and changes nothing when run again', async () => {
    expect(await seedDemoCatalog(env.config)).toEqual(['PHONE-X-FLASH', 'TSHIRT-BLK-M', 'MUG-WHITE', 'BOOK-TS', 'CONSOLE-NEXT-PRESALE', 'GIFT-CARD-25', 'promotion DEMO-SPEND-100', 'coupon WELCOME15', 'member level gold', `member ${DEMO_BUYER}`]);
    expect(await seedDemoCatalog(env.config)).toEqual([]);
    expect(await env.db.selectFrom('promotions').select('promotion_id').execute()).toHaveLength(1);
    expect(await env.db.selectFrom('coupons').select('code').execute()).toHaveLength(1);

    // the demo buyer's cart of 3 books and 2 T-shirts (14,348) as the worker prices it: every rule applies
    const items = [
      { skuId: 'BOOK-TS', qty: 3 },
      { skuId: 'TSHIRT-BLK-M', qty: 2 },
    ];
    const now = new Date();
    const accepted = { orderId: '01JDEMO0000000000000000000', userId: DEMO_BUYER, type: 'standard' as const, items, address: buyerAddress, couponCode: 'WELCOME15', acceptedAt: now.toISOString(), paymentDeadline: now.toISOString() };
    const skus = await new CatalogRepository(env.db).findSkus(items.map((i) => i.skuId));
    const rules = (await new PricingRepository(env.db).rulesFor([accepted], skus)).byOrder.get(accepted.orderId)!;
    const priced = priceOrder(accepted.type, items, skus, now, rules);
    expect(priced.applied.member).toEqual({ level: 'gold', discountCents: 517 + 199, freeShipping: false });
    expect(priced.applied.promotions).toEqual([{ promotionId: 'DEMO-SPEND-100', discountCents: 1_000 }]);
    // 15 % of what is left after the member discount and the promotion: 14,348 − 716 − 1,000 = 12,632
    expect(priced.applied.coupon).toEqual({ code: 'WELCOME15', discountCents: 1_894 });
    expect(priced.amounts).toMatchObject({ subtotalCents: 14_348, discountCents: 716 + 1_000 + 1_894 });
  });

  it('keeps what an operator changed since: a level’s discount and the demo buyer’s level stay as set', async () => {
    const pricing = new PricingRepository(env.db);
    const now = async () => new Date();
    await pricing.setMemberLevel({ level: 'gold', discountPercent: 10, freeShipping: true }, now);
    await pricing.setMemberLevel({ level: 'silver', discountPercent: 2, freeShipping: false }, now);
    await pricing.setMember(DEMO_BUYER, 'silver', now);
    expect(await seedDemoCatalog(env.config)).toEqual([]);
    expect(await env.db.selectFrom('member_levels').select(['level', 'discount_percent']).where('level', '=', 'gold').executeTakeFirst()).toEqual({ level: 'gold', discount_percent: 10 });
    expect(await env.db.selectFrom('members').select('level').where('user_id', '=', DEMO_BUYER).executeTakeFirst()).toEqual({ level: 'silver' });
  });

  it('puts the flash-sale phone and the coupon on sale when run again after a seed that committed them and was killed before publishing them', async () => {
    const inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
    // what a seed killed between its commits and its publishes left: in MySQL, not in Redis
    await env.redis.del(inventory.keys.sku(inventory.keys.bucketGroup(0), 'PHONE-X-FLASH'), inventory.keys.coupon(inventory.keys.couponGroup(), 'WELCOME15'));
    await new Promise((resolve) => setTimeout(resolve, 5));
    // run again later: its own window would be another one, the stored one is asked for
    expect(await seedDemoCatalog(env.config)).toEqual(['PHONE-X-FLASH', 'coupon WELCOME15']);
    expect(await inventory.bucketStock('PHONE-X-FLASH')).toEqual([{ available: 1_000, reserved: 0, sold: 0 }]);
    expect(await inventory.couponPublished('WELCOME15')).toBe(true);
  });
});

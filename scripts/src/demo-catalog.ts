import { connectApi, createCoupon, createSkuWithStock } from '@orders/api';
import type { Config } from '@orders/config';
import { SkuAlreadyExists, type Coupon, type MemberLevel, type Sku, type ThresholdPromotion } from '@orders/domain';
import { PricingRepository, PricingRuleExists } from '@orders/persistence';
import { DEMO_BUYER } from './demo-shop.js';

const HOUR = 3600_000;

/**
 * When the demo's sale and pricing are open: from an hour before the first `npm start` or `npm
 * run seed`, for a year. A window is fixed when its SKU or rule is created and the catalog is
 * seeded once, so `npm start` months later must still find them open.
 */
function demoWindow(now: Date): { startsAt: Date; endsAt: Date } {
  return { startsAt: new Date(now.getTime() - HOUR), endsAt: new Date(now.getTime() + 365 * 24 * HOUR) };
}

/** A small shop: a flash-sale phone, everyday goods from two warehouses, a third-party seller, a presale and a gift card. */
export function demoCatalog(now: Date): Array<{ sku: Sku; stock: number }> {
  const base = { channel: 'self' as const, merchantId: 'shop', deduction: 'placement' as const, flashSale: null };
  return [
    {
      sku: {
        ...base,
        skuId: 'PHONE-X-FLASH',
        title: 'Phone X (flash sale)',
        priceCents: 99_900,
        warehouseId: 'wh-east',
        flashSale: { priceCents: 49_900, ...demoWindow(now), perUserLimit: 2 },
      },
      stock: 1000,
    },
    { sku: { ...base, skuId: 'TSHIRT-BLK-M', title: 'T-shirt black M', priceCents: 1_999, warehouseId: 'wh-east', deduction: 'payment' }, stock: 50_000 },
    { sku: { ...base, skuId: 'MUG-WHITE', title: 'Mug white', priceCents: 899, warehouseId: 'wh-west' }, stock: 10_000 },
    { sku: { ...base, skuId: 'BOOK-TS', title: 'Book: TypeScript in practice', priceCents: 3_450, warehouseId: 'wh-west', channel: 'third_party', merchantId: 'bookseller' }, stock: 500 },
    // a presale (a deposit now, the balance later) and a virtual good (nothing ships): each bought in an order of its own
    { sku: { ...base, skuId: 'CONSOLE-NEXT-PRESALE', title: 'Console Next (presale)', priceCents: 49_900, warehouseId: 'wh-east', orderType: 'presale' }, stock: 200 },
    { sku: { ...base, skuId: 'GIFT-CARD-25', title: 'Gift card 25.00', priceCents: 2_500, warehouseId: 'digital', orderType: 'virtual' }, stock: 100_000 },
  ];
}

/**
 * Pricing at work on the demo catalog: 10.00 off carts of 100.00 or more, a 15 % coupon
 * for carts of 60.00 or more (once per buyer), and the demo buyer a gold member (5 % off).
 */
export function demoPricing(now: Date): { promotion: ThresholdPromotion; coupon: Coupon; level: MemberLevel; member: { userId: string; level: string } } {
  const window = demoWindow(now);
  return {
    promotion: { promotionId: 'DEMO-SPEND-100', title: '10.00 off orders of 100.00 or more', thresholdCents: 10_000, offCents: 1_000, skuIds: null, ...window },
    coupon: { code: 'WELCOME15', kind: 'percent', percentOff: 15, offCents: 0, minSpendCents: 6_000, perBuyerLimit: 1, ...window },
    level: { level: 'gold', discountPercent: 5, freeShipping: false },
    member: { userId: DEMO_BUYER, level: 'gold' },
  };
}

/**
 * Loads the demo catalog and its pricing through the admin endpoints' own logic; SKUs,
 * promotions and coupons that already exist are left as they are (the member level and
 * the buyer's level are set again). Returns what was created.
 */
export async function seedDemoCatalog(config: Config): Promise<string[]> {
  const deps = await connectApi(config, { migrate: true });
  const pricing = new PricingRepository(deps.db);
  const created: string[] = [];
  const unlessExists = async (what: string, create: () => Promise<unknown>) => {
    try {
      await create();
      created.push(what);
    } catch (error) {
      if (!(error instanceof SkuAlreadyExists) && !(error instanceof PricingRuleExists)) throw error;
    }
  };
  try {
    const now = new Date();
    const datedNow = async () => now;
    // what a seed before stored keeps its window (dated by that seed): asked again as it was, a create that
    // seed committed and never published (killed in between) is published now, not taken for another one
    for (const { sku, stock } of demoCatalog(now)) {
      const stored = await deps.catalog.findSku(sku.skuId);
      await unlessExists(sku.skuId, () => createSkuWithStock(deps, stored ? { ...sku, flashSale: stored.flashSale } : sku, stock, `seed-${sku.skuId}`));
    }
    const { promotion, coupon, level, member } = demoPricing(now);
    await unlessExists(`promotion ${promotion.promotionId}`, () => pricing.createPromotion(promotion, datedNow));
    const storedCoupon = await pricing.findCoupon(coupon.code);
    const couponAsStored = storedCoupon ? { ...coupon, startsAt: storedCoupon.startsAt, endsAt: storedCoupon.endsAt } : coupon;
    await unlessExists(`coupon ${coupon.code}`, () => createCoupon({ pricing, inventory: deps.inventory }, couponAsStored));
    // as the rest: what an operator set since (a level's discount, the buyer's level) stays
    if (!(await deps.db.selectFrom('member_levels').select('level').where('level', '=', level.level).executeTakeFirst())) {
      await pricing.setMemberLevel(level, datedNow);
      created.push(`member level ${level.level}`);
    }
    if (!(await deps.db.selectFrom('members').select('user_id').where('user_id', '=', member.userId).executeTakeFirst())) {
      await pricing.setMember(member.userId, member.level, datedNow);
      created.push(`member ${member.userId}`);
    }
  } finally {
    await deps.close();
  }
  return created;
}

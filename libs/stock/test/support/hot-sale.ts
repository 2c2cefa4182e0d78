import type { Inventory } from '@orders/stock';

const HOUR = 3600_000;
/** How many ways the stock tests' hot SKU is split. */
export const HOT_BUCKETS = 4;

/**
 * The sale the claim tests run: 'HOT' split HOT_BUCKETS ways, and the once-per-buyer coupon
 * 'ONCE' valid an hour either side of `now` (a bucketed cart's coupon use is claimed in the
 * buyer's own group first).
 */
export async function openHotSaleWithOnceCoupon(inventory: Inventory, now: Date, available: number): Promise<void> {
  await inventory.initSku({ skuId: 'HOT', available, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0, buckets: HOT_BUCKETS });
  await inventory.publishCoupon({ code: 'ONCE', perBuyerLimit: 1, startsAt: new Date(now.getTime() - HOUR), endsAt: new Date(now.getTime() + HOUR) });
}

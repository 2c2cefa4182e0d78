import type { Coupon } from '@orders/domain';
import type { PricingRepository } from '@orders/persistence';
import type { Inventory } from '@orders/stock';

/** Creates a coupon in MySQL and publishes it to checkout's copy in Redis, together (nothing is committed if publishing fails). */
export function createCoupon(deps: { pricing: PricingRepository; inventory: Inventory }, coupon: Coupon): Promise<void> {
  return deps.pricing.createCoupon(coupon, () => deps.inventory.publishCoupon(coupon));
}

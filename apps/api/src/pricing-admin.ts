import type { Coupon } from '@orders/domain';
import type { PricingRepository } from '@orders/persistence';
import type { Inventory } from '@orders/stock';

/**
 * Creates a coupon in MySQL, then publishes it to checkout's copy in Redis. One committed before
 * whose publish never ran (its api died, Redis refused) is published by the same create sent again.
 */
export function createCoupon(deps: { pricing: PricingRepository; inventory: Inventory }, coupon: Coupon): Promise<void> {
  return deps.pricing.createCoupon(
    coupon,
    () => deps.inventory.publishCoupon(coupon),
    () => deps.inventory.couponPublished(coupon.code),
  );
}

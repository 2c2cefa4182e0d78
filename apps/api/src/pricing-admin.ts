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

/**
 * Ends a coupon now: checkout's copy in Redis first, by the clock checkouts are accepted by, so no
 * checkout takes it after (Redis without a copy, one lost or not published yet, keeps the end
 * alone, so a publish still on its way does not put it back on sale); then MySQL, at the same
 * instant, so the worker prices every order accepted with it before by it. Sent again after a
 * failure, it ends MySQL's at the end Redis's was given. Null when there is no coupon of that code.
 */
export async function endCoupon(deps: { pricing: PricingRepository; inventory: Inventory }, code: string): Promise<Coupon | null> {
  if (!(await deps.pricing.findCoupon(code))) return null;
  return deps.pricing.endCoupon(code, await deps.inventory.endCoupon(code));
}

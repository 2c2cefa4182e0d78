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
 * checkout takes it after; then MySQL, at the same instant, so the worker prices every order
 * accepted with it before by it. Redis without a copy (lost, or gone a day after the coupon's end)
 * refuses it already: MySQL's end is then now. Sent again after a failure, it ends MySQL's at the
 * end Redis's was given. Null when there is no coupon of that code.
 */
export async function endCoupon(deps: { pricing: PricingRepository; inventory: Inventory }, code: string): Promise<Coupon | null> {
  if (!(await deps.pricing.findCoupon(code))) return null;
  const endsAt = (await deps.inventory.endCoupon(code)) ?? new Date((await deps.inventory.acceptanceClock()).getTime() + 1);
  return deps.pricing.endCoupon(code, endsAt);
}

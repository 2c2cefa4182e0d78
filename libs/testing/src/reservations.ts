import { StockKeys, type ReserveStockRequest } from '@orders/stock';
import { buyerAddress } from './processes.js';

let reservations = 0;

/**
 * A reservation as the intake asks for one, for the stock scripts' own tests: each call a new
 * order id, Idempotency-Key and body hash, now's time and no coupon, unless `extra` says otherwise.
 */
export function reservationOf(userId: string, items: ReserveStockRequest['items'], extra: Partial<ReserveStockRequest> = {}): ReserveStockRequest {
  const n = ++reservations;
  return {
    orderId: `ORDER${String(n).padStart(21, '0')}`,
    userId,
    idempotencyKey: `k${n}`,
    bodyHash: `h${n}`,
    requestedType: null,
    items,
    payload: { address: buyerAddress, couponCode: null },
    now: new Date(),
    ...extra,
  };
}

/**
 * `<name>-<i>` for the first i whose buyer buys outside bucket 0 of a SKU split each of these
 * ways (1: not split, any buyer): their cart runs in another group than their own {g0}, where
 * its key and coupon use are claimed first.
 */
export function buyerOutsideBucketZero(name: string, ...bucketCounts: number[]): string {
  const keys = new StockKeys('');
  for (let i = 0; i < 10_000; i++) {
    const buyer = `${name}-${i}`;
    if (bucketCounts.every((buckets) => buckets <= 1 || keys.bucketOf(buyer, buckets) !== 0)) return buyer;
  }
  throw new Error(`no buyer ${name}-<i> outside bucket 0 of ${bucketCounts.join(', ')} buckets`);
}

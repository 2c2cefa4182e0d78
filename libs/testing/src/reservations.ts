import type { ReserveStockRequest } from '@orders/stock';
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

import type { AcceptedOrder } from '@orders/domain';
import { buyerAddress } from './processes.js';

/**
 * An order as the intake accepted it, as a persist job carries it: its id `idPrefix` followed by
 * `n`, padded to a ULID's 26 characters; one unit of `MUG` unless `fields` say otherwise; due for
 * payment 30 minutes after `acceptedAt`.
 */
export function acceptedOrder(idPrefix: string, n: number, acceptedAt: Date, fields: Partial<Pick<AcceptedOrder, 'userId' | 'items' | 'address'>> = {}): AcceptedOrder {
  return {
    orderId: `${idPrefix}${String(n).padStart(26 - idPrefix.length, '0')}`,
    userId: `buyer-${n}`,
    type: 'standard',
    items: [{ skuId: 'MUG', qty: 1 }],
    address: buyerAddress,
    couponCode: null,
    acceptedAt: acceptedAt.toISOString(),
    paymentDeadline: new Date(acceptedAt.getTime() + 1_800_000).toISOString(),
    ...fields,
  };
}

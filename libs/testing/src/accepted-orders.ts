import { priceOrder, type AcceptedOrder, type Sku } from '@orders/domain';
import type { OrderRepository } from '@orders/persistence';
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

/** A lamp the shop sells from wh-east, its units taken at placement: the one SKU of persistLampOrder's orders. */
export const LAMP: Sku = { skuId: 'LAMP', title: 'Lamp', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', flashSale: null };

/** Writes acceptedOrder's order `n` of one lamp, accepted now, priced and written as the workers do (no pricing rules). */
export function persistLampOrder(orders: OrderRepository, idPrefix: string, n: number): Promise<Map<string, Date>> {
  const acceptedAt = new Date();
  const accepted = acceptedOrder(idPrefix, n, acceptedAt, { items: [{ skuId: 'LAMP', qty: 1 }] });
  return orders.persistAcceptedOrders([{ accepted, priced: priceOrder('standard', accepted.items, new Map([['LAMP', LAMP]]), acceptedAt) }], acceptedAt);
}

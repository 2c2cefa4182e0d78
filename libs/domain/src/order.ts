import type { OrderType } from './order-process.js';

export interface OrderLineRequest {
  skuId: string;
  qty: number;
}

/**
 * The SKU of the first of an order's payment-time lines the units on sale no longer cover, or
 * null when all are: `available[i]` is what line i's SKU has on sale, null where Redis holds no
 * counters for it, which the stock commit at payment counts as none (commitStock-1+n.lua).
 */
export function uncoveredPaymentLine(lines: readonly OrderLineRequest[], available: ReadonlyArray<number | null>): string | null {
  return lines.find((line, i) => (available[i] ?? 0) < line.qty)?.skuId ?? null;
}

export interface Address {
  name: string;
  phone: string;
  line1: string;
  city: string;
  postalCode: string;
  country: string;
}

const ADDRESS_FIELDS = ['name', 'phone', 'line1', 'city', 'postalCode', 'country'] as const satisfies ReadonlyArray<keyof Address>;

/**
 * The address as an order's row keeps it: its fields always in one order, so the same address is the
 * same text whatever order a client sent them in (a change to it, or a change sent again, is told by the text).
 */
export function storedAddress(address: Address): string {
  return JSON.stringify(Object.fromEntries(ADDRESS_FIELDS.map((field) => [field, address[field]])));
}

/**
 * An order as the intake accepted it: stock is reserved (or checked) in Redis and the
 * buyer holds its id. The worker turns it into rows; nothing in it is a price.
 */
export interface AcceptedOrder {
  orderId: string;
  userId: string;
  type: OrderType;
  items: OrderLineRequest[];
  /** null when the buyer gave none: an order that ships nothing (virtual) needs none */
  address: Address | null;
  couponCode: string | null;
  acceptedAt: string;
  paymentDeadline: string;
  /**
   * The buyer's Idempotency-Key and the hash of the body it came with, kept with the order so the
   * stock repair can write the key's record again after Redis lost it (a retry then replays this
   * order); absent from an order accepted before they were carried, and from an imported one
   */
  idempotencyKey?: string | null;
  bodyHash?: string | null;
}

/**
 * The payment deadline an accepted order is persisted with, once written at `writtenAt` (epoch
 * ms): its buyer cannot pay it while it waits in the queue, so its payment window (from
 * acceptance to the deadline the checkout set) runs whole from then, never ending before that
 * deadline. A backlog, or workers or MySQL away, costs the buyer none of the time to pay.
 */
export function persistedPaymentDeadline(order: Pick<AcceptedOrder, 'acceptedAt' | 'paymentDeadline'>, writtenAt: number): Date {
  const deadline = Date.parse(order.paymentDeadline);
  return new Date(Math.max(deadline, writtenAt + deadline - Date.parse(order.acceptedAt)));
}

/** Merges repeated SKUs into one line so stock checks and limits see the whole quantity. */
export function mergeOrderLines(items: readonly OrderLineRequest[]): OrderLineRequest[] {
  const merged = new Map<string, number>();
  for (const { skuId, qty } of items) merged.set(skuId, (merged.get(skuId) ?? 0) + qty);
  return [...merged].map(([skuId, qty]) => ({ skuId, qty }));
}

const CROCKFORD_BASE32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * `value` written in `count` digits of an order id (a ULID: Crockford's base 32), most
 * significant first; what does not fit in them is dropped.
 */
export function orderIdDigits(value: bigint, count: number): string {
  let digits = '';
  for (let rest = value, digit = 0; digit < count; digit++, rest >>= 5n) digits = CROCKFORD_BASE32[Number(rest & 31n)] + digits;
  return digits;
}

/**
 * The smallest order id accepted at `ms`: order ids are ULIDs, whose first 10 base-32
 * digits are their time, so every order accepted before it sorts below (an index range
 * over order ids).
 */
export function firstOrderIdAt(ms: number): string {
  return orderIdDigits(BigInt(Math.max(0, Math.floor(ms))), 10).padEnd(26, '0');
}

/** How many buckets a SKU's stock may be split into; bucket k lives in group {g<k>}. */
export const MAX_STOCK_BUCKETS = 64;

/** The group of every buyer's own keys (StockKeys.groupOf). */
const BUYERS_GROUP = '{g0}';

// what follows the intake's ULID in the id of an order that runs in bucket k > 0
const ORDER_GROUP_SUFFIX = /-g([1-9][0-9]?)$/;

/** FNV-1a: a stable hash of a buyer id (the same bucket in every process and release). */
function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * An Idempotency-Key as it follows the buyer's id in a Redis key. A buyer's id may hold ':'
 * (SUBJECT) and so may a key: unescaped, buyer `a` with key `b:c` and buyer `a:b` with key `c`
 * shared one record, and the second was answered the first's order. With ':' (and the escape's
 * own '%') escaped, the last ':' ends the buyer's id. A key without either is as it was.
 */
function idempotencyKeyPart(key: string): string {
  return key.replace(/[%:]/g, (character) => (character === ':' ? '%3A' : '%25'));
}

/** The suffix an order id carries for its stock group ('' in {g0}): ids of the order's children keep it. */
export function orderGroupSuffix(orderId: string): string {
  return ORDER_GROUP_SUFFIX.exec(orderId)?.[0] ?? '';
}

/** A SKU's stock split over its buckets as evenly as possible; the first buckets take the remainder. */
export function splitStock(stock: number, buckets: number): number[] {
  const share = Math.floor(stock / buckets);
  return Array.from({ length: buckets }, (_, bucket) => share + (bucket < stock % buckets ? 1 : 0));
}

/**
 * Every key the checkout script touches carries the same hash tag, so the script is
 * valid on Redis Cluster. The tag is the order's stock group: {g0} for every SKU that is
 * not split, {g<k>} for bucket k of a SKU whose stock is split into buckets.
 */
export class StockKeys {
  constructor(readonly prefix: string) {}

  /**
   * The group of a buyer's own keys, whatever group their cart runs in: velocity counts, the
   * claims of their Idempotency-Keys, their coupon uses. A cart that runs in another group (a
   * bucket's) claims and counts there first (claimCheckout-7+c.lua), so these hold per buyer.
   */
  groupOf(_userId: string): string {
    return BUYERS_GROUP;
  }

  /** Every group buyers' own keys live in (groupOf): where the claims of their Idempotency-Keys are. */
  buyersGroups(): string[] {
    return [BUYERS_GROUP];
  }

  /** The one group a coupon is published in: where every buyer's checkout reads it, beside their uses (groupOf). */
  couponGroup(): string {
    return BUYERS_GROUP;
  }

  bucketGroup(bucket: number): string {
    return `{g${bucket}}`;
  }

  /**
   * Whether `key` is one the shop writes under the prefix: a group's (`{g<k>}`: stock, buyers,
   * coupons, rate budgets) or the stock check's and the restocks' own (`stock-…`). Not a key of a
   * longer prefix that merely starts with this one (`os` read against the shop's `os:`).
   */
  isOwnKey(key: string): boolean {
    return key.startsWith(`${this.prefix}{g`) || key.startsWith(`${this.prefix}stock-`);
  }

  /** The bucket of a SKU split `buckets` ways that a buyer always buys from, so their per-buyer limit of it stays in one slot. */
  bucketOf(userId: string, buckets: number): number {
    return buckets <= 1 ? 0 : stableHash(userId) % buckets;
  }

  /** An order id that says its group: the intake's id as it is in {g0}, with `-g<k>` appended in bucket k. */
  orderIdInGroup(orderId: string, group: string): string {
    return group === '{g0}' ? orderId : `${orderId}-${group.slice(1, -1)}`;
  }

  /** The group an order's stock lives in, from its id (or a child's id, which keeps its parent's suffix); older ids are {g0}. */
  groupOfOrder(orderId: string): string {
    const bucket = ORDER_GROUP_SUFFIX.exec(orderId)?.[1];
    return bucket ? `{g${bucket}}` : '{g0}';
  }

  /** A buyer's record (or claim) of an Idempotency-Key: the key escaped (idempotencyKeyPart). */
  idempotency(group: string, userId: string, key: string): string {
    return `${this.prefix}${group}:idem:${userId}:${idempotencyKeyPart(key)}`;
  }

  /** The Idempotency-Key a buyer's record (idempotency) is of; null when the record is not one of theirs in `group`. */
  idempotencyKeyOf(record: string, group: string, userId: string): string | null {
    const ofBuyer = this.idempotency(group, userId, '');
    return record.startsWith(ofBuyer) ? record.slice(ofBuyer.length).replace(/%3A|%25/g, (escaped) => (escaped === '%3A' ? ':' : '%')) : null;
  }

  /**
   * Where a buyer's checkout attempt under an Idempotency-Key last counted toward their velocity,
   * so the requests sent again under it (as a 503 tells the buyer) do not count again: beside
   * their velocity counter, in their own group (another group only names a script's unused key).
   * The key escaped (idempotencyKeyPart).
   */
  checkoutAttempt(group: string, userId: string, key: string): string {
    return `${this.prefix}${group}:attempt:${userId}:${idempotencyKeyPart(key)}`;
  }

  /**
   * A buyers' group's claims of Idempotency-Keys under which a coupon use was taken (zset: the
   * claim's key, scored when the last use was taken, by Redis's clock; claimCheckout-7+c.lua):
   * where the stock check looks for claims whose requests are gone with their uses (AbandonedClaims).
   */
  claimsHoldingCoupons(group: string): string {
    return `${this.prefix}${group}:claims-holding-coupons`;
  }

  /** Says a buyers' group was scanned for claims within the hour (AbandonedClaims), whichever process scanned it. */
  claimsScanned(group: string): string {
    return `${this.prefix}${group}:claims-scanned`;
  }

  /** A SCAN pattern of a group's idempotency records (and, in a buyers' group, claims): the prefix's own glob characters escaped. */
  idempotencyPattern(group: string): string {
    return `${`${this.prefix}${group}:idem:`.replace(/[*?[\]\\]/g, '\\$&')}*`;
  }

  order(group: string, orderId: string): string {
    return `${this.prefix}${group}:order:${orderId}`;
  }

  accepted(group: string): string {
    return `${this.prefix}${group}:accepted`;
  }

  /**
   * A buyer's orders accepted and not yet in MySQL, whatever group their carts ran in, so their
   * list shows them (zset, every score 0: read by order id, newest first). In the buyer's own
   * group; an order that left the accepted set leaves it when a read finds so (Inventory.queuedOrdersOf).
   */
  queuedOrders(group: string, userId: string): string {
    return `${this.prefix}${group}:queued:${userId}`;
  }

  /** A short-lived key written to learn whether the replicas hold what the group's node took before it (Inventory.awaitGroupReplicated). */
  replicaProbe(group: string): string {
    return `${this.prefix}${group}:replica-probe`;
  }

  sku(group: string, skuId: string): string {
    return `${this.prefix}${group}:sku:${skuId}`;
  }

  bought(group: string, skuId: string, userId: string): string {
    return `${this.prefix}${group}:bought:${skuId}:${userId}`;
  }

  coupon(group: string, code: string): string {
    return `${this.prefix}${group}:coupon:${code}`;
  }

  couponUses(group: string, code: string, userId: string): string {
    return `${this.prefix}${group}:coupon-uses:${code}:${userId}`;
  }

  /** An order's hold of its coupon use, in its buyer's own group, for an order that runs in another (field 'c', as its record would have). */
  couponHeld(group: string, orderId: string): string {
    return `${this.prefix}${group}:coupon-held:${orderId}`;
  }

  /** Says an order's coupon use was given back, for when its reservation record (or hold) has expired. */
  couponGivenBack(group: string, orderId: string): string {
    return `${this.prefix}${group}:coupon-given-back:${orderId}`;
  }

  /** Says one step of a correction of a SKU's counters was done in this group, and what it took (correctBucket-2.lua). */
  correctionStep(group: string, correctionId: string, step: 'add' | 'take'): string {
    return `${this.prefix}${group}:correction:${correctionId}:${step}`;
  }

  restock(group: string, ref: string): string {
    return `${this.prefix}${group}:restock:${ref}`;
  }

  /** A transfer of units between two buckets, on each side: what was taken, and that it was given. */
  transfer(group: string, transferId: string): string {
    return `${this.prefix}${group}:transfer:${transferId}`;
  }

  /** Transfers taken from this group's buckets and not yet given (zset by time taken). */
  openTransfers(group: string): string {
    return `${this.prefix}${group}:transfers-open`;
  }

  /** Merchants' stock sets started and not yet closed (zset of SKU ids by time started), beside the bucket 0 that records each. */
  openStockSets(): string {
    return `${this.prefix}${this.bucketGroup(0)}:stock-sets-open`;
  }

  /** All groups a checkout may run in, for scans that look at every SKU or accepted order. */
  groups(): string[] {
    return Array.from({ length: MAX_STOCK_BUCKETS }, (_, bucket) => this.bucketGroup(bucket));
  }
}

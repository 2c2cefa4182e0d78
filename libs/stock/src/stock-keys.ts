/**
 * Every key the checkout script touches carries the same hash tag, so the script is
 * valid on Redis Cluster. The tag is the buyer's stock group; with one group (today)
 * every checkout key sits in one slot.
 */
export class StockKeys {
  constructor(readonly prefix: string) {}

  /** The group a buyer's checkouts run in: fixed per buyer so limits and idempotency stay in one slot. */
  groupOf(_userId: string): string {
    return '{g0}';
  }

  idempotency(group: string, userId: string, key: string): string {
    return `${this.prefix}${group}:idem:${userId}:${key}`;
  }

  order(group: string, orderId: string): string {
    return `${this.prefix}${group}:order:${orderId}`;
  }

  accepted(group: string): string {
    return `${this.prefix}${group}:accepted`;
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

  restock(group: string, ref: string): string {
    return `${this.prefix}${group}:restock:${ref}`;
  }

  /** All groups, for scans that look at every SKU or accepted order. */
  groups(): string[] {
    return ['{g0}'];
  }
}

import type { CappedCounter, StockKeys } from '@orders/stock';

/**
 * Each buyer's checkout attempts per fixed window, for the risk-control velocity rule: more than
 * `maxCheckouts` in one is refused. An attempt is an Idempotency-Key and body: the requests sent
 * again with them while no answer refused it for good (a 503's retries, the same request twice
 * at once) count once (the checkout scripts' countCheckoutWindows); the request budget counts
 * every request, and bounds a flood of them.
 */
export class CheckoutVelocity {
  constructor(
    private readonly keys: StockKeys,
    private readonly windowMs: number,
    private readonly maxCheckouts: number,
  ) {}

  /**
   * The buyer's attempts counter, counted with their request budget: in the buyer's stock
   * group (one hash tag, so one Redis Cluster node), where the reservation script of a SKU
   * not split into buckets counts both (CheckoutCounters).
   */
  counterOf(userId: string): CappedCounter {
    const slotGroup = this.keys.groupOf(userId);
    return { slotGroup, key: `${this.keys.prefix}${slotGroup}:velocity:${userId}`, windowMs: this.windowMs, max: this.maxCheckouts };
  }
}

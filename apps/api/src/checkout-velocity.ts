import type { StockKeys, WindowCounter, WindowCounters } from '@orders/stock';

/** Counts each buyer's checkout attempts per fixed window, for the risk-control velocity rule. */
export class CheckoutVelocity {
  constructor(
    private readonly counters: WindowCounters,
    private readonly keys: StockKeys,
    private readonly windowMs: number,
  ) {}

  /**
   * The buyer's attempts counter. The request budget counts it in the same Redis call as the
   * buyer's budget (one round trip per checkout instead of two), in the buyer's stock group:
   * one hash tag, so one Redis Cluster node.
   */
  counterOf(userId: string): WindowCounter {
    const slotGroup = this.keys.groupOf(userId);
    return { slotGroup, key: `${this.keys.prefix}${slotGroup}:velocity:${userId}`, windowMs: this.windowMs };
  }

  /** Records one attempt and returns the buyer's attempts in the current window, this one included. */
  async attempt(userId: string): Promise<number> {
    const [attempts] = await this.counters.countEach([this.counterOf(userId)]);
    return attempts!.count;
  }
}

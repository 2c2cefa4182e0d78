import type { StockKeys, WindowCounters } from '@orders/stock';

/** Counts each buyer's checkout attempts per fixed window, for the risk-control velocity rule. */
export class CheckoutVelocity {
  constructor(
    private readonly counters: WindowCounters,
    private readonly keys: StockKeys,
    private readonly windowMs: number,
  ) {}

  /** Records one attempt and returns the buyer's attempts in the current window, this one included. */
  async attempt(userId: string): Promise<number> {
    // the buyer's stock group: one hash tag, so one Redis Cluster node per pipeline
    const group = this.keys.groupOf(userId);
    return (await this.counters.count(group, `${this.keys.prefix}${group}:velocity:${userId}`, this.windowMs)).count;
  }
}

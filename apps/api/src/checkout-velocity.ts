import type { RedisClient, StockKeys } from '@orders/stock';

interface PendingCount {
  key: string;
  resolve: (attempts: number) => void;
  reject: (error: Error) => void;
}

/**
 * Counts each buyer's checkout attempts per fixed window for the risk-control velocity
 * rule. The counts asked for in one turn of the event loop go to Redis as one pipeline
 * (one write, one read), like the reservations, because this sits on the hot path.
 */
export class CheckoutVelocity {
  private readonly batches = new Map<string, PendingCount[]>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StockKeys,
    private readonly windowMs: number,
  ) {}

  /** Records one attempt and returns the buyer's attempts in the current window, this one included. */
  attempt(userId: string, now: Date): Promise<number> {
    // the buyer's stock group: one hash tag, so one Redis Cluster node per pipeline
    const group = this.keys.groupOf(userId);
    const key = `${this.keys.prefix}${group}:velocity:${userId}:${Math.floor(now.getTime() / this.windowMs)}`;
    return new Promise((resolve, reject) => {
      const batch = this.batches.get(group);
      if (batch) batch.push({ key, resolve, reject });
      else {
        this.batches.set(group, [{ key, resolve, reject }]);
        setImmediate(() => this.flush(group));
      }
    });
  }

  private flush(group: string): void {
    const batch = this.batches.get(group) ?? [];
    this.batches.delete(group);
    const pipeline = this.redis.pipeline();
    for (const { key } of batch) pipeline.incr(key).pexpire(key, this.windowMs);
    pipeline.exec().then(
      (results) =>
        batch.forEach((pending, i) => {
          const [error, count] = results?.[2 * i] ?? [new Error('velocity count: no reply in the pipeline'), null];
          if (error) pending.reject(error);
          else pending.resolve(Number(count));
        }),
      (error: unknown) => batch.forEach((pending) => pending.reject(error as Error)),
    );
  }
}

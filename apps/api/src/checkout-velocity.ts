import { PipelinePerTurn, type RedisClient, type StockKeys } from '@orders/stock';

/**
 * Counts each buyer's checkout attempts per fixed window for the risk-control velocity
 * rule. The counts of one event-loop turn share a pipeline (PipelinePerTurn), like the
 * reservations, because this sits on the hot path.
 */
export class CheckoutVelocity {
  private readonly pipelines: PipelinePerTurn;

  constructor(
    redis: RedisClient,
    private readonly keys: StockKeys,
    private readonly windowMs: number,
  ) {
    this.pipelines = new PipelinePerTurn(redis);
  }

  /** Records one attempt and returns the buyer's attempts in the current window, this one included. */
  async attempt(userId: string, now: Date): Promise<number> {
    // the buyer's stock group: one hash tag, so one Redis Cluster node per pipeline
    const group = this.keys.groupOf(userId);
    const key = `${this.keys.prefix}${group}:velocity:${userId}:${Math.floor(now.getTime() / this.windowMs)}`;
    return Number(await this.pipelines.send(group, (pipeline) => pipeline.incr(key).pexpire(key, this.windowMs)));
  }
}

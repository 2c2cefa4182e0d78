import { PipelinePerTurn } from './pipeline-per-turn.js';
import { defineStockScripts, type RedisClient } from './stock-scripts.js';

export interface WindowCount {
  /** events counted in the current window, this one included */
  count: number;
  msLeft: number;
}

/**
 * Fixed-window counters in Redis (request budgets, checkout velocity): one script call
 * per count, which increments, starts the window's clock and reads what is left of it.
 * The counts of one event-loop turn share a pipeline, because they sit on the checkout's
 * hot path; `slotGroup` is the counter key's hash tag, so a pipeline stays on one
 * Redis Cluster node.
 */
export class WindowCounters {
  private readonly pipelines: PipelinePerTurn;

  constructor(redis: RedisClient) {
    defineStockScripts(redis);
    this.pipelines = new PipelinePerTurn(redis);
  }

  async count(slotGroup: string, key: string, windowMs: number): Promise<WindowCount> {
    const [count, msLeft] = await this.pipelines.send<[number, number]>(slotGroup, (pipeline) => pipeline.countInWindow(1, key, windowMs));
    return { count, msLeft };
  }
}

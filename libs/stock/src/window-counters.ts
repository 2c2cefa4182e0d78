import { PipelinePerTurn } from './pipeline-per-turn.js';
import { defineStockScripts, type RedisClient } from './stock-scripts.js';

export interface WindowCount {
  /** events counted in the current window, this one included */
  count: number;
  msLeft: number;
}

/** One fixed-window counter: its key (with the hash tag of its slot group) and its window. */
export interface WindowCounter {
  key: string;
  windowMs: number;
}

/**
 * Fixed-window counters in Redis (request budgets, checkout velocity): one script call
 * per count, which increments, starts the window's clock and reads what is left of it,
 * for one counter or several of the same slot group at once. The counts of one event-loop
 * turn share a pipeline, because they sit on the checkout's hot path; `slotGroup` is the
 * counter keys' hash tag, so a pipeline stays on one Redis Cluster node.
 */
export class WindowCounters {
  private readonly pipelines: PipelinePerTurn;

  constructor(redis: RedisClient) {
    defineStockScripts(redis);
    this.pipelines = new PipelinePerTurn(redis);
  }

  async count(slotGroup: string, key: string, windowMs: number): Promise<WindowCount> {
    const [count] = await this.countEach(slotGroup, [{ key, windowMs }]);
    return count!;
  }

  /** Counts one event on each counter (all in `slotGroup`) in one script call; the counts in the same order. */
  async countEach(slotGroup: string, counters: readonly WindowCounter[]): Promise<WindowCount[]> {
    const reply = await this.pipelines.send<number[]>(slotGroup, (pipeline) =>
      pipeline.countInWindows(counters.length, ...counters.map((counter) => counter.key), ...counters.map((counter) => counter.windowMs)),
    );
    return counters.map((_, i) => ({ count: reply[2 * i]!, msLeft: reply[2 * i + 1]! }));
  }
}

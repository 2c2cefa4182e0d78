import { PipelinePerTurn } from './pipeline-per-turn.js';
import { queueStockScript, type RedisClient } from './stock-scripts.js';

export interface WindowCount {
  /** events counted in the current window, this one included */
  count: number;
  msLeft: number;
}

/** One fixed-window counter: its slot group (the hash tag its key carries), its key and its window. */
export interface WindowCounter {
  slotGroup: string;
  key: string;
  windowMs: number;
}

/** A counter and the most events its window allows: a request budget, the checkout velocity. */
export interface CappedCounter extends WindowCounter {
  max: number;
}

/**
 * What a checkout spends besides stock: the buyer's request budget and, when risk control
 * caps them, their checkout attempts. The reservation script counts both when they are in
 * the checkout's slot group (one Redis command less a checkout), the Inventory beforehand when not.
 */
export interface CheckoutCounters {
  budget: CappedCounter;
  velocity: CappedCounter | null;
  /** The budget's count once counted (a checkout counts them once); null before. */
  readonly spent: WindowCount | null;
  /** Told the budget's count once it is counted, whatever the checkout's answer. */
  counted(budget: WindowCount): void;
}

/** The buyer's request budget for this window is spent; the checkout looked at nothing else. */
export class RequestBudgetSpent extends Error {
  override readonly name = 'RequestBudgetSpent';

  constructor(readonly msLeft: number) {
    super('The request budget of this window is spent');
  }
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
    this.pipelines = new PipelinePerTurn(redis);
  }

  async count(slotGroup: string, key: string, windowMs: number): Promise<WindowCount> {
    const [count] = await this.countEach([{ slotGroup, key, windowMs }]);
    return count!;
  }

  /**
   * Counts one event on each counter; the counts in the same order. Counters of one slot group
   * (the usual case: a buyer's budget and checkout attempts) go in one script call; a script
   * must stay on one Redis Cluster node, so counters of different groups go one call each.
   */
  async countEach(counters: readonly WindowCounter[]): Promise<WindowCount[]> {
    const slotGroup = counters[0]?.slotGroup ?? '';
    if (counters.some((counter) => counter.slotGroup !== slotGroup)) return Promise.all(counters.map(async (counter) => (await this.countEach([counter]))[0]!));
    const reply = await this.pipelines.send<number[]>(slotGroup, (pipeline) =>
      queueStockScript(
        pipeline,
        'countInWindows',
        counters.map((counter) => counter.key),
        counters.map((counter) => counter.windowMs),
      ),
    );
    return counters.map((_, i) => ({ count: reply[2 * i]!, msLeft: reply[2 * i + 1]! }));
  }
}

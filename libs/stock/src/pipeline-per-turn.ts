import type { ChainableCommander } from 'ioredis';
import { scriptSentAfter, type RedisClient } from './stock-scripts.js';

/**
 * A command sent after every batch (e.g. WAIT for replicas), whose reply decides whether
 * the batch's commands count: an error fails every caller of that batch.
 */
export interface BatchGuard {
  add(pipeline: ChainableCommander): void;
  failure(reply: unknown): Error | null;
}

/**
 * A command that ran in a batch its guard refused: it took effect where it ran, so its own
 * reply comes along with the refusal (a reservation script's request budget count, say).
 */
export class BatchRefused extends Error {
  override readonly name = 'BatchRefused';
  constructor(
    readonly refusal: Error,
    readonly reply: unknown,
  ) {
    super(refusal.message, { cause: refusal });
  }
}

interface Pending {
  add: (pipeline: ChainableCommander) => void;
  resolve: (reply: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * The commands a process asks for in one turn of the event loop go to Redis as one pipeline:
 * one socket write and one read for all of them instead of one each (a write per command was
 * the intake's largest cost in the profile). Each command, a script included, still runs
 * atomically on its own, and its reply or error goes to its own caller. Batches are kept per
 * slot group (one hash tag): a Redis Cluster pipeline must stay on one node.
 */
export class PipelinePerTurn {
  private readonly batches = new Map<string, Pending[]>();
  /**
   * Slot groups whose guarded batch is still waiting for its guard's reply. Their next batch
   * waits for it here: sent at once, it would queue in Redis behind the WAIT, which blocks the
   * connection for up to its timeout, one batch per turn, while a replica is away. A sale's
   * turns then piled up WAIT after WAIT, the checkouts behind them unanswered after
   * REDIS_COMMAND_TIMEOUT_MS and their scripts still run long after; held here, each group has
   * one WAIT at a time, and the turns that came meanwhile go together in the next batch.
   */
  private readonly guarding = new Set<string>();

  constructor(
    private readonly redis: RedisClient,
    private readonly guard?: BatchGuard,
  ) {}

  /** Queues the command `add` puts on the pipeline (one script call) and resolves with its reply. */
  send<T>(slotGroup: string, add: (pipeline: ChainableCommander) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { add, resolve: resolve as (reply: unknown) => void, reject };
      const batch = this.batches.get(slotGroup);
      if (batch) batch.push(pending);
      else {
        this.batches.set(slotGroup, [pending]);
        if (!this.guarding.has(slotGroup)) setImmediate(() => this.flush(slotGroup));
      }
    });
  }

  private flush(slotGroup: string): void {
    const batch = this.batches.get(slotGroup) ?? [];
    this.batches.delete(slotGroup);
    const pipeline = this.redis.pipeline();
    const firstCommandOf = batch.map(({ add }) => {
      const first = pipeline.length;
      add(pipeline);
      return first;
    });
    const guardAt = pipeline.length;
    if (this.guard) {
      this.guard.add(pipeline);
      this.guarding.add(slotGroup);
    }
    pipeline
      .exec()
      .then(async (results) => {
        const batchFailure = await this.guardFailure(pipeline, results?.[guardAt]);
        batch.forEach((pending, i) => {
          const [error, reply] = results?.[firstCommandOf[i]!] ?? [new Error('no reply in the pipeline'), null];
          if (error) pending.reject(error);
          else if (batchFailure) pending.reject(new BatchRefused(batchFailure, reply));
          else pending.resolve(reply);
        });
      })
      .catch((error: unknown) => batch.forEach((pending) => pending.reject(error as Error)))
      .finally(() => this.guardAnswered(slotGroup));
  }

  /** The group's guarded batch has its answer: the batch held meanwhile, if any, goes now. */
  private guardAnswered(slotGroup: string): void {
    if (!this.guard) return;
    this.guarding.delete(slotGroup);
    if (this.batches.has(slotGroup)) setImmediate(() => this.flush(slotGroup));
  }

  /** What the guard says of a batch: `guardResult` its reply in the batch's pipeline. */
  private async guardFailure(pipeline: ChainableCommander, guardResult: [Error | null, unknown] | undefined): Promise<Error | null> {
    if (!this.guard) return null;
    let [guardError, guardReply] = guardResult ?? [new Error('no reply to the batch guard'), null];
    if (scriptSentAfter(pipeline)) {
      // a script sent again after NOSCRIPT went out after the guard: a guard sent now covers it and everything before
      const again = this.redis.pipeline();
      this.guard.add(again);
      [guardError, guardReply] = (await again.exec())?.[0] ?? [new Error('no reply to the batch guard'), null];
    }
    return guardError ?? this.guard.failure(guardReply);
  }
}

import type { OrderMetrics } from '@orders/metrics';
import { deadLetterId, type OrderQueues } from '@orders/queues';
import type { RedisClient } from '@orders/stock';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { failedForGood, writeDeadLetter } from './dead-letter-writer.js';
import { RoundsEveryInterval } from './rounds-every-interval.js';

/** Failed jobs a round reads of each queue; the next round goes on from there. */
const PAGE = 500;

/** How far a failed set has been read: up to `failedAt` (ms), and those failed at that very ms. */
interface ReadUpTo {
  failedAt: number;
  seen: Set<string>;
}

/**
 * The backstop of the dead letters. A worker copies a job BullMQ failed for good into the
 * dead-letter queue as soon as it fails; a worker killed in between, or whose copy Redis
 * refused, leaves the job in its queue's failed set alone, where `npm run dlq` does not show it
 * and nothing runs it again. Every interval this copies those of the queues the process serves
 * that failed at least an interval ago (their worker's own copy, if it made one, was long made)
 * and have no dead letter of that failure (none, or one of an earlier failure: a replay that
 * stopped before removing it), counting each as its worker would have (once: writeDeadLetter).
 * Each failed set is read once per process, in the order its jobs failed, from where the last
 * round stopped: a round reads only the failures since. A replayed job leaves the failed set, so
 * its old failure is never copied again.
 */
export class DeadLetterBackstop {
  private readonly rounds: RoundsEveryInterval;
  private readonly readUpTo = new Map<string, ReadUpTo>();

  constructor(
    private readonly deps: { redis: RedisClient; queues: Queue[]; deadLetter: OrderQueues['deadLetter']; metrics: OrderMetrics; log: Logger },
    private readonly options: { intervalMs: number },
  ) {
    this.rounds = new RoundsEveryInterval(options.intervalMs, () => this.copyMissing());
  }

  start(): this {
    this.rounds.start();
    return this;
  }

  /** Copies the failed jobs that have no dead letter; returns how many. */
  async copyMissing(): Promise<number> {
    let copied = 0;
    for (const queue of this.deps.queues) {
      try {
        copied += await this.copyMissingOf(queue);
      } catch (error) {
        this.deps.log.error({ err: error, queue: queue.name }, 'could not copy failed jobs without a dead letter to the dead-letter queue; the next round tries again');
      }
    }
    return copied;
  }

  private async copyMissingOf(queue: Queue): Promise<number> {
    const { redis, deadLetter, log } = this.deps;
    const read = this.readUpTo.get(queue.name) ?? { failedAt: 0, seen: new Set<string>() };
    const failedBefore = Date.now() - this.options.intervalMs;
    const page = pairs(await redis.zrangebyscore(queue.toKey('failed'), read.failedAt, failedBefore, 'WITHSCORES', 'LIMIT', 0, PAGE + read.seen.size)).filter(
      ({ failedAt, id }) => failedAt > read.failedAt || !read.seen.has(id),
    );
    if (page.length === 0) return 0;
    const letters = await Promise.all(page.map(async ({ id }) => deadLetter.getJob(deadLetterId(queue.name, id))));
    const copied: string[] = [];
    for (const [i, { id, failedAt }] of page.entries()) {
      const letter = letters[i];
      if (letter && Date.parse(letter.data.failedAt) >= failedAt) continue;
      const job = await queue.getJob(id);
      // retried since this round read it: it runs again
      if (!job || !failedForGood(job) || (await job.getState()) !== 'failed') continue;
      await writeDeadLetter(this.deps, queue.name, job);
      copied.push(id);
    }
    const last = page.at(-1)!.failedAt;
    const atLast = page.filter(({ failedAt }) => failedAt === last).map(({ id }) => id);
    this.readUpTo.set(queue.name, { failedAt: last, seen: new Set(last === read.failedAt ? [...read.seen, ...atLast] : atLast) });
    if (copied.length > 0) {
      log.warn({ queue: queue.name, count: copied.length, jobIds: copied.slice(0, 20) }, 'copied to the dead-letter queue failed jobs that had no dead letter (their worker stopped, or Redis refused the copy, right after they failed)');
    }
    return copied.length;
  }

  async stop(): Promise<void> {
    await this.rounds.stop();
  }
}

/** ZRANGEBYSCORE … WITHSCORES: member, score, member, score… */
function pairs(reply: string[]): Array<{ id: string; failedAt: number }> {
  const result: Array<{ id: string; failedAt: number }> = [];
  for (let i = 0; i < reply.length; i += 2) result.push({ id: reply[i]!, failedAt: Number(reply[i + 1]) });
  return result;
}

import type { Job, Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { RunLock, RunUnderWay } from '@orders/stock';
import { indexLetter, lettersOfOrderKey, ordersCarriedBy, type OrderQueues } from './order-queues.js';
import { deduplicationOf } from './process-jobs.js';
import { QUEUE, type DeadLetterJob } from './queue-names.js';

type RedisClient = Redis | Cluster;

/** Asked for a dead letter that is not there (never was, or replayed or dropped since). */
export class DeadLetterNotFound extends Error {
  constructor(readonly letterId: string) {
    super(`there is no dead letter with id ${letterId}`);
    this.name = 'DeadLetterNotFound';
  }
}

/** A drop of a letter of accepted orders (persist jobs): their buyers were told the orders are taken, and only a replay writes them. */
export class LetterOfAcceptedOrders extends Error {
  constructor(readonly letterId: string, carries: string) {
    super(`dead letter ${letterId} carries accepted orders (${carries}): their buyers were told they are taken, and dropping it would lose them; fix the cause and replay it`);
    this.name = 'LetterOfAcceptedOrders';
  }
}

/** Letters read a page at a time when the ones written unindexed are indexed. */
const INDEXED_PER_PAGE = 200;

/** How long a step holds a letter unless it renews its hold: a step cut off (killed, Redis away) holds it no longer. */
const STEP_LEASE_MS = 5_000;
/** How long a step waits for another's on the same letter: a step cut off lets go within STEP_LEASE_MS. */
const STEP_WAIT_MS = 2 * STEP_LEASE_MS;

/** Another operator's replay or drop of the letter (npm run dlq, the console) ran on past the wait for it. */
export class DeadLetterBusy extends Error {
  constructor(readonly letterId: string) {
    super(`dead letter ${letterId} is being replayed or dropped by another operator, still after ${STEP_WAIT_MS / 1000} s (Redis slow to answer them): list the letters again to see what became of it`);
    this.name = 'DeadLetterBusy';
  }
}

/** What a dead letter was about, in the shop's words: the order it carried, or how many. */
export function subject(data: unknown): string {
  const orders = ordersCarriedBy(data);
  if (orders.length === 1) return `order ${orders[0]}`;
  return orders.length > 1 ? `${orders.length} orders` : '-';
}

interface LetterDeps {
  connection: RedisClient;
  /** a connection of its own: a letter's removal watches it (WATCH holds for the connection that sent it) */
  watching: RedisClient;
  queues: OrderQueues;
}

/** The shop's queue a letter's job failed in, with the job options its jobs are enqueued with. */
function originOf(queues: OrderQueues, letter: Job<DeadLetterJob>): Queue {
  const queue = queues.all.find((candidate) => candidate.name === letter.data.queue);
  if (!queue) throw new Error(`dead letter ${letter.id} names ${letter.data.queue}, which is not one of the shop's queues`);
  return queue;
}

/**
 * The dead-letter queue as an operator works it (`npm run dlq`, the api's admin routes): no
 * worker serves it, so every letter waits there until replayed or dropped.
 */
export class DeadLetters {
  constructor(
    private readonly connection: RedisClient,
    private readonly queues: OrderQueues,
  ) {}

  /** The letters, oldest first, the `offset` oldest passed over: `limit` of them, or all. */
  async list(limit?: number, offset = 0): Promise<Job<DeadLetterJob>[]> {
    return (await this.queues.deadLetter.getJobs(['waiting'], offset, limit === undefined ? -1 : offset + limit - 1, true)) as Job<DeadLetterJob>[];
  }

  async count(): Promise<number> {
    return this.queues.deadLetter.getWaitingCount();
  }

  /**
   * The letters carrying any of `orderIds` (an order's page: the order and its children), oldest
   * first, read by the index their writing keeps (lettersOfOrderKey), whatever the number of other
   * letters: reading every letter for one order read a mass failure's hundreds of megabytes. A
   * letter replayed or dropped since is passed over; one written again since carries the same orders.
   */
  async carrying(orderIds: ReadonlySet<string>): Promise<Job<DeadLetterJob>[]> {
    await this.indexLettersWrittenUnindexed();
    const { deadLetter } = this.queues;
    const written = new Map<string, number>();
    for (const orderId of orderIds) {
      const reply = await this.connection.zrange(lettersOfOrderKey(deadLetter, orderId), 0, -1, 'WITHSCORES');
      for (let i = 0; i < reply.length; i += 2) written.set(reply[i]!, Math.min(Number(reply[i + 1]), written.get(reply[i]!) ?? Infinity));
    }
    const ids = [...written].sort(([, a], [, b]) => a - b).map(([id]) => id);
    const letters = (await Promise.all(ids.map((id) => deadLetter.getJob(id)))) as Array<Job<DeadLetterJob> | undefined>;
    return letters.filter((letter): letter is Job<DeadLetterJob> => letter !== undefined && ordersCarriedBy(letter.data.data).some((orderId) => orderIds.has(orderId)));
  }

  /**
   * Letters written before their writers kept the index (an earlier build; the first read after an
   * upgrade) are indexed once, a page at a time, then marked done: writers keep it from then on.
   */
  private async indexLettersWrittenUnindexed(): Promise<void> {
    const { deadLetter } = this.queues;
    const done = deadLetter.toKey('letters-index-complete');
    if ((await this.connection.exists(done)) === 1) return;
    for (let offset = 0; ; offset += INDEXED_PER_PAGE) {
      const page = await this.list(INDEXED_PER_PAGE, offset);
      for (const letter of page) await indexLetter(deadLetter, letter.id!, letter.data);
      if (page.length < INDEXED_PER_PAGE) break;
    }
    await this.connection.set(done, new Date().toISOString());
  }

  /** Puts one letter's job back where it failed (replay below); says what it did. */
  async replay(letterId: string): Promise<string> {
    return this.watching((deps) => this.onLetter(letterId, deps, replay));
  }

  /** Drops one letter, and its failed job, whose work was done by hand (drop below); says what it did. */
  async drop(letterId: string): Promise<string> {
    return this.watching((deps) => this.onLetter(letterId, deps, drop));
  }

  /**
   * Puts every letter's job back (the oldest `limit` of them), oldest first; says what it did with
   * each, and which it could not replay and why (a letter of a queue this build does not have): one
   * such letter, the oldest, must not hold back every replay behind it, nor hide those done before.
   */
  async replayAll(limit?: number): Promise<{ replayed: string[]; failed: Array<{ letterId: string; reason: string }> }> {
    return this.watching(async (deps) => {
      const replayed: string[] = [];
      const failed: Array<{ letterId: string; reason: string }> = [];
      for (const letter of await this.list(limit)) {
        try {
          replayed.push(await this.onLetter(letter.id!, deps, replay));
        } catch (error) {
          // replayed or dropped meanwhile by another operator: nothing left to do for it
          if (!(error instanceof DeadLetterNotFound)) failed.push({ letterId: letter.id!, reason: (error as Error).message });
        }
      }
      return { replayed, failed };
    });
  }

  /**
   * `work` on the letter, read once this step has it to itself. A step reads the letter and its job,
   * then changes them in several commands: two at once (npm run dlq and the console) each acted on
   * what the other was undoing, and both were told they were done (a drop removed the job a replay
   * had just retried in place; a replay added again the job a drop had just removed, and the dropped
   * work ran). One at a time, the second finds the letter gone, or telling of a new failure; the
   * hold of a step cut off (killed, Redis away) lapses within STEP_LEASE_MS.
   */
  private async onLetter(letterId: string, deps: LetterDeps, work: (letter: Job<DeadLetterJob>, deps: LetterDeps) => Promise<string>): Promise<string> {
    const step = new RunLock(deps.watching, deps.queues.deadLetter.toKey(`step:${letterId}`), `replay or drop of dead letter ${letterId}`, STEP_LEASE_MS);
    try {
      return await step.whileHeld(STEP_WAIT_MS, async () => {
        const letter = (await this.queues.deadLetter.getJob(letterId)) as Job<DeadLetterJob> | undefined;
        if (!letter || !(await letter.isWaiting())) throw new DeadLetterNotFound(letterId);
        return work(letter, deps);
      });
    } catch (error) {
      if (error instanceof RunUnderWay) throw new DeadLetterBusy(letterId);
      throw error;
    }
  }

  /** `work` with a connection of its own for the letters' removal (WATCH), closed after. */
  private async watching<T>(work: (deps: LetterDeps) => Promise<T>): Promise<T> {
    const watching = this.connection.duplicate();
    try {
      // a connection that does not queue commands while it connects (an operator command's) is connected first
      if (watching.status === 'wait') await watching.connect();
      return await work({ connection: this.connection, watching, queues: this.queues });
    } finally {
      watching.disconnect();
    }
  }
}

/**
 * How long a replay's putting its job back is remembered, in case its letter outlives it: the
 * replay stopped before removing the letter, and the letter waits until replayed again.
 */
const PUT_BACK_REMEMBERED_MS = 365 * 24 * 3600 * 1000;

/**
 * Puts a dead letter's job back where it failed, then removes the letter. A job that runs one at
 * a time per order goes back as it is enqueued (putBackOneAtATime). Any other original job,
 * kept in its queue's failed set, is retried in place with fresh attempts, so it keeps its id
 * and a second replay of the same order cannot queue it twice. It keeps its count of starts:
 * its next start is a re-run, not the end of a wait in the queue (BullMQ keeps the time it was
 * first enqueued, so the job metrics would read its days in the failed set as queue lag), and a
 * processor that asks whether an earlier run may have reached an external system (the
 * warehouse hand-over) is told it may have. Once BullMQ has dropped the original, the job is
 * added again under its old id (BullMQ refuses integer ids, so an id that it generated itself
 * is left for it to generate anew).
 *
 * The job goes back before its letter goes, so a replay that stops in between (killed, Redis
 * unreachable) loses no job: it leaves the letter, and replaying that letter again adds nothing
 * for the failure already put back. Its putting back is remembered under the failure, in the
 * origin queue's deduplication key of it: set after a retry in place, and by BullMQ itself in
 * the same step as an add, so a job that has run and left Redis meanwhile is not added twice
 * (one stopped between the retry and its remembering adds it again: every processor is idempotent,
 * where a job never put back would be lost).
 */
async function replay(letter: Job<DeadLetterJob>, deps: LetterDeps): Promise<string> {
  const { queue: origin, name, jobId, data } = letter.data;
  if (origin === QUEUE.deadLetter) throw new Error(`dead letter ${letter.id} names the dead-letter queue itself as its origin`);
  const queue = originOf(deps.queues, letter);
  const failure = `replay-of-${letter.id}-failed-at-${Date.parse(letter.data.failedAt)}`;
  const putBack = queue.toKey(`de:${failure}`);
  const state = jobId === undefined ? 'unknown' : await queue.getJobState(jobId);
  const deduplication = deduplicationOf(name, data);
  let how: string;
  if (deduplication && (state === 'failed' || state === 'unknown' || state === 'completed')) {
    how = await putBackOneAtATime(queue, letter.data, { deduplication, putBack, connection: deps.connection, originalFailed: state === 'failed' });
  } else if (state === 'failed') {
    const original = await queue.getJob(jobId!);
    await original!.retry('failed', { resetAttemptsMade: true });
    // remembered once back, never before: a replay stopped in between must not read as one that put it back
    await deps.connection.set(putBack, jobId!, 'PX', PUT_BACK_REMEMBERED_MS);
    how = `retried job ${jobId} in place`;
  } else if ((state === 'unknown' || state === 'completed') && (await queue.getDeduplicationJobId(failure)) !== null) {
    how = `an earlier replay of this letter put job ${jobId} back and it has run since; nothing added`;
  } else if (state === 'unknown' || state === 'completed') {
    const keepsId = jobId !== undefined && `${Number.parseInt(jobId, 10)}` !== jobId;
    const added = await queue.add(name, data, { ...(keepsId ? { jobId } : {}), deduplication: { id: failure, ttl: PUT_BACK_REMEMBERED_MS } });
    how = `added again as job ${added.id}`;
  } else {
    how = `job ${jobId} is already ${state}; nothing added`;
  }
  const removed = await removeLetterUnlessFailedAgain(deps, letter, putBack);
  return `${letter.id} -> ${origin}/${name} (${subject(data)}): ${how}${removed ? '' : '; it has failed again since, and its letter tells of that failure'}`;
}

/**
 * Puts back a job that runs one at a time per order (a refund, a warehouse update: deduplicated
 * by the order, not named by it) as enqueuing it does: added again with the order's deduplication
 * rather than retried in place. BullMQ let the deduplication go when the job failed, and a retry
 * in place takes none again: it would run beside the order's job waiting or running now, or one
 * enqueued while it waits (two refunds of the order at once; two warehouse updates landing in
 * either order, the warehouse left shipping to the old address). Added, it is nothing while a job
 * of the order waits (that one reads the order when it runs) and runs after one running
 * (keepLastIfActive). Its putting back is remembered under the failure, and the original then
 * leaves the failed set: the dead-letter backstop would otherwise copy its failure again.
 */
async function putBackOneAtATime(
  queue: Queue,
  { name, jobId, data }: DeadLetterJob,
  { deduplication, putBack, connection, originalFailed }: { deduplication: { id: string; keepLastIfActive?: boolean }; putBack: string; connection: RedisClient; originalFailed: boolean },
): Promise<string> {
  const earlier = await connection.get(putBack);
  let how: string;
  if (earlier !== null) {
    how = `an earlier replay of this letter put it back as job ${earlier}; nothing added`;
  } else {
    const live = await queue.getDeduplicationJobId(deduplication.id);
    const added = await queue.add(name, data, { deduplication });
    await connection.set(putBack, added.id!, 'PX', PUT_BACK_REMEMBERED_MS);
    if (added.id !== live) {
      how = `added again as job ${added.id}`;
    } else {
      const state = await queue.getJobState(added.id);
      how =
        state === 'active' && deduplication.keepLastIfActive
          ? `job ${added.id} of the order is running; the job runs again after it`
          : `job ${added.id} of the order is ${state} and does this letter's work; nothing added beside it`;
    }
  }
  if (originalFailed) await queue.remove(jobId!);
  return how;
}

/**
 * Drops a dead letter whose work an operator did by hand, or that is no longer wanted, with its
 * failed job: left in its queue's failed set, a worker's dead-letter backstop would copy it into
 * a letter again when it starts. The job goes first, so a drop stopped in between leaves the
 * letter, to drop again. A letter of accepted orders (persist jobs) is refused: those buyers were
 * told their orders were taken, and only a replay writes them.
 */
async function drop(letter: Job<DeadLetterJob>, deps: LetterDeps): Promise<string> {
  const { queue: origin, name, jobId, data } = letter.data;
  if (origin === QUEUE.orders) throw new LetterOfAcceptedOrders(letter.id!, subject(data));
  const queue = originOf(deps.queues, letter);
  const failedJobRemoved = jobId !== undefined && (await queue.getJobState(jobId)) === 'failed';
  if (failedJobRemoved) await queue.remove(jobId);
  const removed = await removeLetterUnlessFailedAgain(deps, letter);
  if (!removed) return `${letter.id} (${origin}/${name}, ${subject(data)}): its job failed again since, and its letter, which tells of that failure, stays`;
  return `${letter.id} (${origin}/${name}, ${subject(data)})${failedJobRemoved ? `, and failed job ${jobId} of ${origin}` : ''}`;
}

/**
 * Removes a dead letter replayed or dropped, with what remembers a replay's putting its job back,
 * unless it tells of a later failure by now: the job failed again as soon as it was back, and the
 * worker's writer put that failure in the letter (writeDeadLetter), which must stay. One
 * transaction on its own connection (WATCH holds for the connection that sent it): a writer
 * changing the letter after it was read makes it end without removing anything, and it reads the
 * letter again.
 */
async function removeLetterUnlessFailedAgain(
  { watching, queues: { deadLetter } }: LetterDeps,
  letter: Job<DeadLetterJob>,
  putBack?: string,
): Promise<boolean> {
  const remembered = putBack === undefined ? [] : [putBack];
  const key = deadLetter.toKey(letter.id!);
  for (;;) {
    await watching.watch(key);
    const data = await watching.hget(key, 'data');
    if (data === null || (JSON.parse(data) as DeadLetterJob).failedAt !== letter.data.failedAt) {
      await watching.unwatch();
      if (remembered.length > 0) await watching.del(...remembered);
      return data === null;
    }
    // a waiting job of a queue no worker serves: its entry in the wait list, its hash and its logs
    const removed = await watching.multi().lrem(deadLetter.toKey('wait'), 0, letter.id!).del(key, `${key}:logs`, ...remembered).exec();
    if (removed !== null) return true;
  }
}


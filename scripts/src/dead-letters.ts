import { loadConfig, type Config } from '@orders/config';
import { QUEUE, createOrderQueues, deduplicationOf, defaultJobOptions, ordersCarriedBy, type DeadLetterJob } from '@orders/queues';
import { connectRedis, type RedisClient } from '@orders/stock';
import { Queue, type Job } from 'bullmq';
import { checkServices } from './preflight.js';

/** What `npm run dlq` is asked to do (dlq.ts reads it from the command line). */
export type DeadLetterCommand = { command: 'list' | 'replay-all' } | { command: 'replay' | 'drop'; id: string };

/** What a dead letter was about, in the shop's words: the order it carried, or how many. */
function subject(data: unknown): string {
  const orders = ordersCarriedBy(data);
  if (orders.length === 1) return `order ${orders[0]}`;
  return orders.length > 1 ? `${orders.length} orders` : '-';
}

function printDeadLetters(letters: Job<DeadLetterJob>[]): void {
  if (letters.length === 0) {
    console.log('The dead-letter queue is empty.');
    return;
  }
  console.log(`${letters.length} dead letter${letters.length === 1 ? '' : 's'}, oldest first:`);
  const rows = letters.map((letter) => [
    letter.id ?? '?',
    `${letter.data.queue}/${letter.data.name}`,
    subject(letter.data.data),
    String(letter.data.attemptsMade),
    letter.data.failedAt,
    letter.data.failedReason,
  ]);
  const header = ['ID', 'FROM', 'CARRIES', 'ATTEMPTS', 'FAILED AT', 'REASON'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd());
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
async function replay(letter: Job<DeadLetterJob>, deps: { connection: RedisClient; watching: RedisClient; deadLetter: Queue<DeadLetterJob> }, config: Config): Promise<string> {
  const { queue: origin, name, jobId, data } = letter.data;
  if (origin === QUEUE.deadLetter) throw new Error(`dead letter ${letter.id} names the dead-letter queue itself as its origin`);
  const queue = new Queue(origin, {
    connection: deps.connection,
    prefix: config.QUEUE_PREFIX,
    defaultJobOptions: defaultJobOptions({ prefix: config.QUEUE_PREFIX, attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS }),
  });
  const failure = `replay-of-${letter.id}-failed-at-${Date.parse(letter.data.failedAt)}`;
  const putBack = queue.toKey(`de:${failure}`);
  try {
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
  } finally {
    await queue.close();
  }
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
async function drop(letter: Job<DeadLetterJob>, deps: { connection: RedisClient; watching: RedisClient; deadLetter: Queue<DeadLetterJob> }, config: Config): Promise<string> {
  const { queue: origin, name, jobId, data } = letter.data;
  if (origin === QUEUE.orders) {
    throw new Error(`dead letter ${letter.id} carries accepted orders (${subject(data)}): their buyers were told they are taken, and dropping it would lose them; fix the cause and replay it`);
  }
  const queue = new Queue(origin, { connection: deps.connection, prefix: config.QUEUE_PREFIX });
  try {
    const failedJobRemoved = jobId !== undefined && (await queue.getJobState(jobId)) === 'failed';
    if (failedJobRemoved) await queue.remove(jobId);
    const removed = await removeLetterUnlessFailedAgain(deps, letter);
    if (!removed) return `${letter.id} (${origin}/${name}, ${subject(data)}): its job failed again since, and its letter, which tells of that failure, stays`;
    return `${letter.id} (${origin}/${name}, ${subject(data)})${failedJobRemoved ? `, and failed job ${jobId} of ${origin}` : ''}`;
  } finally {
    await queue.close();
  }
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
  { watching, deadLetter }: { watching: RedisClient; deadLetter: Queue<DeadLetterJob> },
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

/** Lists the dead letters, replays one or all, or drops one. */
export async function runDeadLetterCommand(asked: DeadLetterCommand): Promise<void> {
  const config = loadConfig();
  await checkServices(config, { redis: true });
  // an operator command fails at once when Redis is away rather than waiting for it
  const connection = connectRedis(config, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
  await connection.connect();
  // the replay's removal of a letter watches it, on a connection of its own
  const watching = connection.duplicate();
  await watching.connect();
  const queues = createOrderQueues(connection, { prefix: config.QUEUE_PREFIX, attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  try {
    // no worker serves the dead-letter queue: every letter waits there until replayed
    const letters = (await queues.deadLetter.getJobs(['waiting'], 0, -1, true)) as Job<DeadLetterJob>[];
    if (asked.command === 'list') {
      printDeadLetters(letters);
    } else if (asked.command === 'replay' || asked.command === 'drop') {
      const letter = letters.find((candidate) => candidate.id === asked.id);
      if (!letter) throw new Error(`there is no dead letter with id ${asked.id} (npm run dlq -- list shows them)`);
      const deps = { connection, watching, deadLetter: queues.deadLetter };
      console.log(asked.command === 'replay' ? `replayed ${await replay(letter, deps, config)}` : `dropped ${await drop(letter, deps, config)}`);
    } else {
      for (const letter of letters) console.log(`replayed ${await replay(letter, { connection, watching, deadLetter: queues.deadLetter }, config)}`);
      console.log(`${letters.length} dead letter${letters.length === 1 ? '' : 's'} replayed.`);
    }
  } finally {
    await queues.close();
    watching.disconnect();
    connection.disconnect();
  }
}

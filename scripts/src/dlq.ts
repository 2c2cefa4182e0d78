import { loadConfig, type Config } from '@orders/config';
import { QUEUE, createOrderQueues, defaultJobOptions, ordersCarriedBy, type DeadLetterJob } from '@orders/queues';
import { connectRedis, type RedisClient } from '@orders/stock';
import { Queue, type Job } from 'bullmq';
import { checkServices } from './preflight.js';
import { UsageError, runCommand } from './run-command.js';

const USAGE = `usage: npm run dlq -- list | replay <id> | replay-all
  list          the dead letters, oldest first: where each failed, the orders it carries and why
  replay <id>   puts one dead letter's job back where it failed (list shows the ids)
  replay-all    puts every dead letter's job back where it failed`;

type DeadLetterCommand = { command: 'list' | 'replay-all' } | { command: 'replay'; id: string };

function deadLetterCommand(args: readonly string[]): DeadLetterCommand {
  const [command, ...rest] = args;
  if (command === 'replay') {
    if (rest.length === 0) throw new UsageError('replay needs the id of a dead letter (npm run dlq -- list shows them)');
    if (rest.length > 1) throw new UsageError(`replay takes one id, not ${rest.join(' ')}`);
    return { command, id: rest[0]! };
  }
  if (command !== 'list' && command !== 'replay-all') throw new UsageError(command === undefined ? 'a command is needed' : `unknown command: ${command}`);
  if (rest.length > 0) throw new UsageError(`${command} takes no arguments, not ${rest.join(' ')}`);
  return { command };
}

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
 * Puts a dead letter's job back where it failed. The original job, kept in its queue's
 * failed set, is retried in place with fresh attempts, so it keeps its id and a second
 * replay of the same order cannot queue it twice. It keeps its count of starts: its next
 * start is a re-run, not the end of a wait in the queue (BullMQ keeps the time it was first
 * enqueued, so the job metrics would read its days in the failed set as queue lag), and a
 * processor that asks whether an earlier run may have reached an external system (the
 * warehouse hand-over) is told it may have. Once BullMQ has dropped the original,
 * the job is added again under its old id (BullMQ refuses integer ids, so an id that it
 * generated itself is left for it to generate anew).
 */
async function replay(letter: Job<DeadLetterJob>, connection: RedisClient, config: Config): Promise<string> {
  const { queue: origin, name, jobId, data } = letter.data;
  if (origin === QUEUE.deadLetter) throw new Error(`dead letter ${letter.id} names the dead-letter queue itself as its origin`);
  const queue = new Queue(origin, {
    connection,
    prefix: config.QUEUE_PREFIX,
    defaultJobOptions: defaultJobOptions({ prefix: config.QUEUE_PREFIX, attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS }),
  });
  try {
    const state = jobId === undefined ? 'unknown' : await queue.getJobState(jobId);
    let how: string;
    if (state === 'failed') {
      const original = await queue.getJob(jobId!);
      await original!.retry('failed', { resetAttemptsMade: true });
      how = `retried job ${jobId} in place`;
    } else if (state === 'unknown' || state === 'completed') {
      const keepsId = jobId !== undefined && `${Number.parseInt(jobId, 10)}` !== jobId;
      const added = await queue.add(name, data, keepsId ? { jobId } : {});
      how = `added again as job ${added.id}`;
    } else {
      how = `job ${jobId} is already ${state}; nothing added`;
    }
    await letter.remove();
    return `${letter.id} -> ${origin}/${name} (${subject(data)}): ${how}`;
  } finally {
    await queue.close();
  }
}

/** npm run dlq -- list | replay <id> | replay-all */
runCommand({ usage: USAGE, parse: deadLetterCommand }, async (asked) => {
  const config = loadConfig();
  await checkServices(config, { redis: true });
  // an operator command fails at once when Redis is away rather than waiting for it
  const connection = connectRedis(config, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
  await connection.connect();
  const queues = createOrderQueues(connection, { prefix: config.QUEUE_PREFIX, attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  try {
    // no worker serves the dead-letter queue: every letter waits there until replayed
    const letters = (await queues.deadLetter.getJobs(['waiting'], 0, -1, true)) as Job<DeadLetterJob>[];
    if (asked.command === 'list') {
      printDeadLetters(letters);
    } else if (asked.command === 'replay') {
      const letter = letters.find((candidate) => candidate.id === asked.id);
      if (!letter) throw new Error(`there is no dead letter with id ${asked.id} (npm run dlq -- list shows them)`);
      console.log(`replayed ${await replay(letter, connection, config)}`);
    } else {
      for (const letter of letters) console.log(`replayed ${await replay(letter, connection, config)}`);
      console.log(`${letters.length} dead letter${letters.length === 1 ? '' : 's'} replayed.`);
    }
  } finally {
    await queues.close();
    connection.disconnect();
  }
});

import { loadConfig } from '@orders/config';
import { DeadLetterNotFound, DeadLetters, createOrderQueues, subject, type DeadLetterJob } from '@orders/queues';
import { connectRedis } from '@orders/stock';
import type { Job } from 'bullmq';
import { checkServices } from './preflight.js';

/** What `npm run dlq` is asked to do (dlq.ts reads it from the command line). */
export type DeadLetterCommand = { command: 'list' | 'replay-all' } | { command: 'replay' | 'drop'; id: string };

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

/** An unknown letter's error, pointing the operator at the list. */
function withListHint(error: unknown): never {
  if (error instanceof DeadLetterNotFound) throw new Error(`${error.message} (npm run dlq -- list shows them)`);
  throw error;
}

/** Lists the dead letters, replays one or all, or drops one. */
export async function runDeadLetterCommand(asked: DeadLetterCommand): Promise<void> {
  const config = loadConfig();
  await checkServices(config, { redis: true });
  // an operator command fails at once when Redis is away rather than waiting for it
  const connection = connectRedis(config, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
  await connection.connect();
  const queues = createOrderQueues(connection, { prefix: config.QUEUE_PREFIX, attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  const letters = new DeadLetters(connection, queues);
  try {
    if (asked.command === 'list') {
      printDeadLetters(await letters.list());
    } else if (asked.command === 'replay') {
      console.log(`replayed ${await letters.replay(asked.id).catch(withListHint)}`);
    } else if (asked.command === 'drop') {
      console.log(`dropped ${await letters.drop(asked.id).catch(withListHint)}`);
    } else {
      const { replayed, failed } = await letters.replayAll();
      for (const done of replayed) console.log(`replayed ${done}`);
      console.log(`${replayed.length} dead letter${replayed.length === 1 ? '' : 's'} replayed.`);
      for (const { letterId, reason } of failed) console.log(`NOT REPLAYED ${letterId}: ${reason}`);
      if (failed.length > 0) throw new Error(`${failed.length} dead letter${failed.length === 1 ? '' : 's'} could not be replayed (above); they wait in the dead-letter queue`);
    }
  } finally {
    await queues.close();
    connection.disconnect();
  }
}

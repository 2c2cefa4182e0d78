import { loadConfig } from '@orders/config';
import { DeadLetterNotFound, DeadLetters, createOrderQueues, subject, type DeadLetterJob } from '@orders/queues';
import type { Job } from 'bullmq';
import { createInterface } from 'node:readline/promises';
import { checkServices, connectCommandRedis, redisLocation, unansweredByRedis } from './preflight.js';

/** What `npm run dlq` is asked to do (dlq.ts reads it from the command line). */
export type DeadLetterCommand =
  | { command: 'list' }
  | { command: 'replay'; id: string }
  /** yes: --yes, done without asking */
  | { command: 'replay-all'; yes: boolean }
  | { command: 'drop'; id: string; yes: boolean };

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

/**
 * Whether the operator wants done what `question` asks, which no one can undo: --yes says so;
 * at a terminal they are asked; without one (a script, a pipe) nobody is there to ask, and it
 * is refused rather than done unasked.
 */
async function confirmed(question: string, yes: boolean, withYes: string): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) throw new Error(`${question} No terminal to ask at, so nothing was done: run it with --yes (${withYes})`);
  const terminal = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await terminal.question(`${question} [y/N] `)).trim());
  } finally {
    terminal.close();
  }
}

/** Lists the dead letters, replays one or all, or drops one; exit code 1 when the operator answered no. */
export async function runDeadLetterCommand(asked: DeadLetterCommand): Promise<number> {
  const config = loadConfig();
  // a wrong prefix finds no dead letters, which reads as none waiting
  console.log(`Redis at ${redisLocation(config)}, queue prefix ${config.QUEUE_PREFIX}`);
  await checkServices(config, { redis: true });
  const connection = await connectCommandRedis(config);
  const queues = createOrderQueues(connection, { prefix: config.QUEUE_PREFIX, attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  const letters = new DeadLetters(connection, queues);
  try {
    if (asked.command === 'list') {
      printDeadLetters(await letters.list());
    } else if (asked.command === 'replay') {
      console.log(`replayed ${await letters.replay(asked.id).catch(withListHint)}`);
    } else if (asked.command === 'drop') {
      const letter = (await queues.deadLetter.getJob(asked.id)) as Job<DeadLetterJob> | undefined;
      if (letter === undefined) withListHint(new DeadLetterNotFound(asked.id));
      const question = `Drop 1 dead letter, ${asked.id} (${letter.data.queue}/${letter.data.name}, ${subject(letter.data.data)}), and its failed job?`;
      if (!(await confirmed(question, asked.yes, `npm run dlq -- drop ${asked.id} --yes`))) {
        console.log('Nothing dropped.');
        return 1;
      }
      console.log(`dropped ${await letters.drop(asked.id).catch(withListHint)}`);
    } else {
      const waiting = await letters.count();
      if (waiting > 0 && !(await confirmed(`Replay all ${waiting} dead letter${waiting === 1 ? '' : 's'}?`, asked.yes, 'npm run dlq -- replay-all --yes'))) {
        console.log('Nothing replayed.');
        return 1;
      }
      const { replayed, failed } = await letters.replayAll();
      for (const done of replayed) console.log(`replayed ${done}`);
      console.log(`${replayed.length} dead letter${replayed.length === 1 ? '' : 's'} replayed.`);
      for (const { letterId, reason } of failed) console.log(`NOT REPLAYED ${letterId}: ${reason}`);
      if (failed.length > 0) throw new Error(`${failed.length} dead letter${failed.length === 1 ? '' : 's'} could not be replayed (above); they wait in the dead-letter queue`);
    }
    return 0;
  } catch (error) {
    throw unansweredByRedis(config, error);
  } finally {
    await queues.close();
    connection.disconnect();
  }
}

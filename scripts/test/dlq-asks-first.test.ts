import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createOrderQueues, type DeadLetterJob, type OrderQueues } from '@orders/queues';
import { createTestEnv, runOperatorCommand, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('npm run dlq -- replay-all and drop ask first: at a terminal how many letters, and without one they want --yes', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  let env: TestEnv;
  let queues: OrderQueues;

  beforeAll(async () => {
    env = await createTestEnv('dlq_asks_first');
    queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: env.config.JOB_ATTEMPTS, backoffMs: env.config.JOB_BACKOFF_MS });
  });
  afterAll(async () => {
    await queues?.close();
    await env?.cleanup();
  });

  const letter = (orderId: string): DeadLetterJob => ({
    queue: 'timers',
    name: 'auto-confirm',
    jobId: `auto-confirm-${orderId}`,
    data: { orderId, userId: 'u1' },
    failedReason: 'boom',
    attemptsMade: 3,
    failedAt: new Date().toISOString(),
  });
  const waiting = async () => (await queues.deadLetter.getJobs(['waiting'])).map((job) => job.id).sort();

  /** The command at a terminal (script(1) gives it one), the operator typing `typed`. */
  function atTerminal(args: string, typed: string): Promise<{ exitCode: number; output: string }> {
    return new Promise((resolve) => {
      const child = execFile('script', ['-qec', `node scripts/dist/dlq.js ${args}`, '/dev/null'], { cwd: root, env: { ...process.env, ...env.env } }, (error, stdout) =>
        resolve({ exitCode: (error as { code?: number } | null)?.code ?? 0, output: stdout }),
      );
      child.stdin!.end(typed);
    });
  }

  it('without a terminal, replay-all and drop do nothing without --yes, and say how to run them; with it they run', { timeout: 60_000 }, async () => {
    await queues.deadLetter.add('dead-letter', letter('ORDER-A'), { jobId: 'timers-A' });
    await queues.deadLetter.add('dead-letter', letter('ORDER-B'), { jobId: 'timers-B' });

    const [replayAll, drop] = await Promise.all([runOperatorCommand('dlq', ['replay-all'], env.env), runOperatorCommand('dlq', ['drop', 'timers-A'], env.env)]);
    expect([replayAll.exitCode, replayAll.stderr]).toEqual([1, 'Failed: Replay all 2 dead letters? No terminal to ask at, so nothing was done: run it with --yes (npm run dlq -- replay-all --yes)\n']);
    expect([drop.exitCode, drop.stderr]).toEqual([
      1,
      'Failed: Drop 1 dead letter, timers-A (timers/auto-confirm, order ORDER-A), and its failed job? No terminal to ask at, so nothing was done: run it with --yes (npm run dlq -- drop timers-A --yes)\n',
    ]);
    expect(await waiting()).toEqual(['timers-A', 'timers-B']);
    expect(await queues.timers.getJob('auto-confirm-ORDER-A')).toBeUndefined();

    const dropped = await runOperatorCommand('dlq', ['drop', 'timers-A', '--yes'], env.env);
    expect([dropped.exitCode, dropped.stdout]).toEqual([0, expect.stringContaining('dropped timers-A')]);
    const replayed = await runOperatorCommand('dlq', ['replay-all', '--yes'], env.env);
    expect([replayed.exitCode, replayed.stdout]).toEqual([0, expect.stringContaining('1 dead letter replayed.')]);
    expect(await waiting()).toEqual([]);
  });

  it('at a terminal, replay-all asks how many and does nothing unless told yes', { timeout: 60_000 }, async () => {
    await queues.deadLetter.add('dead-letter', letter('ORDER-C'), { jobId: 'timers-C' });
    await queues.deadLetter.add('dead-letter', letter('ORDER-D'), { jobId: 'timers-D' });
    await queues.deadLetter.add('dead-letter', letter('ORDER-E'), { jobId: 'timers-E' });

    const declined = await atTerminal('replay-all', 'n\n');
    expect([declined.exitCode, declined.output]).toEqual([1, expect.stringContaining('Replay all 3 dead letters? [y/N] ')]);
    expect(declined.output).toContain('Nothing replayed.');
    expect(await waiting()).toEqual(['timers-C', 'timers-D', 'timers-E']);

    const dropDeclined = await atTerminal('drop timers-C', '\n');
    expect([dropDeclined.exitCode, dropDeclined.output]).toEqual([1, expect.stringContaining('Drop 1 dead letter, timers-C (timers/auto-confirm, order ORDER-C), and its failed job? [y/N]')]);
    expect(await waiting()).toEqual(['timers-C', 'timers-D', 'timers-E']);

    const agreed = await atTerminal('replay-all', 'y\n');
    expect([agreed.exitCode, agreed.output]).toEqual([0, expect.stringContaining('3 dead letters replayed.')]);
    expect(await waiting()).toEqual([]);
  });
});

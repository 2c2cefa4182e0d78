import { createOrderQueues, type DeadLetterJob, type OrderQueues } from '@orders/queues';
import { createTestEnv, runOperatorCommand, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('npm run dlq -- replay-all: one letter it cannot replay', () => {
  let env: TestEnv;
  let queues: OrderQueues;

  beforeAll(async () => {
    env = await createTestEnv('dlq_replay_all');
    queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: env.config.JOB_ATTEMPTS, backoffMs: env.config.JOB_BACKOFF_MS });
  });
  afterAll(async () => {
    await queues?.close();
    await env?.cleanup();
  });

  const letter = (queue: string, orderId: string): DeadLetterJob => ({
    queue,
    name: 'auto-confirm',
    jobId: `auto-confirm-${orderId}`,
    data: { orderId, userId: 'u1' },
    failedReason: 'boom',
    attemptsMade: 3,
    failedAt: new Date().toISOString(),
  });

  it('says which letters it replayed before the one it could not, and goes on with the rest', { timeout: 60_000 }, async () => {
    await queues.deadLetter.add('dead-letter', letter('timers', 'ORDER-A'), { jobId: 'timers-A' });
    // a letter written by an older build, naming a queue this one no longer has
    await queues.deadLetter.add('dead-letter', letter('old-timers', 'ORDER-B'), { jobId: 'old-timers-B' });
    await queues.deadLetter.add('dead-letter', letter('timers', 'ORDER-C'), { jobId: 'timers-C' });

    const answer = await runOperatorCommand('dlq', ['replay-all', '--yes'], env.env);
    // A was put back and its letter removed
    expect(await queues.timers.getJob('auto-confirm-ORDER-A')).toBeDefined();
    expect(await queues.deadLetter.getJob('timers-A')).toBeUndefined();
    expect(answer.exitCode).not.toBe(0);
    expect(answer.output).toContain('old-timers');
    // the operator is told A was replayed
    expect(answer.output).toContain('replayed timers-A');
    // and C, behind the bad letter, is replayed too
    expect(await queues.timers.getJob('auto-confirm-ORDER-C')).toBeDefined();
  });
});

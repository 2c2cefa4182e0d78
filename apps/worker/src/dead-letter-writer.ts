import type { OrderMetrics } from '@orders/metrics';
import { deadLetterId, deadLetterOf, moveToDeadLetter, type OrderQueues } from '@orders/queues';
import type { RedisClient } from '@orders/stock';
import type { Job } from 'bullmq';

/** How long a dead letter's count is remembered: as long as BullMQ keeps the failed job (removeOnFail), the only source of a later copy. */
const COUNTED_FOR_MS = 7 * 24 * 3600 * 1000;

/** A job BullMQ failed for good, with the time it failed at. */
export type FailedJob = Job & { finishedOn: number };

/**
 * Whether BullMQ moved the job to its failed set, never to run again by itself, rather than to
 * the delayed set for another attempt: it sets `finishedOn` then, whatever ended the job. Used-up
 * attempts are not the only end: a job that workers holding it crashed on more than
 * `maxStalledCount` times is failed on its next start ("job stalled more than allowable limit",
 * an UnrecoverableError) with attempts left, and so is one whose processor throws an
 * UnrecoverableError.
 */
export function failedForGood(job: Job): job is FailedJob {
  return job.finishedOn !== undefined;
}

/**
 * Writes a failed job's dead letter and counts it in job_failures_total{final="true"}, once
 * whoever writes it: the worker it failed on, as it fails, or the backstop a round later (that
 * worker was killed first, or Redis refused its copy), on any replica, in any order, at once.
 * The letter's id makes a second copy add nothing, but BullMQ does not say which copy was the
 * first; so the count is claimed apart, under the letter's id and the time its job failed (a
 * job replayed and failed again is a new letter). Claimed before the copy: a writer that dies
 * or is refused after it has counted a letter the backstop writes later, uncounted again.
 *
 * The letter under that id may tell of an earlier failure of the job: it was replayed and failed
 * again before its replay removed that letter (`npm run dlq` puts the job back first, then removes
 * the letter while it still tells of the failure replayed), or the replay stopped in between. This
 * failure takes its place at once, so the failed job is never without a letter.
 */
export async function writeDeadLetter(deps: { redis: RedisClient; deadLetter: OrderQueues['deadLetter']; metrics: OrderMetrics }, queueName: string, job: FailedJob): Promise<void> {
  const { redis, deadLetter, metrics } = deps;
  const letterId = deadLetterId(queueName, job.id ?? job.name);
  const counted = deadLetter.toKey(`counted:${letterId}:${job.finishedOn}`);
  if ((await redis.set(counted, '1', 'PX', COUNTED_FOR_MS, 'NX')) === 'OK') metrics.jobFailures.inc({ queue: queueName, name: job.name, final: 'true' });
  // each turn again follows a replay's removal of the letter between two steps of this one
  for (;;) {
    await moveToDeadLetter(deadLetter, queueName, job);
    const letter = await deadLetter.getJob(letterId);
    if (!letter) {
      // a replay of the earlier failure removed it: this one needs its letter; one of this failure: the job runs again
      if ((await job.getState()) === 'failed') continue;
      return;
    }
    if (Date.parse(letter.data.failedAt) >= job.finishedOn) return;
    try {
      await letter.updateData(deadLetterOf(queueName, job));
      return;
    } catch (error) {
      if (await deadLetter.getJob(letterId)) throw error;
    }
  }
}

import type { OrderMetrics } from '@orders/metrics';
import { deadLetterId, moveToDeadLetter, type OrderQueues } from '@orders/queues';
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
 */
export async function writeDeadLetter(deps: { redis: RedisClient; deadLetter: OrderQueues['deadLetter']; metrics: OrderMetrics }, queueName: string, job: FailedJob): Promise<void> {
  const { redis, deadLetter, metrics } = deps;
  const counted = deadLetter.toKey(`counted:${deadLetterId(queueName, job.id ?? job.name)}:${job.finishedOn}`);
  if ((await redis.set(counted, '1', 'PX', COUNTED_FOR_MS, 'NX')) === 'OK') metrics.jobFailures.inc({ queue: queueName, name: job.name, final: 'true' });
  await moveToDeadLetter(deadLetter, queueName, job);
}

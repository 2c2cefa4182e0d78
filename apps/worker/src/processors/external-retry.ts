import { ExternalUnavailable } from '@orders/clients';
import { DelayedError, type Job } from 'bullmq';

/**
 * Runs a call to an external system inside a job. When the system is unavailable
 * (breaker open, timeout, 5xx) the job is moved back to the delayed set and tried again
 * later without using up one of its attempts: an outage makes orders wait, never fail.
 * What bounds the waiting is the order's own life (a payment deadline, a cancellation),
 * which each processor checks before calling. Any other error fails the attempt.
 */
export async function callExternal<T>(job: Job, token: string | undefined, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof ExternalUnavailable) || token === undefined) throw error;
    await job.moveToDelayed(Date.now() + Math.max(1, error.retryAfterMs), token);
    throw new DelayedError(error.message);
  }
}

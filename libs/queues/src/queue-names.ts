import type { AcceptedOrder } from '@orders/domain';

/** Queue names; a worker process serves a subset of them (WORKER_QUEUES). */
export const QUEUE = {
  orders: 'orders',
  timers: 'timers',
  deadLetter: 'dead-letter',
} as const;

export const JOB = {
  persistOrder: 'persist-order',
  expireOrder: 'expire-order',
} as const;

export type PersistOrderJob = AcceptedOrder;

export interface ExpireOrderJob {
  orderId: string;
  userId: string;
}

/** What the dead-letter queue keeps of a job that used up its attempts, so it can be replayed. */
export interface DeadLetterJob {
  queue: string;
  name: string;
  jobId: string | undefined;
  data: unknown;
  failedReason: string;
  attemptsMade: number;
  failedAt: string;
}

/** BullMQ job ids: the order id makes a repeated enqueue of the same order a no-op. */
export const jobId = {
  persistOrder: (orderId: string) => orderId,
  expireOrder: (orderId: string) => `expire-${orderId}`,
};

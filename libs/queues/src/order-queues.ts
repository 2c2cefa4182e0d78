import { Queue, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOB, QUEUE, jobId, type DeadLetterJob, type ExpireOrderJob, type PersistOrderJob } from './queue-names.js';

export interface QueueSettings {
  prefix: string;
  attempts: number;
  backoffMs: number;
}

export interface OrderQueues {
  orders: Queue<PersistOrderJob>;
  timers: Queue<ExpireOrderJob>;
  deadLetter: Queue<DeadLetterJob>;
  all: Queue[];
  close(): Promise<void>;
}

export function defaultJobOptions(settings: QueueSettings): JobsOptions {
  return {
    attempts: settings.attempts,
    backoff: { type: 'exponential', delay: settings.backoffMs },
    // completed jobs are in MySQL already; keep Redis small during a sale
    removeOnComplete: true,
    // failed jobs stay for inspection; their copy in the dead-letter queue is what gets replayed
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

/** The producer side of every queue, on one shared connection. */
export function createOrderQueues(connection: Redis, settings: QueueSettings): OrderQueues {
  const options = { connection, prefix: settings.prefix, defaultJobOptions: defaultJobOptions(settings) };
  const orders = new Queue<PersistOrderJob>(QUEUE.orders, options);
  const timers = new Queue<ExpireOrderJob>(QUEUE.timers, options);
  const deadLetter = new Queue<DeadLetterJob>(QUEUE.deadLetter, {
    connection,
    prefix: settings.prefix,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: false },
  });
  const all = [orders, timers, deadLetter] as Queue[];
  return {
    orders,
    timers,
    deadLetter,
    all,
    close: async () => {
      await Promise.all(all.map((q) => q.close()));
    },
  };
}

export function enqueuePersistOrder(queues: Pick<OrderQueues, 'orders'>, order: PersistOrderJob): Promise<Job<PersistOrderJob>> {
  return queues.orders.add(JOB.persistOrder, order, { jobId: jobId.persistOrder(order.orderId) });
}

/** The payment deadline as a delayed job; its id makes scheduling it twice harmless. */
export function paymentDeadlineJob(order: { orderId: string; userId: string; paymentDeadline: string }, now: Date) {
  return {
    name: JOB.expireOrder,
    data: { orderId: order.orderId, userId: order.userId } satisfies ExpireOrderJob,
    opts: { jobId: jobId.expireOrder(order.orderId), delay: Math.max(0, new Date(order.paymentDeadline).getTime() - now.getTime()) },
  };
}

export function schedulePaymentDeadlines(
  queues: Pick<OrderQueues, 'timers'>,
  orders: ReadonlyArray<{ orderId: string; userId: string; paymentDeadline: string }>,
  now: Date,
): Promise<Job<ExpireOrderJob>[]> {
  return queues.timers.addBulk(orders.map((order) => paymentDeadlineJob(order, now)));
}

/** Copies a job that used up its attempts into the dead-letter queue, keyed by its origin. */
export async function moveToDeadLetter(deadLetter: Queue<DeadLetterJob>, queueName: string, job: Job, error: Error): Promise<void> {
  await deadLetter.add(
    'dead-letter',
    {
      queue: queueName,
      name: job.name,
      jobId: job.id,
      data: job.data,
      failedReason: error.message,
      attemptsMade: job.attemptsMade,
      failedAt: new Date().toISOString(),
    },
    { jobId: `${queueName}-${job.id ?? job.name}` },
  );
}

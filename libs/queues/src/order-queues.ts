import { randomUUID } from 'node:crypto';
import { Queue, type Job, type JobsOptions } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import {
  JOB,
  PERSIST_ORDERS_JOB,
  QUEUE,
  jobId,
  type DeadLetterJob,
  type ExpireOrderJob,
  type ExpireOrdersJob,
  type OrderEffectsJob,
  type OrderTimerJob,
  type PersistOrderJob,
  type RequestPaymentJob,
  type SendToWarehouseJob,
} from './queue-names.js';

export interface QueueSettings {
  prefix: string;
  attempts: number;
  backoffMs: number;
}

export interface OrderQueues {
  orders: Queue<PersistOrderJob>;
  timers: Queue<ExpireOrderJob | ExpireOrdersJob | OrderTimerJob>;
  payments: Queue<RequestPaymentJob | OrderEffectsJob>;
  fulfillment: Queue<OrderEffectsJob | SendToWarehouseJob>;
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

/** The producer side of every queue, on one shared connection (on a Redis Cluster the prefix carries the hash tag). */
export function createOrderQueues(connection: Redis | Cluster, settings: QueueSettings): OrderQueues {
  const options = { connection, prefix: settings.prefix, defaultJobOptions: defaultJobOptions(settings) };
  const orders = new Queue<PersistOrderJob>(QUEUE.orders, options);
  const timers = new Queue<ExpireOrderJob | OrderTimerJob>(QUEUE.timers, options);
  const payments = new Queue<RequestPaymentJob | OrderEffectsJob>(QUEUE.payments, options);
  const fulfillment = new Queue<OrderEffectsJob | SendToWarehouseJob>(QUEUE.fulfillment, options);
  const deadLetter = new Queue<DeadLetterJob>(QUEUE.deadLetter, {
    connection,
    prefix: settings.prefix,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: false },
  });
  const all = [orders, timers, payments, fulfillment, deadLetter] as Queue[];
  return {
    orders,
    timers,
    payments,
    fulfillment,
    deadLetter,
    all,
    close: async () => {
      await Promise.all(all.map((q) => q.close()));
    },
  };
}

/** The states a queue's reading counts its jobs in. */
export const COUNTED_JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'prioritized'] as const;

/**
 * A queue's jobs by state, when its oldest waiting job became ready and when its first delayed
 * job falls due (Unix ms; null when none waits, none is delayed): what the metrics export.
 */
export interface QueueReading {
  queue: string;
  counts: Record<string, number>;
  oldestWaitingSince: number | null;
  firstDelayedDueAt: number | null;
}

/** Every queue's reading, for the metrics: the api's and the workers' are the same, so the dashboards do not go blind on a queue no worker runs. */
export async function readQueues(queues: readonly Queue[]): Promise<QueueReading[]> {
  return Promise.all(
    queues.map(async (queue) => {
      const [counts, oldestWaitingSince, firstDelayedDueAt] = await Promise.all([queue.getJobCounts(...COUNTED_JOB_STATES), oldestWaitingSinceIn(queue), firstDelayedDueAtIn(queue)]);
      return { queue: queue.name, counts, oldestWaitingSince, firstDelayedDueAt };
    }),
  );
}

/**
 * When the first job of a queue's delayed set falls due (Unix ms; null when none is delayed):
 * its score in the set, the due time times 0x1000 plus an order counter (BullMQ's
 * getDelayedScore). Only a worker serving the queue moves due jobs on to wait, so one long
 * past due says no worker serves it: a timer (an unpaid order's deadline) that never fires.
 */
async function firstDelayedDueAtIn(queue: Queue): Promise<number | null> {
  const client = await queue.getBackend().client;
  const [, score] = await client.zrange(queue.toKey('delayed'), 0, 0, { WITHSCORES: true });
  return score === undefined ? null : Math.floor(Number(score) / 0x1000);
}

/**
 * When the job at the head of a queue's wait list, or its prioritized set, became ready (Unix
 * ms; null when neither holds one): what queue_oldest_waiting_job_age_seconds ages. Workers take
 * the list's tail, so that is its oldest job. A job run before counts from its last start, as
 * BullMQ keeps no time of its return to wait.
 */
async function oldestWaitingSinceIn(queue: Queue): Promise<number | null> {
  const heads = await queue.getJobs(['wait', 'prioritized'], 0, 0, true);
  const readySince = heads.map((job) => Math.max(job.timestamp + (job.opts.delay ?? 0), job.processedOn ?? 0));
  return readySince.length === 0 ? null : Math.min(...readySince);
}

/** Several accepted orders in one persist job: the intake's batches, one Redis job each. */
export interface PersistOrdersJob {
  orders: PersistOrderJob[];
}

/** The ids of the orders a job of any queue is about, for logs and the dead-letter listing. */
export function ordersCarriedBy(data: unknown): string[] {
  const payload = data as { orderId?: unknown; orders?: Array<{ orderId?: unknown }> } | null;
  if (typeof payload?.orderId === 'string') return [payload.orderId];
  if (Array.isArray(payload?.orders)) return payload.orders.flatMap((order) => (typeof order?.orderId === 'string' ? [order.orderId] : []));
  return [];
}

export function isPersistOrdersJob(data: PersistOrderJob | PersistOrdersJob): data is PersistOrdersJob {
  return Array.isArray((data as PersistOrdersJob).orders);
}

/**
 * Enqueues several orders as one job. Its id is new (never an order id): a batch must
 * not be dropped because one of its orders was enqueued before (a replay). Persisting
 * is idempotent by order id, so an order in two jobs is written once. Each order's
 * carrier is recorded with it (`carrierOf`), so the stranded-order sweeper can tell an
 * order waiting in a batch behind a backlog from one whose job was lost.
 */
export async function enqueuePersistOrders(queues: Pick<OrderQueues, 'orders'>, orders: PersistOrderJob[]): Promise<Job> {
  if (orders.length === 1) return enqueuePersistOrder(queues, orders[0]!);
  const id = jobId.persistOrders(randomUUID());
  const client = await queues.orders.getBackend().client;
  const [job] = await Promise.all([
    (queues.orders as unknown as Queue<PersistOrdersJob>).add(PERSIST_ORDERS_JOB, { orders }, { jobId: id }),
    client.hset(carriersKey(queues.orders), Object.fromEntries(orders.map((order) => [order.orderId, id]))),
  ]);
  return job;
}

/**
 * The batch job that carries an accepted order, if the intake enqueued it in one. Kept in
 * the queue's own slot, one hash for all orders, until the order is in MySQL (`forgetCarriers`).
 */
export async function carrierOf(queues: Pick<OrderQueues, 'orders'>, orderId: string): Promise<string | undefined> {
  const client = await queues.orders.getBackend().client;
  return (await client.hget(carriersKey(queues.orders), orderId)) ?? undefined;
}

/** Called once the orders are in MySQL and out of the accepted set. */
export async function forgetCarriers(queues: Pick<OrderQueues, 'orders'>, orderIds: readonly string[]): Promise<void> {
  if (orderIds.length === 0) return;
  const client = await queues.orders.getBackend().client;
  await client.hdel(carriersKey(queues.orders), ...orderIds);
}

function carriersKey(queue: Queue): string {
  return queue.toKey('order-carriers');
}

/**
 * Gathers the orders accepted in one turn of the event loop into one job (up to
 * maxOrdersPerJob), so the intake pays one Redis round trip and one BullMQ script per
 * turn instead of one per order, and the workers fetch many orders per job.
 * Each caller's promise settles with its batch's enqueue.
 */
export class PersistOrderBatcher {
  private pending: Array<{ order: PersistOrderJob; resolve: () => void; reject: (error: Error) => void }> = [];
  private scheduled = false;

  constructor(
    private readonly queues: Pick<OrderQueues, 'orders'>,
    private readonly maxOrdersPerJob: number,
  ) {}

  enqueue(order: PersistOrderJob): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ order, resolve, reject });
      if (this.pending.length >= this.maxOrdersPerJob) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    enqueuePersistOrders(
      this.queues,
      batch.map((p) => p.order),
    ).then(
      () => batch.forEach((p) => p.resolve()),
      (error: unknown) => batch.forEach((p) => p.reject(error as Error)),
    );
  }
}

export function enqueuePersistOrder(queues: Pick<OrderQueues, 'orders'>, order: PersistOrderJob): Promise<Job<PersistOrderJob>> {
  return queues.orders.add(JOB.persistOrder, order, { jobId: jobId.persistOrder(order.orderId) });
}

/**
 * The options of a job due at `deadline` (epoch ms), told at `now`. BullMQ makes a delayed job due
 * at its timestamp plus its delay, the timestamp by the enqueuing host's clock unless given:
 * stamped with `now` and delayed from it, the job falls due at the deadline whatever that host's
 * clock says, and one enqueued again waits only what is left of it.
 */
export function delayedUntil(deadline: number, now: Date): { timestamp: number; delay: number } {
  return { timestamp: now.getTime(), delay: Math.max(0, deadline - now.getTime()) };
}

/** The payment deadline as a delayed job; its id makes scheduling it twice harmless. */
export function paymentDeadlineJob(order: { orderId: string; userId: string; paymentDeadline: string }, now: Date) {
  return {
    name: JOB.expireOrder,
    data: { orderId: order.orderId, userId: order.userId } satisfies ExpireOrderJob,
    opts: { jobId: jobId.expireOrder(order.orderId), ...delayedUntil(new Date(order.paymentDeadline).getTime(), now) },
  };
}

/** Deadlines due within the same second share one delayed job: an order expires at most this late. */
const DEADLINE_GRANULARITY_MS = 1_000;

/**
 * The payment deadlines of a persisted batch: one delayed job per second in which some
 * fall due, instead of one per order. A flash sale's batch falls due together, so the
 * drain adds a job or two per batch to Redis rather than hundreds. Each falls due at its
 * deadlines (delayedUntil), however far off the clock `now` was read from.
 */
export function schedulePaymentDeadlines(
  queues: Pick<OrderQueues, 'timers'>,
  orders: ReadonlyArray<{ orderId: string; userId: string; paymentDeadline: string }>,
  now: Date,
): Promise<Job<ExpireOrderJob | ExpireOrdersJob>[]> {
  const bySecond = new Map<number, Array<{ orderId: string; userId: string; paymentDeadline: string }>>();
  for (const order of orders) {
    const second = Math.ceil(new Date(order.paymentDeadline).getTime() / DEADLINE_GRANULARITY_MS);
    const due = bySecond.get(second);
    if (due) due.push(order);
    else bySecond.set(second, [order]);
  }
  return queues.timers.addBulk(
    [...bySecond].map(([second, due]) => {
      if (due.length === 1) return paymentDeadlineJob(due[0]!, now);
      const orderIds = due.map((order) => order.orderId).sort();
      return {
        name: JOB.expireOrders,
        data: { orders: due.map(({ orderId, userId }) => ({ orderId, userId })) } satisfies ExpireOrdersJob,
        opts: { jobId: jobId.expireOrders(orderIds), ...delayedUntil(second * DEADLINE_GRANULARITY_MS, now) },
      };
    }),
  );
}

/** A job's dead letter is named by its origin: one per job, so copying it again adds nothing. */
export function deadLetterId(queueName: string, jobId: string): string {
  return `${queueName}-${jobId}`;
}

/** The dead letter of a job BullMQ failed for good: where, its reason and when it failed. */
export function deadLetterOf(queueName: string, job: Job): DeadLetterJob {
  return {
    queue: queueName,
    name: job.name,
    jobId: job.id,
    data: job.data,
    failedReason: job.failedReason,
    attemptsMade: job.attemptsMade,
    failedAt: new Date(job.finishedOn ?? Date.now()).toISOString(),
  };
}

/**
 * How long an order's index of its dead letters lives after its last letter was written: a letter
 * waits for an operator, who works a mass failure's within days; one older still shows in the lists.
 */
const LETTERS_OF_ORDER_KEPT_MS = 90 * 24 * 3600 * 1000;

/**
 * The ids of the dead letters written carrying `orderId`, in the dead-letter queue's slot, scored in
 * the order they were first written: an order's page reads its letters by them, oldest first, not
 * by reading every letter.
 */
export function lettersOfOrderKey(deadLetter: Queue, orderId: string): string {
  return deadLetter.toKey(`orders:${orderId}`);
}

/**
 * Writes a dead letter under `letterId`, indexed by the orders it carries first (lettersOfOrderKey):
 * a letter is never there unindexed. A letter replayed or dropped since leaves its id in the index,
 * which its readers pass over.
 */
export async function addDeadLetter(deadLetter: Queue<DeadLetterJob>, letterId: string, letter: DeadLetterJob): Promise<void> {
  await indexLetter(deadLetter, letterId, letter);
  await deadLetter.add('dead-letter', letter, { jobId: letterId });
}

/**
 * Adds the letter's id to the index of each order it carries (lettersOfOrderKey), after those
 * written before it; a letter written again (a later failure of its job) keeps its place, as it
 * does in the queue.
 */
export async function indexLetter(deadLetter: Queue<DeadLetterJob>, letterId: string, letter: DeadLetterJob): Promise<void> {
  const orders = ordersCarriedBy(letter.data);
  if (orders.length === 0) return;
  // the ioredis connection BullMQ was given (createOrderQueues)
  const client = (await deadLetter.getBackend().client) as unknown as Redis | Cluster;
  const written = await client.incr(deadLetter.toKey('letters-written'));
  const replies = await orders
    .reduce(
      (pipeline, orderId) => pipeline.zadd(lettersOfOrderKey(deadLetter, orderId), 'NX', written, letterId).pexpire(lettersOfOrderKey(deadLetter, orderId), LETTERS_OF_ORDER_KEPT_MS),
      client.pipeline(),
    )
    .exec();
  const refused = replies?.find(([error]) => error)?.[0];
  if (refused) throw refused;
}

/**
 * Copies a job BullMQ failed for good (it used up its attempts, or was failed regardless of
 * them: stalled too often) into the dead-letter queue, with its reason and when it failed.
 */
export async function moveToDeadLetter(deadLetter: Queue<DeadLetterJob>, queueName: string, job: Job): Promise<void> {
  await addDeadLetter(deadLetter, deadLetterId(queueName, job.id ?? job.name), deadLetterOf(queueName, job));
}

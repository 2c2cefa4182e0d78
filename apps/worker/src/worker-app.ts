import { minorUnitsPerUnit, type Config } from '@orders/config';
import { ORDER_TYPES, TIMER_ACTIONS, statusesWaitingFor } from '@orders/domain';
import { createMetrics, type OrderMetrics } from '@orders/metrics';
import { CatalogRepository, CouponRepository, OrderEventRepository, OrderRepository, PricingRepository, ProcessRepository, RefundRepository, StockLedgerRepository, createDb, isDatabaseUnavailable, mysqlNow, withoutStatementValues, type OrderDb } from '@orders/persistence';
import { JOB, JOBS_OF_QUEUE, QUEUE, createOrderQueues, enqueueFulfilmentUpdate, enqueueLatePaymentRefund, enqueuePaymentRequest, enqueueRefundPayments, heldRefundsWithoutJob, lateRefundsWithoutJob, orderRefundsWithoutJob, orderEventStreamKey, ordersCarriedBy, paymentRequestsWithoutJob, readQueues, type ExpireOrderJob, type ExpireOrdersJob, type OrderQueues, type PersistOrderJob } from '@orders/queues';
import { Inventory, RunLock, RunUnderWay, SweepPages, checkoutTimeoutsOf, connectRedis, logRedisOutages, redisSocketTimeoutMs, redisMastersReplicationIdOf, redisMemoryOf, redisReplicasOf, redisUptimeOf, type RedisClient } from '@orders/stock';
import { DelayedError, Worker, type Job, type Processor } from 'bullmq';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { closeUnpaidOrder, waitForDeadline } from './processors/expire-order.js';
import { ForwardLife, PAYMENT_LOOKED_AT_EVERY_MS } from './processors/forward-life.js';
import { OrderWriter } from './processors/order-writer.js';
import { OrderEventPublisher } from './order-events/order-event-publisher.js';
import { StockReconciler } from './stock-reconciler.js';
import { DeadLetterBackstop } from './dead-letter-backstop.js';
import { failedForGood, writeDeadLetter } from './dead-letter-writer.js';
import { StrandedOrderSweeper } from './stranded-order-sweeper.js';

export interface WorkerDeps {
  config: Config;
  redis: RedisClient;
  db: OrderDb;
  queues: OrderQueues;
  inventory: Inventory;
  orders: OrderRepository;
  catalog: CatalogRepository;
  metrics: OrderMetrics;
  clock: () => Date;
  log: Logger;
}

export interface RunningWorkers {
  deps: WorkerDeps;
  workers: Worker[];
  sweeper: StrandedOrderSweeper | undefined;
  ready(): Promise<boolean>;
  close(): Promise<void>;
  /** While close() runs, what it is waiting for: told when a shutdown outlasts its grace. */
  waitingFor(): string | undefined;
}

export function connectWorker(config: Config, log: Logger): WorkerDeps {
  // BullMQ workers block on Redis and must retry forever rather than fail a command (on a cluster, per node)
  const redis = connectRedis(config, { maxRetriesPerRequest: null, socketTimeout: redisSocketTimeoutMs(config, 'worker') });
  const { db } = createDb(config.MYSQL_URL, config.MYSQL_POOL_SIZE, config.MYSQL_QUERY_TIMEOUT_MS);
  const ledger = new StockLedgerRepository(db);
  return {
    config,
    redis,
    db,
    queues: createOrderQueues(redis, { prefix: config.QUEUE_PREFIX, attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS }),
    inventory: new Inventory(redis, config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(config), {
      // a payment's stock commit waits for the replicas a checkout's reservation does: a failover to one without it would sell the units again
      durability: { replicaAcks: config.RESERVATION_REPLICA_ACKS, timeoutMs: config.RESERVATION_REPLICA_TIMEOUT_MS },
      limitGivenBackBy: (restock) => ledger.limitGivenBack(restock),
    }),
    orders: new OrderRepository(db),
    catalog: new CatalogRepository(db),
    metrics: createMetrics({ app: 'worker' }),
    clock: () => new Date(),
    log,
  };
}

/**
 * Wraps a processor with the per-queue metrics every operator dashboard reads. A run that
 * puts its job back in the delayed set (DelayedError: waiting out an outage of MySQL or an
 * external system, or a timer not yet due) did no work: it is not a job processed, or a
 * dashboard would show hundreds of jobs a second while nothing is written.
 *
 * The wait is how long a job sat ready before its first start. A later start is a retry, a
 * re-run after such a delay or after a crash, or a replay of its dead letter (which keeps
 * its count of starts): BullMQ keeps the job's first timestamp and stores the latest delay
 * relative to whenever it was set, so `timestamp + delay` would read the job's whole age
 * as queue lag.
 */
function measured<T>(metrics: OrderMetrics, queue: string, processor: Processor<T>): Processor<T> {
  return async (job, token, signal) => {
    if (job.attemptsStarted <= 1) {
      const readyAt = job.timestamp + (job.opts.delay ?? 0);
      metrics.jobWait.observe({ queue, name: job.name }, Math.max(0, Date.now() - readyAt) / 1000);
    }
    const stop = metrics.jobDuration.startTimer({ queue, name: job.name });
    try {
      const result = await processor(job, token, signal);
      stop();
      return result;
    } catch (error) {
      if (!(error instanceof DelayedError)) stop();
      throw error;
    }
  };
}

/** Keeps the jobs a queue's worker runs now in `running` (name and id): what a shutdown waits for. */
function tracked<T>(running: Set<string>, processor: Processor<T>): Processor<T> {
  return async (job, token, signal) => {
    const named = `${job.name} ${job.id}`;
    running.add(named);
    try {
      return await processor(job, token, signal);
    } finally {
      running.delete(named);
    }
  };
}

/** What a shutdown still waits for of the workers not closed yet: their jobs, or BullMQ's own closing. */
function unclosedWorkers(running: Map<string, Set<string>>): string {
  const shown = 3;
  return [...running]
    .map(([queue, jobs]) => {
      if (jobs.size === 0) return `${queue} (no job running: its Redis connections closing)`;
      const named = [...jobs].slice(0, shown).join(', ');
      return `${queue} (${jobs.size > shown ? `${named} and ${jobs.size - shown} more` : named})`;
    })
    .join('; ');
}

/**
 * A job that finds MySQL away goes back to the delayed set without using up an attempt, as
 * a job does when an external system is away (external-retry.ts): however long the outage,
 * its orders wait and are written when MySQL returns; attempts and the dead-letter queue
 * stay for jobs that fail on their own.
 *
 * A job that fails hands BullMQ its error without a MySQL statement's values: BullMQ keeps
 * the message (failedReason, copied into the dead letter) and the stack in Redis for days,
 * and MySQL's message quotes a buyer's data ("Duplicate entry '<phone>' for key …"). Only a
 * MySQL error, or one it caused, is copied, with its class, code and causes; BullMQ's own
 * (DelayedError, UnrecoverableError), which it tells by name, pass as they are.
 */
function waitingOutDatabaseOutages<T>(retryDelayMs: number, log: Logger, queue: string, processor: Processor<T>): Processor<T> {
  return async (job, token, signal) => {
    try {
      return await processor(job, token, signal);
    } catch (error) {
      if (token === undefined || !isDatabaseUnavailable(error)) throw withoutStatementValues(error, { codeInMessage: true });
      log.warn({ queue, jobId: job.id, err: error }, 'MySQL unavailable: the job waits for it without using an attempt');
      await job.moveToDelayed(Date.now() + retryDelayMs, token);
      throw new DelayedError('MySQL unavailable');
    }
  };
}

/**
 * How late a sweep job runs: the timers queue went that long unserved (its workers away, or
 * fallen behind), and runs the timer jobs due before the sweep's only now. Read from the time
 * the job was scheduled for, which its id carries (`repeat:<scheduler>:<millis>`, BullMQ's job
 * schedulers); 0 for a job without one.
 */
function timersUnservedMs(sweep: Job): number {
  const scheduledFor = Number(/:(\d+)$/.exec(sweep.id ?? '')?.[1]);
  return Number.isFinite(scheduledFor) ? Math.max(0, Date.now() - scheduledFor) : 0;
}

/**
 * Keeps a scheduled job's scheduler in Redis, under one id for all replicas. Redis can lose it
 * with the queues (a flushed queue, a restart without its AOF, a failover to a replica that was
 * behind) while this process lives on, and then nothing would run the job again: not the
 * overdue-order sweep, the backstop of the timer jobs lost with it, nor the stock check. So every
 * replica serving `timers` upserts it again each interval: with the same interval BullMQ keeps its
 * next run where it was (it replaces the waiting run with one at the same time), so this never
 * postpones a run. With another interval BullMQ runs it at once, under a new time: a run long due
 * (the timers went unserved, and this worker comes with a new interval) is left to run first under
 * its own, which tells the sweep how long they went unserved (timersUnservedMs; else it took the
 * timer jobs due meanwhile, only waiting for a worker, for lost), and the interval changes a round later.
 */
function keepScheduled(timers: OrderQueues['timers'], schedule: { job: string; everyMs: number; what: string }, log: Logger): { stop(): Promise<void> } {
  const { job, everyMs, what } = schedule;
  let upserting: Promise<void> | undefined;
  const upsert = (again: boolean) => {
    upserting ??= (async () => {
      const scheduled = await timers.getJobScheduler(job);
      if (again && !scheduled) log.warn({ jobScheduler: job }, `${what} was no longer scheduled (Redis lost the queues): scheduled again`);
      if (!again && scheduled?.every !== undefined && scheduled.every !== everyMs && scheduled.next != null && scheduled.next < Date.now()) return;
      await timers.upsertJobScheduler(job, { every: everyMs }, { name: job, opts: { removeOnComplete: 100, removeOnFail: 100 } });
    })()
      .catch((error: unknown) => log.error({ err: error }, `could not schedule ${what}`))
      .finally(() => (upserting = undefined));
  };
  upsert(false);
  // while Redis is away the upsert waits for it: one at a time, not one per interval of the outage
  const timer = setInterval(() => upsert(true), everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await upserting;
    },
  };
}

/**
 * Takes a scheduled job switched off by config (its interval 0) off Redis: its scheduler, left
 * there by a deployment that ran the job, would go on running it while every dashboard says it
 * is off. Called when the worker starts, and by any run of it that still comes (one already
 * waiting, or one a replica with the old config scheduled again during a rolling deploy).
 */
async function unschedule(timers: OrderQueues['timers'], schedule: { job: string; what: string; setting: string }, log: Logger): Promise<void> {
  if (await timers.removeJobScheduler(schedule.job)) log.info({ jobScheduler: schedule.job }, `${schedule.what} is off (${schedule.setting}=0): removed its schedule from Redis`);
}

const EXPIRY_CONCURRENCY = 10;

/** Starts the processors of the queues this process serves (WORKER_QUEUES). */
export function startWorkers(deps: WorkerDeps): RunningWorkers {
  const { config, metrics, log, queues } = deps;
  const connection = deps.redis;
  const writer = new OrderWriter({ ...deps, pricing: new PricingRepository(deps.db) }, { batchSize: config.PERSIST_BATCH_SIZE, batchWaitMs: config.PERSIST_BATCH_WAIT_MS, busyIntervalMs: config.PERSIST_BUSY_INTERVAL_MS });
  const life = new ForwardLife(deps);
  const refunds = new RefundRepository(deps.db);
  const payments = new ProcessRepository(deps.db);
  // its ledger sums read up to 500,000 rows a fold, and every row past the sums when folds fail: a
  // deadline of their own, longer than the statements' (which would end them, and a run every RECONCILE_INTERVAL_MS would never finish),
  // and a deadline all the same: a MySQL that stops answering would hold the check's lock for
  // hours, and no check would run meanwhile
  const ledgerDb = config.WORKER_QUEUES.includes(QUEUE.timers) ? createDb(config.MYSQL_URL, 1, config.RECONCILE_QUERY_TIMEOUT_MS, 'RECONCILE_QUERY_TIMEOUT_MS').db : deps.db;
  const reconciler = new StockReconciler({ ...deps, ledger: new StockLedgerRepository(ledgerDb), coupons: new CouponRepository(deps.db) }, { settleMs: config.RECONCILE_SETTLE_MS });
  /**
   * One order's step in the overdue sweep: its failure is logged and the sweep goes on to the
   * next order, this one left to the next sweep. Thrown, one order that kept failing (its row
   * locked, a transition refused again and again) ended every sweep there, and the orders read
   * after it never moved.
   */
  const sweptAlone = async <T>(orderId: string, step: string, run: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await run();
    } catch (error) {
      // MySQL away is every order's trouble: the sweep waits it out whole (waitingOutDatabaseOutages)
      if (isDatabaseUnavailable(error)) throw error;
      log.error({ err: error, orderId, step }, 'the overdue sweep could not move an order on; the next sweep tries again');
      return undefined;
    }
  };
  /**
   * Closes the unpaid orders past their deadline, a few at a time: most orders of a sale were
   * paid meanwhile, and each check is its own transaction. `alone`: the sweep's, each order's
   * failure its own; a deadline job's fails whole, and is tried again. A payment the buyer asked
   * for in time and the payment system has not answered (its request still in the backlog after
   * a sale, an outage, a slow callback) decides the order when it does: the order is looked at
   * again a minute at a time, up to PAYMENT_TIMEOUT_MS past its deadline, as a presale's balance is.
   */
  const expireUnpaid = async (orderIds: string[], detail = 'payment deadline passed', alone = false): Promise<{ expired: string[]; notDue: Array<{ orderId: string; dueInMs: number }> }> => {
    const expired: string[] = [];
    const notDue: Array<{ orderId: string; dueInMs: number }> = [];
    for (let i = 0; i < orderIds.length; i += EXPIRY_CONCURRENCY) {
      const batch = orderIds.slice(i, i + EXPIRY_CONCURRENCY);
      const readPaying = () => payments.paymentsAskedInTimeFor('payment', batch, config.PAYMENT_TIMEOUT_MS);
      // the sweep's read failing leaves these orders to its next turn, as a failing order does
      const paying = alone ? await sweptAlone(batch.join(','), 'expire', readPaying) : await readPaying();
      if (!paying) continue;
      const close = async (orderId: string) => {
        const leftMs = paying.get(orderId);
        if (leftMs !== undefined) return { changed: false, dueInMs: Math.min(leftMs, PAYMENT_LOOKED_AT_EVERY_MS) };
        return closeUnpaidOrder(deps, { orderId, action: 'expire', actor: 'system', detail, paymentWait: { waitMs: config.PAYMENT_TIMEOUT_MS, lookEveryMs: PAYMENT_LOOKED_AT_EVERY_MS } });
      };
      const closed = await Promise.all(batch.map((orderId) => (alone ? sweptAlone(orderId, 'expire', () => close(orderId)) : close(orderId))));
      closed.forEach((outcome, j) => {
        if (outcome?.changed) expired.push(batch[j]!);
        else if (outcome?.dueInMs !== undefined) notDue.push({ orderId: batch[j]!, dueInMs: outcome.dueInMs });
      });
    }
    return { expired, notDue };
  };
  /**
   * A payment deadline job (an order, or the orders of a batch due in the same second): expires
   * those past their deadline by MySQL's clock, and waits for the first deadline of the others
   * (waitForDeadline), carrying only them.
   */
  const expireAtDeadline = async (job: Job<ExpireOrderJob | ExpireOrdersJob>, token: string | undefined): Promise<number> => {
    const timed = job.name === JOB.expireOrders ? (job.data as ExpireOrdersJob).orders : [job.data as ExpireOrderJob];
    const { expired, notDue } = await expireUnpaid(timed.map((order) => order.orderId));
    if (notDue.length === 0) return expired.length;
    const waiting = new Set(notDue.map((order) => order.orderId));
    if (job.name === JOB.expireOrders) await job.updateData({ orders: timed.filter((order) => waiting.has(order.orderId)) });
    return waitForDeadline(job, token, Math.min(...notDue.map((order) => order.dueInMs)), log);
  };
  /**
   * Enqueues again the refunds found due with no job that a second read (`stillDue`) finds due
   * yet: a job that paid one back and ended after the first read left no job, and nothing was lost.
   * Returns those enqueued again.
   */
  const restoreRefundJobs = async <Due>(withoutJob: Due[], stillDue: (found: Due[]) => Promise<Due[]>, enqueue: (due: Due) => Promise<unknown>, named: (restored: Due[]) => object, message: string): Promise<Due[]> => {
    const restored = withoutJob.length > 0 ? await stillDue(withoutJob) : [];
    if (restored.length === 0) return restored;
    await Promise.all(restored.map(enqueue));
    metrics.refundJobsRestored.inc(restored.length);
    log.warn({ count: restored.length, ...named(restored.slice(0, 20)) }, message);
    return restored;
  };
  // the reads whose rows may stay where they are (a job failed for good) go on page by page, sweep after sweep;
  // unpaid orders past their deadline all close, so the next sweep's first page holds the next ones
  const sweepPages = new SweepPages(config.SWEEP_PAGE_SIZE);
  /**
   * The backstop of the timer jobs. Unpaid orders (and presales owing their balance) a whole
   * sweep interval past their deadline lost their job (Redis lost data, a flushed queue) and
   * would hold their stock for ever: closed as their job would have. Shipped orders never
   * confirmed and delivered orders never completed a sweep interval past their timer would
   * wait for ever too: moved on as their timer would have. Paid orders waiting a sweep interval
   * for their warehouse with no job would never ship, and refunds due as long with no refund job
   * (of refund orders, of orders refunded whole, of payments that came late) would never be paid
   * back: their job is enqueued again. Counted and logged, since it means jobs go missing.
   * Refunds the payment system accepted and payments sent to it that were never reported on
   * (their callbacks lost for good) are asked about again, by their jobs: it pays and charges
   * nothing twice.
   * `unservedMs`: how long the timers went unserved before this sweep (timersUnservedMs); the
   * timer jobs due meanwhile run only now, so this sweep leaves the orders due meanwhile to them.
   */
  const sweepOverdue = async (unservedMs: number): Promise<void> => {
    const graceMs = config.OVERDUE_SWEEP_INTERVAL_MS + unservedMs;
    if (unservedMs >= config.OVERDUE_SWEEP_INTERVAL_MS) {
      log.info({ unservedMs }, 'the timers went unserved for a while (no worker served them, or they fell behind): this sweep leaves the orders due meanwhile to their own timer jobs, running now');
    }
    const shortestTimeout = Math.min(config.PAYMENT_TIMEOUT_MS, config.FLASH_SALE_PAYMENT_TIMEOUT_MS);
    // past their deadline or timer by MySQL's clock, as the transitions themselves check: this worker's may run ahead, or behind
    // as their deadline jobs (expireUnpaid, forfeitDeposit) wait for a payment asked in time, and look at its answer a minute at a time
    const overdue = await deps.orders.overdueUnpaidOrderIds(graceMs, shortestTimeout, config.PAYMENT_TIMEOUT_MS, PAYMENT_LOOKED_AT_EVERY_MS, config.SWEEP_PAGE_SIZE);
    const { expired: closed } = await expireUnpaid(overdue, 'payment deadline passed; its deadline job was gone', true);
    const owingBalance = await deps.orders.overdueBalanceOrderIds(graceMs, config.PAYMENT_TIMEOUT_MS, PAYMENT_LOOKED_AT_EVERY_MS, config.SWEEP_PAGE_SIZE);
    for (const orderId of owingBalance) if ((await sweptAlone(orderId, 'forfeit deposit', () => life.forfeitDeposit(orderId)))?.changed) closed.push(orderId);
    if (closed.length > 0) {
      metrics.overdueOrdersExpired.inc(closed.length);
      // those closed here, not those read: an order paid or closed by its own job meanwhile is no loss
      log.warn({ count: closed.length, orderIds: closed.slice(0, 20) }, 'closed orders past their payment or balance deadline whose deadline job was gone');
    }
    for (const backstop of timerBackstops) {
      for (const { status, types } of statusesWaitingFor(backstop.effect)) {
        const read = `${backstop.timer} ${status} ${types.join()}`;
        const waiting = await deps.orders.waitingLongerThan(status, types, graceMs + backstop.waitMs, sweepPages.pageOf(read));
        const moved: string[] = [];
        for (const orderId of waiting) if ((await sweptAlone(orderId, backstop.timer, () => backstop.fire(orderId)))?.changed) moved.push(orderId);
        sweepPages.read(read, waiting.length, moved.length);
        if (moved.length === 0) continue;
        metrics.overdueOrderTimers.inc({ timer: backstop.timer }, moved.length);
        log.warn({ timer: backstop.timer, count: moved.length, orderIds: moved.slice(0, 20) }, 'moved on orders past their timer whose timer job was gone');
      }
    }
    const handedOverAgain: string[] = [];
    // paid orders that ship parcels (split, then handed over), and virtual ones (delivered with the payment)
    for (const { status, types } of [...statusesWaitingFor('split'), ...statusesWaitingFor('deliverDigital')]) {
      const read = `hand-over ${status} ${types.join()}`;
      const waiting = await deps.orders.waitingLongerThan(status, types, graceMs, sweepPages.pageOf(read));
      const before = handedOverAgain.length;
      for (const orderId of waiting) if (await sweptAlone(orderId, 'hand over', () => life.handOverAgainIfLost(orderId))) handedOverAgain.push(orderId);
      // the orders handed over again move on once their job runs: the next page starts that much sooner
      sweepPages.read(read, waiting.length, handedOverAgain.length - before);
    }
    if (handedOverAgain.length > 0) {
      metrics.handOversRestored.inc(handedOverAgain.length);
      log.warn({ count: handedOverAgain.length, orderIds: handedOverAgain.slice(0, 20) }, 'enqueued again the settlement or hand-over of paid orders waiting a sweep interval with no job: their job was gone');
    }
    // split orders held REFUNDING with nothing owed any more: the refund's close missed them (a child's step racing the
    // last refund's confirmation, before refundsOwedNow); closed as their children give them, a no-op where money is still owed
    const heldOpenRead = 'split orders refunding';
    const heldOpen = await deps.orders.waitingLongerThan('REFUNDING', ORDER_TYPES, graceMs + config.REFUND_CONFIRMATION_WAIT_MS, sweepPages.pageOf(heldOpenRead), { split: true });
    const splitClosed: string[] = [];
    for (const orderId of heldOpen) {
      const closed = await sweptAlone(orderId, 'close refunded split order', async () => {
        const children = await deps.orders.closeSplitOrderOnceRefunded({ order_id: orderId, parent_order_id: null }, { at: deps.clock(), detail: 'nothing owed any more (overdue sweep)' });
        for (const { order, fired } of children) metrics.transitions.inc({ type: order.type, from: fired.from, to: fired.to, action: fired.action });
        return { changed: (await deps.orders.findOrderRow(orderId))?.status !== 'REFUNDING' };
      });
      if (closed?.changed) splitClosed.push(orderId);
    }
    sweepPages.read(heldOpenRead, heldOpen.length, splitClosed.length);
    if (splitClosed.length > 0) log.warn({ count: splitClosed.length, orderIds: splitClosed.slice(0, 20) }, 'closed split orders held REFUNDING with nothing owed any more');
    const [withRefunds, refundedWhole] = ['orders with refunds waiting', 'orders refunded whole waiting'];
    const ordersWithRefunds = await refunds.ordersWithRefundsWaiting(graceMs, sweepPages.pageOf(withRefunds));
    const ordersRefundedWhole = await refunds.ordersRefundedWholeWaiting(graceMs, sweepPages.pageOf(refundedWhole));
    const ordersRefundsRestored = await restoreRefundJobs(
      await orderRefundsWithoutJob(queues, [...ordersWithRefunds, ...ordersRefundedWhole]),
      async (orderIds) => {
        const all = { offset: 0, limit: orderIds.length };
        const stillWaiting = new Set([...(await refunds.ordersWithRefundsWaiting(graceMs, all, orderIds)), ...(await refunds.ordersRefundedWholeWaiting(graceMs, all, orderIds))]);
        return orderIds.filter((orderId) => stillWaiting.has(orderId));
      },
      (orderId) => enqueueRefundPayments(queues, orderId),
      (orderIds) => ({ orderIds }),
      'enqueued again the refund jobs of orders holding refunds due a sweep interval with no job: their job was gone',
    );
    // the refunds enqueued again leave these reads once paid back: the next page starts that much sooner
    const restored = new Set(ordersRefundsRestored);
    sweepPages.read(withRefunds, ordersWithRefunds.length, ordersWithRefunds.filter((orderId) => restored.has(orderId)).length);
    sweepPages.read(refundedWhole, ordersRefundedWhole.length, ordersRefundedWhole.filter((orderId) => restored.has(orderId)).length);
    // refunds that wait for the warehouse to take their units out are paid by the fulfilment update's job, which
    // waits behind the warehouse's breaker while it is away: only an order with no such job lost it
    const heldRead = 'orders with refunds held for the warehouse';
    const ordersHeld = await refunds.ordersWithRefundsWaiting(graceMs, sweepPages.pageOf(heldRead), undefined, true);
    const heldRestored = await restoreRefundJobs(
      ordersHeld.length > 0 ? await heldRefundsWithoutJob(queues, ordersHeld) : [],
      async (orderIds) => {
        const stillWaiting = new Set(await refunds.ordersWithRefundsWaiting(graceMs, { offset: 0, limit: orderIds.length }, orderIds, true));
        return orderIds.filter((orderId) => stillWaiting.has(orderId));
      },
      (orderId) => enqueueFulfilmentUpdate(queues, orderId),
      (orderIds) => ({ orderIds }),
      'enqueued again the warehouse updates of orders holding refunds that wait for the warehouse to take their units out, a sweep interval with no job: their job was gone',
    );
    sweepPages.read(heldRead, ordersHeld.length, heldRestored.length);
    const latePaymentsRead = 'late payments due';
    const latePayments = await refunds.latePaymentsWaiting(graceMs, sweepPages.pageOf(latePaymentsRead));
    const latePaymentsRestored = await restoreRefundJobs(
      latePayments.length > 0 ? await lateRefundsWithoutJob(queues, latePayments) : [],
      async (payments) => {
        const stillDue = await refunds.stillDue(payments.map((payment) => payment.paymentId));
        return payments.filter((payment) => stillDue.has(payment.paymentId));
      },
      (payment) => enqueueLatePaymentRefund(queues, payment),
      (payments) => ({ payments }),
      'enqueued again the refunds of payments taken after their order could take them, due a sweep interval with no job: their job was gone',
    );
    sweepPages.read(latePaymentsRead, latePayments.length, latePaymentsRestored.length);
    // refunds the payment system accepted and never confirmed (their callback lost): their order's refund job asks for them again;
    // one first sent REFUND_CONFIRMATION_GIVE_UP_MS ago is asked for no more (refunds_unconfirmed_given_up): an operator's, with the payment provider
    const unconfirmedRead = 'refunds unconfirmed';
    const unconfirmed = await refunds.ordersWithPartsUnconfirmed(config.REFUND_CONFIRMATION_WAIT_MS, sweepPages.pageOf(unconfirmedRead), config.REFUND_CONFIRMATION_GIVE_UP_MS);
    // an order whose refund job is queued already (the payment system away) is asked again by that job
    const toAsk = unconfirmed.length > 0 ? await orderRefundsWithoutJob(queues, unconfirmed) : [];
    await Promise.all(toAsk.map((orderId) => enqueueRefundPayments(queues, orderId)));
    // asked again, each waits its REFUND_CONFIRMATION_WAIT_MS anew: the next page starts that much sooner
    sweepPages.read(unconfirmedRead, unconfirmed.length, toAsk.length);
    if (toAsk.length > 0) log.warn({ count: toAsk.length, orderIds: toAsk.slice(0, 20) }, 'enqueued the refund jobs of orders holding refunds the payment system accepted and did not confirm within REFUND_CONFIRMATION_WAIT_MS: they ask it again');
    // payments sent to the payment system and never reported on (their callback lost for good, their answer maybe too), whatever
    // their order is now: their request job asks for one still due again, the callback it sends again paying the order, and asks
    // what the payment system has of one no longer due, given back if taken; one first sent PAYMENT_CONFIRMATION_GIVE_UP_MS
    // ago is asked about no more (payments_unconfirmed_given_up): an operator's, with the payment provider
    const paymentsUnconfirmedRead = 'payments unconfirmed';
    const paymentsUnconfirmed = await payments.paymentsUnconfirmed(config.PAYMENT_CONFIRMATION_WAIT_MS, sweepPages.pageOf(paymentsUnconfirmedRead), undefined, config.PAYMENT_CONFIRMATION_GIVE_UP_MS);
    // one whose request job is queued already (the payment system away) is asked again by that job
    const paymentsToAsk = paymentsUnconfirmed.length > 0 ? await paymentRequestsWithoutJob(queues, paymentsUnconfirmed) : [];
    await Promise.all(paymentsToAsk.map((payment) => enqueuePaymentRequest(queues, payment)));
    // asked again, each waits its PAYMENT_CONFIRMATION_WAIT_MS anew: the next page starts that much sooner
    sweepPages.read(paymentsUnconfirmedRead, paymentsUnconfirmed.length, paymentsToAsk.length);
    if (paymentsToAsk.length > 0) {
      log.warn({ count: paymentsToAsk.length, payments: paymentsToAsk.slice(0, 20) }, 'enqueued the request jobs of payments sent to the payment system and not reported on within PAYMENT_CONFIRMATION_WAIT_MS: they ask it again');
    }
  };
  // a sweep running longer than its interval, or on another worker, would do the same work again and count it twice
  const sweepLock = new RunLock(deps.redis, `${config.QUEUE_PREFIX}:overdue-sweep-lock`, 'overdue-order sweep');
  const sweepOverdueUnlessRunning = async (job: Job): Promise<void> => {
    const unservedMs = timersUnservedMs(job);
    try {
      await sweepLock.whileHeld(0, async () => sweepOverdue(unservedMs));
    } catch (error) {
      if (!(error instanceof RunUnderWay)) throw error;
    }
  };
  const timerBackstops = (
    [
      { effect: 'scheduleAutoConfirm', waitMs: config.AUTO_CONFIRM_MS, fire: async (orderId: string) => life.autoConfirm(orderId) },
      { effect: 'scheduleCompletion', waitMs: config.AFTER_SALES_WINDOW_MS, fire: async (orderId: string) => life.completeAfterWindow(orderId) },
      { effect: 'scheduleReturnClose', waitMs: config.RETURN_PARCEL_WINDOW_MS, fire: async (orderId: string) => life.closeUnreturned(orderId) },
      { effect: 'scheduleReturnReview', waitMs: config.RETURN_REVIEW_WINDOW_MS, fire: async (orderId: string) => life.approveUnreviewed(orderId) },
    ] as const
  ).map((backstop) => ({ ...backstop, timer: TIMER_ACTIONS[backstop.effect] }));
  const schedules = [
    { job: JOB.reconcileStock, everyMs: config.RECONCILE_INTERVAL_MS, what: 'the stock reconciliation', setting: 'RECONCILE_INTERVAL_MS' },
    { job: JOB.expireOverdueOrders, everyMs: config.OVERDUE_SWEEP_INTERVAL_MS, what: 'the overdue-order sweep', setting: 'OVERDUE_SWEEP_INTERVAL_MS' },
  ];
  const switchedOff = new Map<string, (typeof schedules)[number]>(schedules.filter((schedule) => schedule.everyMs === 0).map((schedule) => [schedule.job, schedule]));
  const processors: Partial<Record<string, Processor>> = {
    [QUEUE.orders]: async (job: Job<PersistOrderJob>) => writer.persist(job.data),
    [QUEUE.timers]: async (job: Job, token) => {
      const off = switchedOff.get(job.name);
      if (off) return unschedule(queues.timers, off, log);
      if (job.name === JOB.expireOrder || job.name === JOB.expireOrders) return expireAtDeadline(job as Job<ExpireOrderJob | ExpireOrdersJob>, token);
      if (job.name === JOB.reconcileStock) return void (await reconciler.checkUnlessRunning());
      if (job.name === JOB.expireOverdueOrders) return sweepOverdueUnlessRunning(job);
      return life.timerJob(job, token);
    },
    [QUEUE.payments]: async (job: Job, token) => life.paymentsJob(job, token),
    [QUEUE.fulfillment]: async (job: Job, token) => life.fulfillmentJob(job, token),
  };

  const workers: Worker[] = [];
  // the jobs running now, per queue whose worker has not closed yet
  const unclosed = new Map<string, Set<string>>();
  // `events` is no BullMQ queue: the order-event publisher below serves it
  for (const queue of config.WORKER_QUEUES.filter((name) => name !== 'events')) {
    const processor = processors[queue];
    if (!processor) {
      log.warn({ queue }, 'no processor for this queue yet; skipping');
      continue;
    }
    const running = new Set<string>();
    const worker = new Worker(queue, tracked(running, measured(metrics, queue, waitingOutDatabaseOutages(config.JOB_BACKOFF_MS, log, queue, processor))), {
      connection,
      prefix: config.QUEUE_PREFIX,
      concurrency: config.WORKER_CONCURRENCY,
      // how soon a job held by a crashed worker is handed to another one
      lockDuration: config.WORKER_LOCK_DURATION_MS,
      stalledInterval: config.WORKER_STALLED_INTERVAL_MS,
      // a crash is the worker's fault, not the job's: BullMQ's default of 1 fails a job (an expiry timer too) after two crashes
      maxStalledCount: config.WORKER_MAX_STALLED_COUNT,
    });
    worker.on('failed', (job, error) => {
      if (!job) return;
      const final = failedForGood(job);
      // a final failure is counted with its dead letter, once, whoever writes it
      if (!final) metrics.jobFailures.inc({ queue, name: job.name, final: 'false' });
      const orderIds = ordersCarriedBy(job.data);
      log.warn({ queue, jobId: job.id, orderId: orderIds.length === 1 ? orderIds[0] : undefined, orderIds: orderIds.length > 1 ? orderIds : undefined, attempt: job.attemptsMade, final, err: error }, 'job failed');
      if (final) {
        writeDeadLetter({ redis: deps.redis, deadLetter: queues.deadLetter, metrics }, queue, job).catch((dlqError: unknown) =>
          log.error({ err: dlqError, jobId: job.id }, 'could not copy the failed job to the dead-letter queue; it stays in the failed set, and the next look for failed jobs without a dead letter copies it'),
        );
      }
    });
    // each job's failure counters start at 0 when a worker starts serving the queue: increase()
    // cannot see a series' first sample, so a series born with the first dead letter of a
    // worker's life would never fire JobsDeadLettered
    for (const name of JOBS_OF_QUEUE[queue] ?? []) {
      for (const final of ['true', 'false']) metrics.jobFailures.inc({ queue, name, final }, 0);
    }
    workers.push(worker);
    unclosed.set(queue, running);
    worker.once('closed', () => unclosed.delete(queue));
  }

  logRedisOutages(deps.redis, 'worker', log, [...queues.all, ...workers]);
  metrics.watchRedisMemory(async () => redisMemoryOf(deps.redis));
  metrics.watchRedisUptime(async () => redisUptimeOf(deps.redis));
  metrics.watchRedisReplicationId(async () => redisMastersReplicationIdOf(deps.redis));
  metrics.watchRedisReplicas(async () => redisReplicasOf(deps.redis));
  metrics.watchClockOffset(async () => {
    const redisAhead = await aheadOfThisHost(async () => (await deps.inventory.acceptanceClock()).getTime());
    const mysqlAhead = await aheadOfThisHost(() => mysqlNow(deps.db));
    return (redisAhead - mysqlAhead) / 1000;
  });
  metrics.watchDependency('redis', () => deps.redis.ping());
  metrics.watchDependency('mysql', () => sql`SELECT 1`.execute(deps.db));
  metrics.watchQueues(async () => readQueues(queues.all));

  // every replica exports the last reconciliation (kept in Redis), whichever one ran it, and how often
  // it is due by its own config: StockCheckStale measures the report's age against it
  metrics.watchStockReport(() => reconciler.lastReport());
  metrics.stockCheckInterval.set(config.RECONCILE_INTERVAL_MS / 1000);
  metrics.currencyMinorUnits.set({ currency: config.SHOP_CURRENCY }, minorUnitsPerUnit(config.SHOP_CURRENCY));
  const servesTimers = config.WORKER_QUEUES.includes(QUEUE.timers);
  // the order lifecycle's stage reports the returns nobody reviews, and how long its timer lets them wait before it approves them
  if (servesTimers) metrics.watchReturnsAwaitingReview(() => refunds.returnsAwaitingReview());
  if (servesTimers) metrics.returnReviewWindow.set(config.RETURN_REVIEW_WINDOW_MS / 1000);
  // and the refunds that wait, unpaid, for a warehouse to take their units out: they wait as long as it is away
  if (servesTimers) metrics.watchRefundsHeldForWarehouse(() => refunds.refundsHeldForWarehouse());
  if (servesTimers) metrics.watchRefundsDeclinedOwed(() => refunds.refundsDeclinedOwed());
  // and the payments sent and never reported on, and the refunds accepted and never confirmed, that nothing asks about any more
  if (servesTimers) metrics.watchPaymentsUnconfirmedGivenUp(() => payments.paymentsGivenUp(config.PAYMENT_CONFIRMATION_GIVE_UP_MS));
  // and those the payment system has not decided yet, looked up again until then: not lost, nothing to page for
  if (servesTimers) metrics.watchPaymentsUndecidedAtPaymentSystem(() => payments.paymentsUndecided(config.PAYMENT_CONFIRMATION_GIVE_UP_MS));
  if (servesTimers) metrics.watchRefundsUnconfirmedGivenUp(() => refunds.partsGivenUp(config.REFUND_CONFIRMATION_GIVE_UP_MS));
  // and the SKUs the shop took off sale: one forgotten there sells nothing
  if (servesTimers) metrics.watchSkusOffSale(() => deps.catalog.countOffSale());
  // and the coupons running with a total limit (the first so many orders), with the uses their orders hold
  if (servesTimers) {
    const coupons = new CouponRepository(deps.db);
    metrics.watchCouponUses(async () =>
      Promise.all((await coupons.limitedRunning(new Date())).map(async (coupon) => ({ ...coupon, usesHeld: await deps.inventory.couponUsesHeld(coupon.code) }))),
    );
  }
  // and, where it runs the stock check, how far behind the check's folded sums are
  if (servesTimers && config.RECONCILE_INTERVAL_MS > 0) {
    const ledger = new StockLedgerRepository(deps.db);
    metrics.watchLedgerFold(() => ledger.oldestUnfoldedAge());
  }
  const scheduled = servesTimers ? schedules.filter((schedule) => schedule.everyMs > 0).map((schedule) => keepScheduled(queues.timers, schedule, log)) : [];
  const unscheduling = servesTimers
    ? [...switchedOff.values()].map(async (schedule) => unschedule(queues.timers, schedule, log).catch((error: unknown) => log.error({ err: error }, `could not remove the schedule of ${schedule.what}, which is off`)))
    : [];

  const served = new Set(workers.map((worker) => worker.name));
  const backstop = new DeadLetterBackstop({ redis: deps.redis, queues: queues.all.filter((queue) => served.has(queue.name)), deadLetter: queues.deadLetter, metrics, log }, { intervalMs: config.SWEEP_INTERVAL_MS }).start();

  const sweeper = config.WORKER_QUEUES.includes(QUEUE.orders)
    ? new StrandedOrderSweeper(deps, { intervalMs: config.SWEEP_INTERVAL_MS, strandedAfterMs: config.STRANDED_ORDER_AFTER_MS, pageSize: config.SWEEP_PAGE_SIZE }).start()
    : undefined;

  const publishes = config.WORKER_QUEUES.includes('events');
  // a WAIT holds its connection while a replica is away: the publisher's own, so that nothing else waits behind it
  const replicatedEvents = publishes && config.EVENTS_REPLICA_ACKS > 0 ? deps.redis.duplicate() : undefined;
  replicatedEvents?.on('error', () => {});
  const publisher = publishes
    ? new OrderEventPublisher(
        { redis: deps.redis, events: new OrderEventRepository(deps.db), metrics, log },
        {
          maxLen: config.EVENTS_STREAM_MAXLEN,
          keptMs: config.EVENTS_STREAM_KEPT_MS,
          pollMs: config.EVENTS_POLL_MS,
          batchSize: config.EVENTS_BATCH_SIZE,
          // a turn uses the lock's connection once: its statements (4 at most, each within MYSQL_QUERY_TIMEOUT_MS),
          // its XADDs (REDIS_COMMAND_TIMEOUT_MS), their WAIT and its pause come between; twice that, as a statement
          // may first wait for a connection of the pool (86 s by default)
          lockLapseMs: 2 * (4 * config.MYSQL_QUERY_TIMEOUT_MS + config.REDIS_COMMAND_TIMEOUT_MS + config.EVENTS_REPLICA_TIMEOUT_MS + config.EVENTS_POLL_MS),
          deliveriesKeptMs: config.WEBHOOK_DELIVERIES_KEPT_MS,
          webhooks: {
            streamKey: orderEventStreamKey(config.REDIS_KEY_PREFIX),
            batchSize: config.WEBHOOK_BATCH_SIZE,
            timeoutMs: config.WEBHOOK_TIMEOUT_MS,
            backoffMs: config.WEBHOOK_BACKOFF_MS,
            maxBackoffMs: config.WEBHOOK_MAX_BACKOFF_MS,
            privateReceivers: config.WEBHOOK_PRIVATE_RECEIVERS,
          },
          replication: replicatedEvents && { acks: config.EVENTS_REPLICA_ACKS, timeoutMs: config.EVENTS_REPLICA_TIMEOUT_MS, connection: replicatedEvents },
        },
      ).start()
    : undefined;

  let waiting: () => string | undefined = () => undefined;
  return {
    deps,
    workers,
    sweeper,
    async ready() {
      await Promise.all([deps.redis.ping(), sql`SELECT 1`.execute(deps.db)]);
      return true;
    },
    async close() {
      // at once: the workers stop taking jobs while a sweep's round ends, rather than after it
      const stopping = new Set<string>();
      const stopped = async (what: string, stop: Promise<unknown>) => {
        stopping.add(what);
        await stop;
        stopping.delete(what);
      };
      waiting = () => [...stopping, ...(unclosed.size > 0 ? [`the workers of ${unclosedWorkers(unclosed)}`] : [])].join('; ');
      await Promise.all([
        sweeper && stopped('the stranded-order sweep', sweeper.stop()),
        stopped('the dead-letter backstop', backstop.stop()),
        publisher && stopped('the order-event publisher', publisher.stop()),
        stopped('the schedules', Promise.all([...scheduled.map((schedule) => schedule.stop()), ...unscheduling])),
        // active jobs finish, their batches flushed
        ...workers.map((worker) => worker.close()),
        stopped('the last batch of orders', writer.drain()),
      ]);
      await writer.drain();
      life.close();
      waiting = () => 'the queues to close their Redis connections';
      await queues.close();
      waiting = () => 'the MySQL pools to close';
      if (ledgerDb !== deps.db) await ledgerDb.destroy();
      await deps.db.destroy();
      deps.redis.disconnect();
      replicatedEvents?.disconnect();
      waiting = () => undefined;
    },
    waitingFor: () => waiting(),
  };
}

/** Reads of a clock bracketed by this host's, the one of the shortest round trip kept: its midpoint is off by half that trip at most. */
const CLOCK_READS = 3;

/**
 * How far `read`'s clock is ahead of this host's, in ms: each read is placed at the middle of
 * the two reads of this host's clock around it, so neither this host's clock nor the round trip
 * counts, up to half the round trip, and the read of the shortest is kept. A single read was
 * off by 68 ms once on a loaded box (a reply waiting for the event loop).
 */
async function aheadOfThisHost(read: () => Promise<number>): Promise<number> {
  let best = { tripMs: Infinity, aheadMs: 0 };
  for (let i = 0; i < CLOCK_READS; i++) {
    const before = Date.now();
    const at = await read();
    const after = Date.now();
    if (after - before < best.tripMs) best = { tripMs: after - before, aheadMs: at - (before + after) / 2 };
  }
  return best.aheadMs;
}

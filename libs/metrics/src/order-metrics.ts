import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { answerWithin } from './answer-within.js';
import { API_PROCESS_RESTARTS, clusterMetricsText } from './cluster-metrics.js';

export type CheckoutOutcome =
  | 'accepted'
  | 'idempotent_replay'
  | 'out_of_stock'
  | 'limit_exceeded'
  | 'sale_not_active'
  | 'unknown_sku'
  | 'idempotency_conflict'
  | 'order_type_mismatch'
  | 'coupon_refused'
  | 'bucketed_sku_sold_alone'
  | 'risk_rejected'
  | 'invalid'
  | 'rate_limited'
  | 'overloaded'
  | 'in_progress'
  | 'error';

/** What a refund gives back: lines or a cancellation after payment, received units, or a whole payment of a closed order. */
export const REFUND_KINDS = ['refund', 'return', 'payment'] as const;

/**
 * A queue's jobs by state and when its oldest waiting job became ready (Unix ms; null: none
 * waits). A stuck queue starts no job, so job_wait_seconds (observed at a start) says nothing
 * then: the age of the job at its head does.
 */
type QueueCounts = Array<{ queue: string; counts: Record<string, number>; oldestWaitingSince: number | null; firstDelayedDueAt: number | null }>;
/** Things of one kind that wait in MySQL (returns for a review, refunds for the warehouse): how many, and how long the oldest has waited (seconds; 0: none waits). */
export interface WaitingInMysql {
  count: number;
  oldestWaitedSeconds: number;
}
/** Per SKU that drifts, Redis minus what the ledger says, in units, as of the stock reconciler's last pass. */
export type StockDrift = Array<{ skuId: string; available: number; reserved: number; sold: number }>;
/**
 * The stock reconciler's last report: when the check that made it finished (null when Redis
 * holds none: no check finished since Redis lost its data, or ever) and the drift it found.
 */
export interface StockReport {
  checkedAt: Date | null;
  drift: StockDrift;
  /** the SKUs some bucket of which sells, in Redis, by another flash sale than the catalog's */
  saleRulesDrift: string[];
}

/**
 * How long a reading of Redis (queue counts, the drift report) serves scrapes: /metrics is
 * open to any caller, and a flood of scrapes must not become a flood of Redis reads beside
 * the checkouts. Prometheus scrapes every few seconds, so it always gets a fresh reading.
 */
const SOURCE_MAX_AGE_MS = 1_000;
/**
 * How long a scrape waits for such a reading. A worker's Redis client holds its commands
 * until Redis is back: a scrape waiting for them would never answer, and every series of a
 * healthy worker would vanish (WorkerMissing) while the fault is Redis.
 */
const SOURCE_DEADLINE_MS = 1_000;

/**
 * A read shared by every caller within `maxAgeMs` of it, and by every caller while it is in
 * flight, so reads of an absent Redis do not pile up. A caller gets `null` when the read
 * fails or takes longer than `deadlineMs`.
 */
function readAtMostEvery<T>(maxAgeMs: number, deadlineMs: number, read: () => Promise<T>): () => Promise<T | null> {
  let last: { at: number; settled: boolean; value: Promise<T | null> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || (last.settled && now - last.at >= maxAgeMs)) {
      const reading: { at: number; settled: boolean; value: Promise<T | null> } = {
        at: now,
        settled: false,
        value: read()
          .catch(() => null)
          .finally(() => (reading.settled = true)),
      };
      last = reading;
    }
    return answerWithin(last.value, deadlineMs, null);
  };
}

/** A service the processes need (dependency_up). */
export type Dependency = 'redis' | 'mysql';

/** A coupon in force with a total limit, and the uses its orders hold (checkout's count in Redis; null while Redis has no copy of it). */
export interface CouponUses {
  code: string;
  totalLimit: number;
  usesHeld: number | null;
}

/** Bytes Redis uses and may use (maxmemory; 0 when it has no limit). */
export interface RedisMemory {
  used: number;
  max: number;
}

/** Seconds from an instant (Unix ms; null: none) to `now`, 0 for none or one still ahead: the queues' ages, at a scrape and in the api's queue listing. */
export function secondsSince(at: number | null, now: number): number {
  return at === null ? 0 : Math.max(0, now - at) / 1000;
}

/**
 * Every metric of one process, in its own registry (tests run several apps in one
 * process). Names are what the dashboards and alert rules in config/ query. A gauge that
 * reads state every process sees alike (queues, the reconciler's report) says how the
 * api's processes are aggregated under node:cluster (`aggregator`), so the instance's
 * figure is that state, not a multiple of it.
 */
export function createMetrics(labels: { app: string }) {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry });
  // a source answers null when Redis cannot be read in time: the gauges keep their last values rather than claim an empty queue or no drift
  const queueSources: Array<() => Promise<QueueCounts | null>> = [];
  let stockReportSource: (() => Promise<StockReport | null>) | undefined;
  let redisMemorySource: (() => Promise<RedisMemory | null>) | undefined;
  let ledgerUnfoldedSource: (() => Promise<number | null>) | undefined;
  let couponUsesSource: (() => Promise<CouponUses[] | null>) | undefined;
  /** A gauge per coupon in force with a total limit, read at scrapes by the workers serving timers (the others report none). */
  const couponGauge = (name: string, help: string, figure: (coupon: CouponUses) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['coupon'],
      registers: [registry],
      aggregator: 'max',
      async collect() {
        const coupons = await couponUsesSource?.();
        if (!coupons) return;
        // a coupon that ended, or lost its limit, has no series any more
        this.reset();
        for (const coupon of coupons) {
          const value = figure(coupon);
          if (value !== null) this.set({ coupon: coupon.code }, value);
        }
      },
    });
  const dependencySources = new Map<Dependency, () => Promise<true | null>>();
  /**
   * Two gauges of things that wait in MySQL, how many and how long the oldest has waited, both read
   * from one source at scrapes by the workers serving timers: every one reads the same MySQL.
   */
  const waitingInMysql = (count: { name: string; help: string }, oldest: { name: string; help: string }) => {
    let source: (() => Promise<WaitingInMysql | null>) | undefined;
    const gauge = ({ name, help }: { name: string; help: string }, figure: (waiting: WaitingInMysql) => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        aggregator: 'max',
        async collect() {
          const waiting = await source?.();
          if (waiting) this.set(figure(waiting));
        },
      });
    return {
      count: gauge(count, (waiting) => waiting.count),
      oldest: gauge(oldest, (waiting) => waiting.oldestWaitedSeconds),
      watch(read: () => Promise<WaitingInMysql>) {
        source = readAtMostEvery(SOURCE_MAX_AGE_MS, SOURCE_DEADLINE_MS, read);
      },
    };
  };
  const returnsAwaiting = waitingInMysql(
    {
      name: 'returns_awaiting_review',
      help: "Returns buyers asked for that no merchant or admin has approved or refused yet: nothing moves them on by itself (read from MySQL at scrapes by the workers serving timers; the others report none)",
    },
    {
      name: 'returns_awaiting_review_oldest_age_seconds',
      help: "How long the oldest return awaiting a merchant's review has waited, by MySQL's clock; 0 when none waits (ReturnsAwaitingReview)",
    },
  );
  const refundsHeld = waitingInMysql(
    {
      name: 'refunds_held_for_warehouse',
      help: 'Refunds of units in a parcel the warehouse holds that wait, unpaid, for it to take them out (restockHeld): paid once it has, withdrawn should the parcel leave first (read from MySQL at scrapes by the workers serving timers; the others report none)',
    },
    {
      name: 'refunds_held_for_warehouse_oldest_age_seconds',
      help: "How long the oldest refund held for the warehouse has waited since it was opened, by MySQL's clock; 0 when none waits (RefundsHeldForWarehouse)",
    },
  );
  const refundsDeclined = waitingInMysql(
    {
      name: 'refunds_declined_owed',
      help: 'Refunds the payment system declined (a part FAILED) that nobody has settled since: money buyers are still owed, which nothing asks for again by itself (an admin asks again or settles it by hand; read from MySQL at scrapes by the workers serving timers; the others report none)',
    },
    {
      name: 'refunds_declined_owed_oldest_age_seconds',
      help: "How long the oldest declined refund has been owed since its part failed, by MySQL's clock; 0 when none is (RefundsStillOwed)",
    },
  );
  /** A gauge of one figure read at scrapes from a source set later (`watch`); none exported until it is. */
  const sampled = (name: string, help: string, aggregator: 'min' | 'max') => {
    let source: (() => Promise<number | null>) | undefined;
    return {
      gauge: new Gauge({
        name,
        help,
        registers: [registry],
        aggregator,
        async collect() {
          const figure = await source?.();
          if (figure !== null && figure !== undefined) this.set(figure);
        },
      }),
      watch(read: () => Promise<number>) {
        source = readAtMostEvery(SOURCE_MAX_AGE_MS, SOURCE_DEADLINE_MS, read);
      },
    };
  };
  const redisUptime = sampled(
    'redis_uptime_seconds',
    "Seconds since Redis's youngest master started (INFO server): a restart shows as a drop. One that restarted lost what it held since its last write to its append-only file (all of it without one): reservations, counters, queued jobs",
    'min',
  );
  const redisReplicationId = sampled(
    'redis_master_replication_id',
    "A number standing for the Redis masters' replication IDs (INFO replication's master_replid: the sum of each one's first 32 bits). It changes when a failover promotes a replica (whose uptime stays long: redis_uptime_seconds does not show it) or a master restarts without its data; the new master lost the writes the old one had not passed on",
    'max',
  );
  const redisReplicasConnected = sampled(
    'redis_replicas_connected',
    'Replicas connected to the Redis master with fewest (INFO replication connected_slaves). A replica lost takes away what a failover would keep; with RESERVATION_REPLICA_ACKS above 0 checkouts wait for replicas and are refused without them',
    'min',
  );
  const redisReplicaLag = sampled(
    'redis_replica_lag_seconds',
    "Seconds since the Redis replica furthest behind last acknowledged its master (INFO replication's lag; replicas acknowledge every second): a failover to it now would lose the writes of about that long that no replica acknowledgement waited for",
    'max',
  );
  const clockOffset = sampled(
    'clock_offset_seconds',
    "Redis's clock minus MySQL's, in seconds, each read between two reads of this host's clock at scrapes (of three reads, the one of the shortest round trip). Checkout sets an order's payment deadline by Redis's clock and MySQL's enforces it: a buyer has this much longer to pay (shorter when below 0); the sale windows and timers are read on one clock each",
    'max',
  );
  const paymentsGivenUp = sampled(
    'payments_unconfirmed_given_up',
    'Payments sent to the payment system and still PENDING, never reported on (nor decided there: PROCESSING), first sent longer than PAYMENT_CONFIRMATION_GIVE_UP_MS ago: nothing asks about them any more, and an operator settles them with the payment provider (read from MySQL at scrapes by the workers serving timers; the others report none)',
    'max',
  );
  const paymentsUndecided = sampled(
    'payments_undecided_at_payment_system',
    'Payments still PENDING whose order no longer owes them, which the payment system, looked up, last answered it had not decided yet (PROCESSING), first sent less than PAYMENT_CONFIRMATION_GIVE_UP_MS ago: their callbacks are not lost (not counted in payment_confirmations_asked_again_total), and they are looked up again every PAYMENT_CONFIRMATION_WAIT_MS until then (read from MySQL at scrapes by the workers serving timers; the others report none)',
    'max',
  );
  const refundsGivenUp = sampled(
    'refunds_unconfirmed_given_up',
    'Refunds (one per payment drawn) the payment system accepted and never confirmed by its signed callback, first sent longer than REFUND_CONFIRMATION_GIVE_UP_MS ago: nothing asks for them any more, their orders wait in REFUNDING, and an operator settles them with the payment provider (read from MySQL at scrapes by the workers serving timers; the others report none)',
    'max',
  );
  const skusOffSale = sampled(
    'skus_off_sale',
    "SKUs the shop has taken off sale (PUT /v1/admin/skus/{skuId}/on-sale): every checkout of them refused until they are put back. One forgotten there sells nothing: GET /v1/admin/skus?offSale=true lists them, the console's Flash sales too (read from MySQL at scrapes by the workers serving timers; the others report none)",
    'max',
  );
  /** A gauge of each queue's age since an instant of its reading (`since`; null: none, 0 s), at this scrape: the reading may be up to a second old. */
  const queueAge = (name: string, help: string, since: (reading: QueueCounts[number]) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['queue'] as const,
      registers: [registry],
      aggregator: 'max',
      async collect() {
        const all = await Promise.all(queueSources.map((source) => source()));
        const now = Date.now();
        for (const reading of all.flatMap((counts) => counts ?? [])) this.set({ queue: reading.queue }, secondsSince(since(reading), now));
      },
    });
  // a process without the source (the api) knows no report: it exports none of the stock check's series
  const readStockReport = async (): Promise<StockReport | null> => (stockReportSource ? stockReportSource() : null);
  /**
   * A gauge of the stock check's last report with a series per SKU that drifts, `fill`ed from scratch at
   * each scrape: a SKU repaired since loses its series rather than keeping its last drift.
   */
  const driftGauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (gauge: Gauge<L>, report: StockReport) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      aggregator: 'first',
      async collect() {
        const report = await readStockReport();
        if (report === null) return;
        this.reset();
        fill(this, report);
      },
    });

  // counted by the api's primary under node:cluster; 0 in every process, so the series is there for ProcessRestarting with one process too
  new Counter({ ...API_PROCESS_RESTARTS, registers: [registry] });
  let exposition = () => registry.metrics();
  let loopSince = performance.eventLoopUtilization();

  const metrics = {
    registry,
    /** The text a scrape of /metrics gets: this process's registry, or the cluster's (shareWithCluster). */
    exposition: () => exposition(),
    /** In an api process of a node:cluster: /metrics answers for every process of the instance. */
    shareWithCluster() {
      exposition = clusterMetricsText(registry);
    },
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    eventLoopUtilization: new Gauge({
      name: 'event_loop_utilization_ratio',
      help: 'Share of the time since the last scrape the event loop was busy (0 to 1). JavaScript runs on one thread: near 1 the process takes no more work, whatever the host has left',
      registers: [registry],
      // under node:cluster the instance's figure is its processes' mean
      aggregator: 'average',
      collect() {
        const now = performance.eventLoopUtilization();
        this.set(performance.eventLoopUtilization(now, loopSince).utilization);
        loopSince = now;
      },
    }),
    checkouts: new Counter({
      name: 'checkouts_total',
      help: 'Checkout requests by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    requestBudgetsUnchecked: new Counter({
      name: 'request_budgets_unchecked_total',
      help: 'Requests whose budget the counters in Redis could not count (Redis away): each api process counted it alone, against its share of the budget (RATE_LIMIT_PER_USER or _PER_IP / API_PROCESSES), so a client reaching several processes or replicas gets more',
      registers: [registry],
    }),
    redisMemory: new Gauge({
      name: 'redis_memory_bytes',
      help: "Redis's memory (INFO memory) of its fullest master: kind used (used_memory) and max (maxmemory, 0 = no limit). Full under maxmemory-policy noeviction, Redis refuses writes: every checkout fails",
      labelNames: ['kind'] as const,
      registers: [registry],
      aggregator: 'max',
      async collect() {
        const memory = await redisMemorySource?.();
        if (!memory) return;
        this.set({ kind: 'used' }, memory.used);
        this.set({ kind: 'max' }, memory.max);
      },
    }),
    redisUptime: redisUptime.gauge,
    redisReplicationId: redisReplicationId.gauge,
    redisReplicasConnected: redisReplicasConnected.gauge,
    redisReplicaLag: redisReplicaLag.gauge,
    clockOffset: clockOffset.gauge,
    paymentsUnconfirmedGivenUp: paymentsGivenUp.gauge,
    paymentsUndecidedAtPaymentSystem: paymentsUndecided.gauge,
    refundsUnconfirmedGivenUp: refundsGivenUp.gauge,
    skusOffSale: skusOffSale.gauge,
    dependencyUp: new Gauge({
      name: 'dependency_up',
      help: 'Whether this process reached each service it needs (redis, mysql) at the last scrape, within a second: 1 yes, 0 no. It says so with no traffic, where the request metrics say nothing while a load balancer has taken every replica out',
      labelNames: ['dependency'] as const,
      registers: [registry],
      // under node:cluster the instance reaches a service when each of its processes does
      aggregator: 'min',
      async collect() {
        const reached = await Promise.all([...dependencySources].map(async ([dependency, reach]) => [dependency, await reach()] as const));
        for (const [dependency, up] of reached) this.set({ dependency }, up === null ? 0 : 1);
      },
    }),
    queueJobs: new Gauge({
      name: 'queue_jobs',
      help: 'Jobs in each queue by state (waiting, active, delayed, failed, prioritized)',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
      aggregator: 'max',
      async collect() {
        const all = await Promise.all(queueSources.map((source) => source()));
        for (const { queue, counts } of all.flatMap((counts) => counts ?? [])) {
          for (const [state, count] of Object.entries(counts)) this.set({ queue, state }, count);
        }
      },
    }),
    oldestWaitingJobAge: queueAge(
      'queue_oldest_waiting_job_age_seconds',
      'Per queue, how long its oldest waiting job (wait or prioritized) has been ready to run, 0 when none waits: it grows while no worker takes the queue\'s jobs, where job_wait_seconds, observed when a job starts, shows nothing. A job run before counts from its last start. The api and the workers both read it, so it shows while no worker runs',
      (reading) => reading.oldestWaitingSince,
    ),
    overdueDelayedJobAge: queueAge(
      'queue_overdue_delayed_job_seconds',
      'Per queue, how long its first delayed job (a timer, a retry) is past its due time, 0 when none is due: a worker serving the queue moves due jobs on to wait within a second, so it grows only while none serves it (timers: unpaid orders keep their stock, deadlines never fire). The api and the workers both read it',
      (reading) => reading.firstDelayedDueAt,
    ),
    ordersAwaitingMysql: new Gauge({
      name: 'orders_awaiting_mysql',
      help: 'Orders accepted (answered 202) and not yet written to MySQL, as the api last sampled them: the backlog it sheds checkouts by (503 OVERLOADED at QUEUE_HIGH_WATER_MARK). One job carries up to ORDERS_PER_JOB of them',
      registers: [registry],
      // every api process samples the same Redis: the instance's backlog is one sample, not their sum
      aggregator: 'max',
    }),
    ordersAwaitingMysqlHighWaterMark: new Gauge({
      name: 'orders_awaiting_mysql_high_water_mark',
      help: 'QUEUE_HIGH_WATER_MARK of the api: from this many orders_awaiting_mysql on, the intake answers checkouts 503 OVERLOADED. Only the api exports it',
      registers: [registry],
      // every api process of an instance reads the same config
      aggregator: 'max',
    }),
    jobDuration: new Histogram({
      name: 'job_duration_seconds',
      help: 'Time a worker spent on a job run that completed or failed; a run that put its job back to wait out an outage (of MySQL or an external system) or a timer is not counted',
      labelNames: ['queue', 'name'] as const,
      // up to 5 min: a quantile past the last bucket reads as that bucket, and the stock check's
      // runs take minutes on a large ledger (each statement up to RECONCILE_QUERY_TIMEOUT_MS, 5 min)
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    }),
    jobWait: new Histogram({
      name: 'job_wait_seconds',
      help: 'Time from when a job became ready until a worker first started it (queue lag); retries and re-runs are not counted again',
      labelNames: ['queue', 'name'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    jobFailures: new Counter({
      name: 'job_failures_total',
      help: 'Failed job attempts; final="true" when BullMQ failed the job for good (attempts used up, or stalled too often) and it went to the dead-letter queue: counted once per dead letter, by the worker that writes it (the one the job failed on, or a later look for failed jobs without one)',
      labelNames: ['queue', 'name', 'final'] as const,
      registers: [registry],
    }),
    transitions: new Counter({
      name: 'order_transitions_total',
      help: 'Order status transitions',
      labelNames: ['type', 'from', 'to', 'action'] as const,
      registers: [registry],
    }),
    ordersPersisted: new Counter({
      name: 'orders_persisted_total',
      help: 'Accepted orders written to MySQL',
      registers: [registry],
    }),
    persistBatchSize: new Histogram({
      name: 'persist_batch_size',
      help: 'Orders written per MySQL transaction',
      buckets: [1, 2, 5, 10, 25, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    strandedOrdersRecovered: new Counter({
      name: 'stranded_orders_recovered_total',
      help: 'Accepted orders whose job was missing and was enqueued again by the sweeper',
      registers: [registry],
    }),
    overdueOrdersExpired: new Counter({
      name: 'overdue_orders_expired_total',
      help: 'Unpaid orders (and presales owing their balance) found in MySQL past their deadline and closed by the backstop sweep (OVERDUE_SWEEP_INTERVAL_MS): their deadline job was gone',
      registers: [registry],
    }),
    overdueOrderTimers: new Counter({
      name: 'overdue_order_timers_total',
      help: 'Orders found in MySQL waiting a sweep interval (OVERDUE_SWEEP_INTERVAL_MS) past a timer, moved on by the backstop sweep as the timer would have: its job was gone. timer: auto_confirm (shipped, never confirmed), complete (after-sales window closed), close_return (an approved return whose parcel never reached the warehouse, RETURN_PARCEL_WINDOW_MS), approve_return (a return request the shop did not review, RETURN_REVIEW_WINDOW_MS)',
      labelNames: ['timer'] as const,
      registers: [registry],
    }),
    refundJobsRestored: new Counter({
      name: 'refund_jobs_restored_total',
      help: 'Refunds due for a sweep interval (OVERDUE_SWEEP_INTERVAL_MS) with no refund job, nor one failed for good (an order holding refunds due or refunded whole, or a payment taken after its order could take it; a refund waiting for the warehouse to take its units out: with no fulfilment update job): their job was gone, and the backstop sweep enqueued it again',
      registers: [registry],
    }),
    refundConfirmationsAskedAgain: new Counter({
      name: 'refund_confirmations_asked_again_total',
      help: 'Refunds (one per payment drawn) the payment system accepted and did not confirm by its signed callback within REFUND_CONFIRMATION_WAIT_MS, asked for again by their order\'s refund job (the overdue sweep enqueues it), until REFUND_CONFIRMATION_GIVE_UP_MS after they were first sent (refunds_unconfirmed_given_up)',
      registers: [registry],
    }),
    paymentConfirmationsAskedAgain: new Counter({
      name: 'payment_confirmations_asked_again_total',
      help: "Payments sent to the payment system and not reported on by its signed callback within PAYMENT_CONFIRMATION_WAIT_MS of their last request (answered or not), asked about again under their id by their request job (the overdue sweep enqueues it), whatever their order is now: one still due is asked for again (it charges nothing twice and reports it again), one no longer due is looked up (given back if taken, failed if declined or never received), until PAYMENT_CONFIRMATION_GIVE_UP_MS after it was first sent (payments_unconfirmed_given_up). One looked up and found undecided there (PROCESSING) is not counted: its callback is not lost, the payment system has none to send yet (payments_undecided_at_payment_system)",
      registers: [registry],
    }),
    handOversRestored: new Counter({
      name: 'hand_overs_restored_total',
      help: 'Paid orders waiting a sweep interval (OVERDUE_SWEEP_INTERVAL_MS) for their warehouse with no job to settle or hand them over, nor one failed for good: their job was gone, and the backstop sweep enqueued it again',
      registers: [registry],
    }),
    parcelsShippedAfterRefund: new Counter({
      name: 'parcels_shipped_after_refund_total',
      help: "Parcels the warehouse reported SHIPPED for orders refunded whole (or, imported, cancelled) before they shipped: the update dropping the parcel came too late. The buyer has the money back and the goods on their way, and the units are on sale again though they left",
      registers: [registry],
    }),
    fulfilmentChangesTooLate: new Counter({
      name: 'fulfilment_changes_too_late_total',
      help: 'Parcels the warehouse refused a change of (a new address, units refunded, every unit refunded) because they had left already, counted once per parcel: each goes to its old address, or with the units refunded',
      registers: [registry],
    }),
    paymentCallbacksUnknown: new Counter({
      name: 'payment_callbacks_unknown_total',
      help: "Payment callbacks signed with this shop's secret that name what MySQL has no record of, answered 404: about=order (the order), payment (a payment of a known order), refund (a refund part). Money the payment system took or gave back that this system does not know: MySQL restored from a backup or a replica promoted behind, or the callbacks of another environment that shares the secret",
      labelNames: ['about'] as const,
      registers: [registry],
    }),
    paymentAmountMismatches: new Counter({
      name: 'payment_amount_mismatches_total',
      help: "Payment callbacks, or lookups of a payment whose order no longer owes it (its callback lost), naming another amount than the payment asked for. outcome=given_back: reported taken, the money was recorded as taken for the amount named and given back whole, and the order stays payable; outcome=declined: a decline reported for another amount, recorded as declined (nothing was taken) and the buyer pays again; outcome=refused: a payment already settled reported for another amount, answered 422 AMOUNT_MISMATCH",
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    returnParcelsAfterClose: new Counter({
      name: 'return_parcels_after_close_total',
      help: 'Returned parcels the warehouse reported received for returns closed as never sent (by staff, or RETURN_PARCEL_WINDOW_MS after their approval) or refused: the units are back, nothing was paid back, and staff settle with the buyer. Also receipts naming no return for an order with an open return and a closed or refused one, refused 400: staff report them naming the return',
      registers: [registry],
    }),
    acceptedOrdersLost: new Counter({
      name: 'accepted_orders_lost_total',
      help: 'Accepted orders (the buyer had a 202) found not in MySQL with their reservation gone from Redis, so they cannot be persisted',
      registers: [registry],
    }),
    circuitBreakerState: new Gauge({
      name: 'circuit_breaker_state',
      help: 'State of the circuit breaker in front of an external system: 0 closed, 1 half-open, 2 open',
      labelNames: ['breaker'] as const,
      registers: [registry],
      // each process has its own breakers: the instance is as open as its most open one
      aggregator: 'max',
    }),
    externalCalls: new Counter({
      name: 'external_calls_total',
      help: 'Calls to external systems by outcome: success, failure, timeout, rejected (breaker open), refused (4xx)',
      labelNames: ['system', 'outcome'] as const,
      registers: [registry],
    }),
    refunds: new Counter({
      name: 'order_refunds_total',
      help: 'Refunds settled, by kind (refund: lines or a cancellation after payment; return: received units; payment: a whole payment of a closed order) and outcome (succeeded, failed: by the payment system; settled_by_hand: paid back another way, an admin said; succeeded_after_settled_by_hand: the payment system paid back a part settled by hand, so the buyer twice; asked_again: an admin asked the payment system again for a refund it had failed to pay back; sent_again: an admin asked it again for a refund it accepted and never confirmed within REFUND_CONFIRMATION_GIVE_UP_MS; succeeded_after_asked_again: it paid back the declined part after all, so the buyer twice unless the part asked again failed too; withdrawn: its units left with the parcel before the warehouse took them out, nothing paid back)',
      labelNames: ['kind', 'outcome'] as const,
      registers: [registry],
    }),
    refundedCents: new Counter({
      name: 'order_refunded_cents_total',
      help: 'Money paid back to buyers, in cents, by kind (refund, return, payment), counted when the payment system confirms it',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    returns: new Counter({
      name: 'order_returns_total',
      help: 'Returns by stage: requested by the buyer; approved, refused or closed (its parcel never came back) by the shop; received by the warehouse',
      labelNames: ['stage'] as const,
      registers: [registry],
    }),
    cancellations: new Counter({
      name: 'order_cancellations_total',
      help: 'Orders cancelled, by stage: before_payment (stock and coupon released), after_payment (refunded in full), paid_in_channel (an imported order, its warehouse told to drop the parcel; its channel refunds it), deposit_forfeited (a presale whose buyer cancelled after the deposit)',
      labelNames: ['stage'] as const,
      registers: [registry],
    }),
    ordersImported: new Counter({
      name: 'orders_imported_total',
      help: 'Orders imported from other business order systems, by their channel',
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    importedOrderConflicts: new Counter({
      name: 'imported_order_conflicts_total',
      help: "Imported orders sent again by their channel with a status they cannot reach here (cancelled in the channel, its buyer paid back there, but shipped here; or shipped or delivered in the channel but cancelled here), by channel: left as they are (outcome conflict), for the shop to settle with the channel. Counted at each sending that reports one, so a replayed export counts its conflicts again",
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    orderEventsPublished: new Counter({
      name: 'order_events_published_total',
      help: 'Order events moved from the outbox (order_history) to the order-event stream',
      registers: [registry],
    }),
    orderEventsBehind: new Gauge({
      name: 'order_events_unpublished',
      help: 'Outbox rows not yet on the order-event stream, as of the publisher\'s last pass',
      registers: [registry],
      aggregator: 'max',
    }),
    webhookCursorsTrimmed: new Counter({
      name: 'webhook_cursors_trimmed_total',
      help: 'Times a webhook was found behind the trimmed order-event stream (EVENTS_STREAM_MAXLEN, EVENTS_STREAM_KEPT_MS): events after its cursor were dropped',
      registers: [registry],
    }),
    webhookBehind: new Gauge({
      name: 'webhook_behind_seconds',
      help: "How long ago the oldest order event a webhook's receiver has not acknowledged was put on the stream (0: it has every event), by webhook (its id), as the order-event publisher last looked; the other workers report none",
      labelNames: ['webhook'] as const,
      registers: [registry],
      aggregator: 'max',
    }),
    webhookMissingEvents: new Gauge({
      name: 'webhook_missing_events',
      help: 'By webhook (its id): 1 while the order-event stream has dropped events after its cursor (EVENTS_STREAM_MAXLEN, EVENTS_STREAM_KEPT_MS) that its receiver never got, until it acknowledges the events after them; else 0',
      labelNames: ['webhook'] as const,
      registers: [registry],
      aggregator: 'max',
    }),
    orderEventsStreamSpan: new Gauge({
      name: 'order_events_stream_span_seconds',
      help: 'How long ago the oldest event the order-event stream keeps was put on it: a webhook behind by as long loses what the next trim drops (as the order-event publisher last read it; 0 elsewhere)',
      registers: [registry],
      aggregator: 'max',
    }),
    webhookDeliveries: new Counter({
      name: 'webhook_deliveries_total',
      help: 'Webhook delivery attempts (each a batch of events) by webhook (its id) and outcome: delivered, failed',
      labelNames: ['webhook', 'outcome'] as const,
      registers: [registry],
    }),
    stockDrift: driftGauge(
      'stock_drift_units',
      "Units by which a SKU's sellable count in Redis differs from the MySQL ledger (Redis minus ledger), as of the stock reconciler's last pass (stock_reconcile_last_success_timestamp_seconds says when). Only SKUs that differ have a series: none means no drift",
      ['sku'],
      (gauge, report) => {
        for (const sku of report.drift) if (sku.available !== 0) gauge.set({ sku: sku.skuId }, sku.available);
      },
    ),
    stockCounterDrift: driftGauge(
      'stock_counter_drift_units',
      "Units by which a SKU's reserved or sold counter in Redis differs from the MySQL ledger, as of the stock reconciler's last pass (stock_reconcile_last_success_timestamp_seconds says when). Only counters that differ have a series: none means no drift",
      ['sku', 'counter'],
      (gauge, report) => {
        for (const sku of report.drift) {
          for (const counter of ['reserved', 'sold'] as const) if (sku[counter] !== 0) gauge.set({ sku: sku.skuId, counter }, sku[counter]);
        }
      },
    ),
    saleRulesDrift: driftGauge(
      'flash_sale_rules_drift',
      "1 for each SKU some bucket of which sells, in Redis, by another flash sale (window or per-buyer limit) than the catalog's, which orders are priced by, as of the stock reconciler's last pass: a sale change answered 503 and never sent again. npm run reconcile -- --repair puts the catalog's back. Only such SKUs have a series: none means none",
      ['sku'],
      (gauge, report) => {
        for (const skuId of report.saleRulesDrift) gauge.set({ sku: skuId }, 1);
      },
    ),
    stockCheckedAt: new Gauge({
      name: 'stock_reconcile_last_success_timestamp_seconds',
      help: "When the stock check whose report the drift gauges show finished (scheduled every RECONCILE_INTERVAL_MS, or npm run reconcile), in Unix seconds; 0 when Redis holds no report. A check that fails or never runs leaves it, and the drift gauges, as they were: time() minus it is how old the drift shown is",
      registers: [registry],
      aggregator: 'max',
      async collect() {
        const report = await readStockReport();
        if (report === null) return;
        this.set(report.checkedAt === null ? 0 : report.checkedAt.getTime() / 1000);
      },
    }),
    currencyMinorUnits: new Gauge({
      name: 'shop_currency_minor_units',
      help: "How many of the shop's currency's minor units make one unit (SHOP_CURRENCY, labelled: 100 for USD, EUR or GBP, 1 for JPY): the *_cents metrics count minor units, and the dashboards' money panels divide by it",
      labelNames: ['currency'],
      registers: [registry],
      aggregator: 'max',
    }),
    stockCheckInterval: new Gauge({
      name: 'stock_reconcile_interval_seconds',
      help: 'How often this worker has the stock check scheduled (RECONCILE_INTERVAL_MS), in seconds; 0 when it is turned off. StockCheckStale measures the age of stock_reconcile_last_success_timestamp_seconds against it',
      registers: [registry],
      aggregator: 'max',
    }),
    returnsAwaitingReview: returnsAwaiting.count,
    oldestReturnAwaitingReview: returnsAwaiting.oldest,
    returnReviewWindow: new Gauge({
      name: 'return_review_window_seconds',
      help: 'How long after it was asked the system approves a return request nobody reviewed (RETURN_REVIEW_WINDOW_MS), in seconds, as each worker serving timers is configured. ReturnsAwaitingReview measures returns_awaiting_review_oldest_age_seconds against it',
      registers: [registry],
      aggregator: 'max',
    }),
    refundsHeldForWarehouse: refundsHeld.count,
    oldestRefundHeldForWarehouse: refundsHeld.oldest,
    refundsDeclinedOwed: refundsDeclined.count,
    oldestRefundDeclinedOwed: refundsDeclined.oldest,
    oldestLedgerRowUnfolded: new Gauge({
      name: 'stock_ledger_oldest_unfolded_row_age_seconds',
      help: "How old, by MySQL's clock, the oldest stock ledger row past the stock check's folded sums is: every check reads the rows since one by one. About an hour while each check folds what is over an hour old; growing when folds fail (the workers' warning 'could not fold the settled ledger rows'), and each check reads more (read from MySQL at scrapes by the workers serving timers; 0 with no row past the sums)",
      registers: [registry],
      aggregator: 'max',
      async collect() {
        const seconds = await ledgerUnfoldedSource?.();
        if (seconds !== null && seconds !== undefined) this.set(seconds);
      },
    }),
    /** Sets where the age of the oldest ledger row not folded is read at scrapes (at most once a second, waiting at most a second). */
    watchLedgerFold(source: () => Promise<number>) {
      ledgerUnfoldedSource = readAtMostEvery(SOURCE_MAX_AGE_MS, SOURCE_DEADLINE_MS, source);
    },
    couponUsesHeld: couponGauge(
      'coupon_uses_held',
      "Uses of a coupon in force with a total limit (the first so many orders) that orders hold: checkout's count in Redis, of orders accepted with it that neither gave the use back nor lost it. At coupon_total_limit checkouts with it answer 422 COUPON_LIMIT_EXCEEDED. No series while Redis has no copy of the coupon (read at scrapes by the workers serving timers)",
      (coupon) => coupon.usesHeld,
    ),
    couponTotalLimit: couponGauge(
      'coupon_total_limit',
      'The total limit of each coupon in force that has one: at most this many orders hold a use at once (read from MySQL at scrapes by the workers serving timers)',
      (coupon) => coupon.totalLimit,
    ),
    /** Sets where the coupons in force with a total limit, and their uses, are read at scrapes (at most once a second, waiting at most a second). */
    watchCouponUses(source: () => Promise<CouponUses[]>) {
      couponUsesSource = readAtMostEvery(SOURCE_MAX_AGE_MS, SOURCE_DEADLINE_MS, source);
    },
    /** Sets where the returns awaiting review are read at scrapes (at most once a second, waiting at most a second). */
    watchReturnsAwaitingReview: returnsAwaiting.watch,
    /** Sets where the refunds held for the warehouse are read at scrapes (at most once a second, waiting at most a second). */
    watchRefundsHeldForWarehouse: refundsHeld.watch,
    /** Sets where the refunds declined and still owed are read at scrapes (at most once a second, waiting at most a second). */
    watchRefundsDeclinedOwed: refundsDeclined.watch,
    /** Sets where the stock check's gauges read the reconciler's last report at scrapes (at most once a second, waiting at most a second). */
    watchStockReport(source: () => Promise<StockReport>) {
      stockReportSource = readAtMostEvery(SOURCE_MAX_AGE_MS, SOURCE_DEADLINE_MS, source);
    },
    /** Sets how Redis's memory is read at scrapes (at most once a second, waiting at most a second). */
    watchRedisMemory(source: () => Promise<RedisMemory>) {
      redisMemorySource = readAtMostEvery(SOURCE_MAX_AGE_MS, SOURCE_DEADLINE_MS, source);
    },
    /** Sets how Redis's uptime is read at scrapes (at most once a second, waiting at most a second). */
    watchRedisUptime: redisUptime.watch,
    /** Sets how the Redis masters' replication IDs are read at scrapes (at most once a second, waiting at most a second). */
    watchRedisReplicationId: redisReplicationId.watch,
    /** Sets how the Redis masters' replicas are read at scrapes (at most once a second, waiting at most a second). */
    watchRedisReplicas(read: () => Promise<{ connected: number; lagSeconds: number }>) {
      redisReplicasConnected.watch(async () => (await read()).connected);
      redisReplicaLag.watch(async () => (await read()).lagSeconds);
    },
    /** Sets how Redis's clock is read against MySQL's at scrapes (at most once a second, waiting at most a second). */
    watchClockOffset: clockOffset.watch,
    /** Sets where the payments no longer asked about are read at scrapes (at most once a second, waiting at most a second). */
    watchPaymentsUnconfirmedGivenUp: paymentsGivenUp.watch,
    /** Sets where the payments looked up and found undecided at the payment system are read at scrapes (at most once a second, waiting at most a second). */
    watchPaymentsUndecidedAtPaymentSystem: paymentsUndecided.watch,
    /** Sets where the refunds no longer asked for are read at scrapes (at most once a second, waiting at most a second). */
    watchRefundsUnconfirmedGivenUp: refundsGivenUp.watch,
    /** Sets where the SKUs off sale are counted at scrapes (at most once a second, waiting at most a second). */
    watchSkusOffSale: skusOffSale.watch,
    /** Adds a service this process needs, reached at scrapes (at most once a second, waiting at most a second) for dependency_up. */
    watchDependency(dependency: Dependency, reach: () => Promise<unknown>) {
      dependencySources.set(
        dependency,
        readAtMostEvery(SOURCE_MAX_AGE_MS, SOURCE_DEADLINE_MS, async () => {
          await reach();
          return true as const;
        }),
      );
    },
    /** Adds a source of queue counts (and of the oldest waiting jobs, for queue_oldest_waiting_job_age_seconds) read at scrapes (at most once a second, waiting at most a second). */
    watchQueues(source: () => Promise<QueueCounts>) {
      queueSources.push(readAtMostEvery(SOURCE_MAX_AGE_MS, SOURCE_DEADLINE_MS, source));
    },
  };
  // the reverse flows' series exist from the start at 0: rate() misses the first event of a
  // series that appears with it, and a quiet shop's dashboards show 0 rather than no data
  for (const kind of REFUND_KINDS) {
    for (const outcome of ['succeeded', 'failed', 'settled_by_hand', 'succeeded_after_settled_by_hand', 'asked_again', 'succeeded_after_asked_again', 'sent_again', 'withdrawn']) metrics.refunds.inc({ kind, outcome }, 0);
    metrics.refundedCents.inc({ kind }, 0);
  }
  for (const stage of ['requested', 'approved', 'refused', 'closed', 'received']) metrics.returns.inc({ stage }, 0);
  for (const outcome of ['given_back', 'declined', 'refused']) metrics.paymentAmountMismatches.inc({ outcome }, 0);
  for (const about of ['order', 'payment', 'refund']) metrics.paymentCallbacksUnknown.inc({ about }, 0);
  for (const stage of ['before_payment', 'after_payment', 'paid_in_channel', 'deposit_forfeited']) metrics.cancellations.inc({ stage }, 0);
  for (const timer of ['auto_confirm', 'complete', 'close_return', 'approve_return']) metrics.overdueOrderTimers.inc({ timer }, 0);
  // prom-client starts a gauge without labels at 0, which would claim "never checked" before any report was read,
  // and "turned off" in a process that schedules no check (the api)
  metrics.stockCheckedAt.remove();
  metrics.stockCheckInterval.remove();
  // nor a mark of 0 in a process that sheds nothing (the workers): the share of the mark reached would divide by it
  metrics.ordersAwaitingMysqlHighWaterMark.remove();
  // nor 0 returns waiting in a process that does not read them (the api, workers not serving timers)
  metrics.returnsAwaitingReview.remove();
  metrics.oldestReturnAwaitingReview.remove();
  metrics.refundsHeldForWarehouse.remove();
  metrics.oldestRefundHeldForWarehouse.remove();
  // nor a Redis just started in a process that does not read it (the api)
  metrics.redisUptime.remove();
  metrics.redisReplicationId.remove();
  metrics.redisReplicasConnected.remove();
  metrics.redisReplicaLag.remove();
  metrics.clockOffset.remove();
  metrics.refundsDeclinedOwed.remove();
  metrics.oldestRefundDeclinedOwed.remove();
  metrics.paymentsUnconfirmedGivenUp.remove();
  metrics.paymentsUndecidedAtPaymentSystem.remove();
  metrics.refundsUnconfirmedGivenUp.remove();
  metrics.skusOffSale.remove();
  metrics.oldestLedgerRowUnfolded.remove();
  return metrics;
}

export type OrderMetrics = ReturnType<typeof createMetrics>;

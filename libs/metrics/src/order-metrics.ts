import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type CheckoutOutcome =
  | 'accepted'
  | 'idempotent_replay'
  | 'out_of_stock'
  | 'limit_exceeded'
  | 'sale_not_active'
  | 'unknown_sku'
  | 'idempotency_conflict'
  | 'order_type_mismatch'
  | 'invalid'
  | 'overloaded'
  | 'error';

type QueueCounts = Array<{ queue: string; counts: Record<string, number> }>;

/**
 * Every metric of one process, in its own registry (tests run several apps in one
 * process). Names are what the dashboards and alert rules in config/ query.
 */
export function createMetrics(labels: { app: string }) {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry });
  const queueSources: Array<() => Promise<QueueCounts>> = [];

  const metrics = {
    registry,
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    checkouts: new Counter({
      name: 'checkouts_total',
      help: 'Checkout requests by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    queueJobs: new Gauge({
      name: 'queue_jobs',
      help: 'Jobs in each queue by state (waiting, active, delayed, failed, prioritized)',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
      async collect() {
        const all = await Promise.all(queueSources.map((source) => source().catch(() => [] as QueueCounts)));
        for (const { queue, counts } of all.flat()) {
          for (const [state, count] of Object.entries(counts)) this.set({ queue, state }, count);
        }
      },
    }),
    jobDuration: new Histogram({
      name: 'job_duration_seconds',
      help: 'Time a worker spent processing a job',
      labelNames: ['queue', 'name'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    jobWait: new Histogram({
      name: 'job_wait_seconds',
      help: 'Time from when a job became ready until a worker started it (queue lag)',
      labelNames: ['queue', 'name'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    jobFailures: new Counter({
      name: 'job_failures_total',
      help: 'Failed job attempts; final="true" when the job used up its attempts and went to the dead-letter queue',
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
    /** Adds a source of queue counts read at every scrape. */
    watchQueues(source: () => Promise<QueueCounts>) {
      queueSources.push(source);
    },
  };
  return metrics;
}

export type OrderMetrics = ReturnType<typeof createMetrics>;

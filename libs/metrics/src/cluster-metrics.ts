import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';

/*
 * With API_PROCESSES > 1 the api's processes share one port (node:cluster), so a scrape of
 * /metrics reaches whichever process accepted the connection. Answered from that process's
 * registry alone, every scrape would show another process's counters and rate() would read
 * nonsense. Instead the process asks the primary, which gathers every process's registry
 * and answers with the instance as a whole (prom-client's aggregation: counters and
 * histograms summed, each gauge by its `aggregator`).
 *
 * A process that dies (and is started again) takes its counts with it: summed over the live
 * processes alone, the instance's counters would fall, and rate() and increase() read the
 * survivors' whole lifetime as new (a critical alert on refunds that failed hours ago). So the
 * primary keeps the counters and histograms each process last reported, and adds those of
 * the processes gone to every answer: the instance's counters never go back.
 *
 * Two series are the primary's own, summed first: `process_start_time_seconds`, the instance's
 * start (prom-client omits the processes' own), and `api_process_restarts_total`, the processes
 * it started again after one died. A process in a crash loop is started again by the primary,
 * not by the orchestrator, so the instance's start time alone would never show it
 * (ProcessRestarting reads both).
 */

/** An api process asks the primary for the instance's metrics, */
const REQUEST = 'orders:cluster-metrics-request';
/** the primary asks every api process for its own, */
const GATHER = 'orders:cluster-metrics-gather';
/** each answers with its registry, */
const GATHERED = 'orders:cluster-metrics-gathered';
/** and the primary answers the asking process with their sum. */
const ANSWER = 'orders:cluster-metrics-answer';
/**
 * How long the primary waits for the processes; one that has not answered counts as it last did
 * (a process started again answers once it is up). Well within Prometheus's scrape timeout
 * (its 5 s interval), so the scrape gets that answer rather than timing out.
 */
const GATHER_TIMEOUT_MS = 2_000;
/** The processes gone whose counts are kept apart before they are summed into one. */
const GONE_KEPT_APART = 16;
/** Longer than the primary's own wait for the processes, so its answer arrives first. */
const ANSWER_TIMEOUT_MS = 3_000;

type ProcessMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

interface MetricsRequest {
  type: typeof REQUEST;
  id: number;
}

interface GatherRequest {
  type: typeof GATHER;
  id: number;
}

interface Gathered {
  type: typeof GATHERED;
  id: number;
  metrics: ProcessMetrics;
}

interface MetricsAnswer {
  type: typeof ANSWER;
  id: number;
  text?: string;
  error?: string;
}

/** What outlives a process: its counts (counters, histograms), not its gauges, which said how it stood. */
const countsOf = (metrics: ProcessMetrics): ProcessMetrics => metrics.filter((metric) => ['counter', 'histogram'].includes(String(metric.type)));

/**
 * The event loop's lag of the instance is its worst process's, not prom-client's mean of them:
 * one process stuck behind CPU-bound work would read as half its lag with two (EventLoopLagging).
 * The lowest lag stays the lowest.
 */
const worstLag = (metrics: ProcessMetrics): ProcessMetrics =>
  metrics.map((metric) => (metric.name.startsWith('nodejs_eventloop_lag_') && metric.name !== 'nodejs_eventloop_lag_min_seconds' ? { ...metric, aggregator: 'max' } : metric));

/** The instance's metrics from its registries' (processes gone as they last reported), with the lag of the worst process. */
export function aggregateProcesses(processes: ProcessMetrics[]): Registry {
  return AggregatorRegistry.aggregate(processes.map(worstLag));
}

/** api processes the primary started again; every process exports it at 0 (createMetrics), so the series exists without a cluster too. */
export const API_PROCESS_RESTARTS = {
  name: 'api_process_restarts_total',
  help: 'api processes of this instance (API_PROCESSES > 1) that exited while it ran, and that its primary started again',
} as const;

/** The primary's own series, summed with the processes'. */
export interface InstanceMetrics {
  /** An api process died and the primary started another in its place. */
  processRestarted(): void;
}

/** In the cluster's primary: answers each api process's request for the whole instance's metrics. */
export function serveClusterMetrics(labels: { app: string }): InstanceMetrics {
  const own = new Registry();
  own.setDefaultLabels(labels);
  // first among the registries summed, its aggregator is the one used: the primary's start, not the processes'
  new Gauge({ name: 'process_start_time_seconds', help: "Start time of the instance's primary process since unix epoch in seconds", registers: [own], aggregator: 'first' }).set(
    Math.round(Date.now() / 1000 - process.uptime()),
  );
  const restarts = new Counter({ ...API_PROCESS_RESTARTS, registers: [own] });
  const lastReported = new Map<number, ProcessMetrics>();
  /** the counts of the processes gone, summed now and then into the first */
  let gone: ProcessMetrics[] = [];
  let summing = false;
  const gathering = new Map<number, { waitingFor: Set<number>; done: () => void }>();
  let nextId = 0;

  cluster.on('exit', (worker) => {
    const last = lastReported.get(worker.id);
    lastReported.delete(worker.id);
    // kept at once, before a scrape waiting for this process is answered without it; a crash loop's many summed into one, kept until the sum is
    if (last) gone.push(countsOf(last));
    for (const gather of gathering.values()) if (gather.waitingFor.delete(worker.id) && gather.waitingFor.size === 0) gather.done();
    if (!last || gone.length <= GONE_KEPT_APART || summing) return;
    summing = true;
    const summed = gone.length;
    void aggregateProcesses(gone.slice(0, summed))
      .getMetricsAsJSON()
      .then((sum) => (gone = [sum, ...gone.slice(summed)]))
      .finally(() => (summing = false));
  });

  /** Every live process's metrics, as it answers now or, failing that, as it last reported them. */
  const gather = (): Promise<ProcessMetrics[]> => {
    const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker?.isConnected() === true);
    const id = nextId++;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        gathering.delete(id);
        // each as it answered now, or as it last did
        resolve([...lastReported.values()]);
      };
      const timer = setTimeout(done, GATHER_TIMEOUT_MS);
      const waitingFor = new Set(workers.map((worker) => worker.id));
      gathering.set(id, { waitingFor, done });
      if (waitingFor.size === 0) return done();
      for (const worker of workers) worker.send({ type: GATHER, id } satisfies GatherRequest);
    });
  };

  cluster.on('message', (worker, message: Partial<MetricsRequest | Gathered>) => {
    if (message?.type === GATHERED && typeof message.id === 'number' && Array.isArray(message.metrics)) {
      // an answer that came after its process's exit: its counts are among those gone already
      if (!cluster.workers?.[worker.id]) return;
      lastReported.set(worker.id, message.metrics);
      const waiting = gathering.get(message.id);
      if (waiting?.waitingFor.delete(worker.id) && waiting.waitingFor.size === 0) waiting.done();
      return;
    }
    if (message?.type !== REQUEST || typeof message.id !== 'number') return;
    const id = message.id;
    const answer = (reply: Omit<MetricsAnswer, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: ANSWER, id, ...reply } satisfies MetricsAnswer);
    };
    gather()
      .then(async (live) => aggregateProcesses([await own.getMetricsAsJSON(), ...gone, ...live]).metrics())
      .then(
        (text) => answer({ text }),
        (error: unknown) => answer({ error: error instanceof Error ? error.message : String(error) }),
      );
  });
  return { processRestarted: () => restarts.inc() };
}

/**
 * In an api process of the cluster: gives the primary its registry when asked, and returns
 * what /metrics answers with, the instance's metrics as the primary aggregated them.
 */
export function clusterMetricsText(registry: Registry): () => Promise<string> {
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  process.on('message', (message: Partial<MetricsAnswer | GatherRequest>) => {
    if (message?.type === GATHER && typeof message.id === 'number') {
      const id = message.id;
      void registry.getMetricsAsJSON().then((metrics) => process.send?.({ type: GATHERED, id, metrics } satisfies Gathered));
      return;
    }
    if (message?.type !== ANSWER || typeof message.id !== 'number') return;
    const request = waiting.get(message.id);
    if (!request) return;
    waiting.delete(message.id);
    if (typeof message.text === 'string') request.resolve(message.text);
    else request.reject(new Error(`the api's primary could not gather the metrics: ${message.error ?? 'no answer'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`the api's primary did not answer for the metrics within ${ANSWER_TIMEOUT_MS} ms`));
      }, ANSWER_TIMEOUT_MS);
      waiting.set(id, {
        resolve: (text) => (clearTimeout(timer), resolve(text)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      process.send?.({ type: REQUEST, id } satisfies MetricsRequest);
    });
}

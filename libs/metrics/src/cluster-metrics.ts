import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/*
 * With API_PROCESSES > 1 the api's processes share one port (node:cluster), so a scrape of
 * /metrics reaches whichever process accepted the connection. Answered from that process's
 * registry alone, every scrape would show another process's counters and rate() would read
 * nonsense. Instead the process asks the primary, which gathers every process's registry
 * (prom-client's AggregatorRegistry: counters and histograms summed, each gauge by its
 * `aggregator`) and answers with the instance as a whole.
 */

const REQUEST = 'orders:cluster-metrics-request';
const ANSWER = 'orders:cluster-metrics-answer';
/** Longer than AggregatorRegistry's own 5 s wait for the processes, so its error arrives first. */
const ANSWER_TIMEOUT_MS = 6_000;

interface MetricsRequest {
  type: typeof REQUEST;
  id: number;
}

interface MetricsAnswer {
  type: typeof ANSWER;
  id: number;
  text?: string;
  error?: string;
}

/** In the cluster's primary: answers each api process's request for the whole instance's metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: Partial<MetricsRequest>) => {
    if (message?.type !== REQUEST || typeof message.id !== 'number') return;
    const id = message.id;
    const answer = (reply: Omit<MetricsAnswer, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: ANSWER, id, ...reply } satisfies MetricsAnswer);
    };
    aggregator.clusterMetrics().then(
      (text) => answer({ text }),
      (error: unknown) => answer({ error: error instanceof Error ? error.message : String(error) }),
    );
  });
}

/**
 * In an api process of the cluster: offers `registry` to the primary's aggregation and
 * returns what /metrics answers with, the instance's metrics as the primary aggregated them.
 */
export function clusterMetricsText(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries(registry);
  // constructing one is what makes prom-client answer the primary's requests in this process
  new AggregatorRegistry();
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  process.on('message', (message: Partial<MetricsAnswer>) => {
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

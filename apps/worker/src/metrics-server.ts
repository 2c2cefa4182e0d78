import { createServer, type Server } from 'node:http';
import { answerWithin, type OrderMetrics } from '@orders/metrics';

/**
 * How long /health/ready waits for Redis and MySQL, as the api's readiness does: the worker's
 * Redis client holds its commands until Redis is back, and a probe that never answers reads
 * as a dead worker rather than an absent Redis.
 */
const READY_TIMEOUT_MS = 1_000;

/** A worker has no Fastify: a small server gives Prometheus /metrics and orchestrators /health. */
export function startMetricsServer(metrics: OrderMetrics, port: number, host: string, ready: () => Promise<boolean>): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      metrics
        .exposition()
        .then((body) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body))
        .catch(() => response.writeHead(500).end());
    } else if (path === '/health/live') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else if (path === '/health/ready') {
      void answerWithin(ready(), READY_TIMEOUT_MS, false).then((ok) => response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ready' : 'not_ready' })));
    } else {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

import type { OrderMetrics } from '@orders/metrics';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Request latency by route template (never the raw URL: ids would explode the label set). */
export const metricsPlugin = fp(
  async (app: FastifyInstance, options: { metrics: OrderMetrics }) => {
    const { metrics } = options;
    app.addHook('onResponse', (request, reply, done) => {
      metrics.httpDuration.observe(
        { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
      done();
    });
    app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics in the text exposition format', security: [] } }, async (_request, reply) => {
      return reply.type(metrics.registry.contentType).send(await metrics.exposition());
    });
  },
  { name: 'metrics' },
);

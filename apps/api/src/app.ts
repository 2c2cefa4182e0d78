import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { AppDeps } from './app-deps.js';
import { CheckoutIntake } from './checkout-intake.js';
import { authPlugin } from './plugins/auth.js';
import { docsPlugin } from './plugins/docs.js';
import { metricsPlugin } from './plugins/metrics.js';
import { problemDetailsPlugin } from './plugins/problem-details.js';
import { QueueDepthSampler } from './queue-depth.js';
import { catalogRoutes } from './routes/catalog.js';
import { healthRoutes } from './routes/health.js';
import { orderRoutes } from './routes/orders.js';
import { orderSchema, problemSchema, skuSchema } from './schemas.js';

/**
 * Bodies are validated strictly (no type coercion, unknown fields rejected: API.md);
 * query strings and path params are coerced, since they arrive as text.
 */
function validatorCompilers() {
  const options = { allErrors: false, useDefaults: true, removeAdditional: false, strict: false } as const;
  const strictAjv = addFormats.default(new Ajv({ ...options, coerceTypes: false }));
  const coercingAjv = addFormats.default(new Ajv({ ...options, coerceTypes: 'array' }));
  for (const schema of [problemSchema, orderSchema, skuSchema]) {
    strictAjv.addSchema(schema);
    coercingAjv.addSchema(schema);
  }
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema);
}

export async function buildApp(deps: AppDeps, options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    logger: { level: config.LOG_LEVEL },
    bodyLimit: config.BODY_LIMIT_BYTES,
    // the load balancer's idle timeout must stay below this one
    keepAliveTimeout: 72_000,
    requestIdHeader: 'x-request-id',
    ...options,
  });
  app.setValidatorCompiler(validatorCompilers());
  for (const schema of [problemSchema, orderSchema, skuSchema]) app.addSchema(schema);

  // third-party plugins, then the app's own, then routes (fastify/demo's order)
  await app.register(docsPlugin);
  await app.register(problemDetailsPlugin);
  await app.register(authPlugin, { secret: config.AUTH_JWT_SECRET });
  await app.register(metricsPlugin, { metrics: deps.metrics });

  const queueDepth = new QueueDepthSampler(deps.queues.orders).start();
  app.addHook('onClose', async () => queueDepth.stop());
  deps.metrics.watchQueues(async () =>
    Promise.all(deps.queues.all.map(async (queue) => ({ queue: queue.name, counts: await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized') }))),
  );
  const intake = new CheckoutIntake({
    inventory: deps.inventory,
    queues: deps.queues,
    metrics: deps.metrics,
    queueDepth,
    highWaterMark: config.QUEUE_HIGH_WATER_MARK,
    clock: deps.clock,
    log: app.log,
  });

  await app.register(healthRoutes, { deps });
  await app.register(orderRoutes, { deps, intake });
  await app.register(catalogRoutes, { deps });
  return app;
}

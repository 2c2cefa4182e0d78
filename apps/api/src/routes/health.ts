import { answerWithin } from '@orders/metrics';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';

const PROBE_TIMEOUT_MS = 1000;

function probe(reach: () => Promise<unknown>): Promise<'up' | 'down'> {
  return answerWithin(reach().then(() => 'up' as const), PROBE_TIMEOUT_MS, 'down' as const);
}

/** What readiness answers once the instance is leaving the load balancer (SIGTERM), whatever Redis and MySQL say. */
const LEAVING = { status: 'shutting_down' } as const;

export async function healthRoutes(app: FastifyInstance, { deps, leaving }: { deps: AppDeps; leaving: () => boolean }) {
  app.get('/health/live', { schema: { tags: ['operations'], security: [] } }, async () => ({ status: 'ok' }));

  app.get('/health/ready', { schema: { tags: ['operations'], summary: 'Ready: Redis and MySQL reachable, and not shutting down', security: [] } }, async (_request, reply) => {
    if (leaving()) return reply.code(503).send(LEAVING);
    const [redis, mysql] = await Promise.all([probe(() => deps.redis.ping()), probe(() => sql`SELECT 1`.execute(deps.db))]);
    const ready = redis === 'up' && mysql === 'up';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', redis, mysql });
  });

  // Checkout needs Redis alone: while MySQL is away the queue holds what the intake accepts.
  // A load balancer that probes /health/ready takes every replica out during a MySQL outage
  // and stops a sale that could go on; one in front of the intake probes this instead.
  app.get('/health/checkout', { schema: { tags: ['operations'], summary: 'Ready to take checkouts: Redis reachable (MySQL is not needed for them), and not shutting down', security: [] } }, async (_request, reply) => {
    if (leaving()) return reply.code(503).send(LEAVING);
    const redis = await probe(() => deps.redis.ping());
    return reply.code(redis === 'up' ? 200 : 503).send({ status: redis === 'up' ? 'ready' : 'not_ready', redis });
  });
}

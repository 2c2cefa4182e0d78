import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';

export async function healthRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  app.get('/health/live', { schema: { tags: ['operations'], security: [] } }, async () => ({ status: 'ok' }));

  app.get('/health/ready', { schema: { tags: ['operations'], security: [] } }, async (_request, reply) => {
    const check = async (probe: () => Promise<unknown>) => {
      try {
        await Promise.race([probe(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1000))]);
        return 'up';
      } catch {
        return 'down';
      }
    };
    const [redis, mysql] = await Promise.all([check(() => deps.redis.ping()), check(() => sql`SELECT 1`.execute(deps.db))]);
    const ready = redis === 'up' && mysql === 'up';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', redis, mysql });
  });
}

import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { problemRef } from '../schemas.js';

const COUNTED = ['waiting', 'active', 'delayed', 'failed', 'prioritized'] as const;

/**
 * GET /v1/admin/queues: the job counts of every BullMQ queue (the ones /metrics samples),
 * so the console shows the backlog behind a flash sale while it runs.
 */
export async function adminQueueRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  app.get(
    '/v1/admin/queues',
    {
      onRequest: app.requireRole('merchant', 'admin'),
      schema: {
        tags: ['admin'],
        summary: 'Job counts per queue (waiting, active, delayed, failed, prioritized): the backlog behind the intake',
        response: {
          200: {
            type: 'object',
            properties: {
              queues: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { name: { type: 'string' }, ...Object.fromEntries(COUNTED.map((state) => [state, { type: 'integer' }])) },
                },
              },
            },
          },
          '4xx': problemRef,
        },
      },
    },
    async () => ({
      queues: await Promise.all(
        deps.queues.all.map(async (queue) => {
          const counts = await queue.getJobCounts(...COUNTED);
          return { name: queue.name, ...Object.fromEntries(COUNTED.map((state) => [state, counts[state] ?? 0])) };
        }),
      ),
    }),
  );
}

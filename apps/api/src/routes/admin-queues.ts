import { COUNTED_JOB_STATES, DeadLetterBusy, DeadLetterNotFound, DeadLetters, LetterOfAcceptedOrders, ordersCarriedBy, readQueues } from '@orders/queues';
import { secondsSince } from '@orders/metrics';
import { ProcessRepository } from '@orders/persistence';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { HttpProblem } from '../problems.js';
import { noFieldsBody, problemRef } from '../schemas.js';

/** The letters a list answers at most: a mass failure may leave thousands, and the oldest come first. */
const LETTERS_LISTED_AT_MOST = 1_000;

const letterParams = { type: 'object', required: ['letterId'], properties: { letterId: { type: 'string', minLength: 1, maxLength: 300 } } } as const;
const letterDone = {
  type: 'object',
  properties: { letterId: { type: 'string' }, outcome: { type: 'string', description: 'what was done, in the words npm run dlq prints' } },
} as const;

/**
 * GET /v1/admin/queues: the job counts of every BullMQ queue (the ones /metrics samples),
 * so the console shows the backlog behind a flash sale while it runs. And the dead letters, for
 * an admin to read and, once the cause is fixed, replay or drop, as `npm run dlq` does.
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
                  properties: {
                    name: { type: 'string' },
                    ...Object.fromEntries(COUNTED_JOB_STATES.map((state) => [state, { type: 'integer' }])),
                    oldestWaitingSeconds: {
                      type: 'number',
                      description: 'how long its oldest waiting job (waiting or prioritized) has been ready without a worker starting it, 0 when none waits: it grows while no worker takes the queue’s jobs (queue_oldest_waiting_job_age_seconds)',
                    },
                    overdueDelayedSeconds: {
                      type: 'number',
                      description: 'how long its first delayed job (a timer, a retry) is past due, 0 when none is: only a worker serving the queue moves due jobs on, so it grows while none does (queue_overdue_delayed_job_seconds)',
                    },
                  },
                },
              },
            },
          },
          '4xx': problemRef,
        },
      },
    },
    async () => {
      const now = Date.now();
      return {
        queues: (await readQueues(deps.queues.all)).map(({ queue, counts, oldestWaitingSince, firstDelayedDueAt }) => ({
          name: queue,
          ...Object.fromEntries(COUNTED_JOB_STATES.map((state) => [state, counts[state] ?? 0])),
          oldestWaitingSeconds: secondsSince(oldestWaitingSince, now),
          overdueDelayedSeconds: secondsSince(firstDelayedDueAt, now),
        })),
      };
    },
  );

  const letters = new DeadLetters(deps.redis, deps.queues);
  const process = new ProcessRepository(deps.db);
  const admin = app.requireRole('admin');
  /** An operator's step on a letter, logged with who took it; an unknown letter is 404, one of accepted orders refused a drop 409, as is one another step still holds. */
  const onLetter = async (letterId: string, by: string, step: 'replay' | 'drop', log: { info(fields: object, message: string): void }) => {
    try {
      const outcome = step === 'replay' ? await letters.replay(letterId) : await letters.drop(letterId);
      log.info({ letterId, by, outcome }, step === 'replay' ? 'dead letter replayed' : 'dead letter dropped');
      return { letterId, outcome };
    } catch (error) {
      if (error instanceof DeadLetterNotFound) throw new HttpProblem(404, 'NOT_FOUND', `${error.message}: replayed or dropped already, or never there`);
      if (error instanceof LetterOfAcceptedOrders || error instanceof DeadLetterBusy) throw new HttpProblem(409, 'CONFLICT', error.message);
      throw error;
    }
  };

  app.get<{ Querystring: { limit?: number; offset?: number; orderId?: string } }>(
    '/v1/admin/dead-letters',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'The dead letters, oldest first: jobs that failed every attempt, where each failed, the orders it carries and why',
        description:
          `No worker serves the dead-letter queue: a letter waits there until an admin replays it (once its cause is fixed) or drops it (its work done another way), here or with npm run dlq. \`total\` counts every letter; \`items\` holds the oldest \`limit\` of them after the \`offset\` oldest: the next page is read with \`offset\` grown by \`limit\`, while it is below \`total\` (a mass failure leaves thousands; a letter replayed or dropped meanwhile moves those after it one place up, so a page read after one may start with a letter of the page before). With \`orderId\`, the letters carrying that order or one of its children (a split order's), however many others there are (an order page's "failed for good"), \`total\` counting those.`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: LETTERS_LISTED_AT_MOST, default: 100 },
            offset: { type: 'integer', minimum: 0, default: 0, description: 'how many of the oldest letters to pass over: a page’s first letter is the oldest but `offset`' },
            orderId: { type: 'string', minLength: 1, maxLength: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              total: { type: 'integer' },
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    letterId: { type: 'string' },
                    queue: { type: 'string', description: 'the queue its job failed in' },
                    name: { type: 'string', description: 'the job’s name' },
                    orders: { type: 'array', items: { type: 'string' }, description: 'the orders the job carries' },
                    attemptsMade: { type: 'integer' },
                    failedAt: { type: 'string' },
                    failedReason: { type: 'string' },
                  },
                },
              },
            },
          },
          '4xx': problemRef,
        },
      },
    },
    async (request) => {
      const { limit = 100, offset = 0, orderId } = request.query;
      let listed: Awaited<ReturnType<DeadLetters['list']>>;
      let total: number;
      if (orderId === undefined) {
        [listed, total] = await Promise.all([letters.list(limit, offset), letters.count()]);
      } else {
        // most of the time there is none: the count spares looking; a split order's children's jobs are its own too
        const carrying = (await letters.count()) === 0 ? [] : await letters.carrying(new Set([orderId, ...(await process.children(orderId)).map((child) => child.order_id)]));
        [listed, total] = [carrying.slice(offset, offset + limit), carrying.length];
      }
      return {
        total,
        items: listed.map((letter) => ({
          letterId: letter.id,
          queue: letter.data.queue,
          name: letter.data.name,
          orders: ordersCarriedBy(letter.data.data),
          attemptsMade: letter.data.attemptsMade,
          failedAt: letter.data.failedAt,
          failedReason: letter.data.failedReason,
        })),
      };
    },
  );

  app.post<{ Body: { limit?: number } | undefined }>(
    '/v1/admin/dead-letters/replay',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Replays the oldest dead letters, each as one replay does (after an outage whose cause is fixed)',
        description: `As npm run dlq -- replay-all, the oldest \`limit\` (100 by default, ${LETTERS_LISTED_AT_MOST} at most) at a time, so one request never runs past its answer: \`left\` counts the letters still waiting (send it again while more than those in \`failed\` are; a letter that fails again at once stays, telling of its new failure; one that cannot be replayed, such as one of a queue this build does not have, is named in \`failed\` and stays, oldest, until dropped). A letter replayed or dropped by someone else meanwhile is skipped.`,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: LETTERS_LISTED_AT_MOST, default: 100 } } },
        response: {
          200: {
            type: 'object',
            properties: {
              replayed: { type: 'array', items: { type: 'string' }, description: 'what was done with each, in the words npm run dlq prints' },
              failed: {
                type: 'array',
                description: 'the letters that could not be replayed, and why (a queue this build does not have): they wait on; the rest were replayed',
                items: { type: 'object', properties: { letterId: { type: 'string' }, reason: { type: 'string' } } },
              },
              left: { type: 'integer' },
            },
          },
          '4xx': problemRef,
        },
      },
    },
    async (request) => {
      const { replayed, failed } = await letters.replayAll(request.body?.limit ?? 100);
      request.log.info({ by: request.user.sub, replayed: replayed.length, failed }, 'dead letters replayed');
      return { replayed, failed, left: await letters.count() };
    },
  );

  app.post<{ Params: { letterId: string } }>(
    '/v1/admin/dead-letters/:letterId/replay',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Puts a dead letter’s job back where it failed, with fresh attempts, and removes the letter',
        description:
          'As npm run dlq -- replay: a job run one at a time per order (a refund, a warehouse update) goes back as it is enqueued, adding nothing while a job of the order waits; any other is retried in place under its id, or added again under it once BullMQ dropped it, so replaying twice never queues an order twice, and every job is idempotent. A job that fails again at once keeps a letter telling of its new failure (`outcome` says so). 404 NOT_FOUND for a letter not there (replayed or dropped already: a replay whose answer was lost has been done). A replay or drop of the same letter under way (npm run dlq, another admin) is waited for, and this one acts on what it left: 404 once that replayed or dropped the letter; 409 CONFLICT if it has not ended within 10 s.',
        params: letterParams,
        body: noFieldsBody,
        response: { 200: letterDone, '4xx': problemRef },
      },
    },
    async (request) => onLetter(request.params.letterId, request.user.sub, 'replay', request.log),
  );

  app.delete<{ Params: { letterId: string } }>(
    '/v1/admin/dead-letters/:letterId',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Drops a dead letter whose work was done another way (or is no longer wanted), with its failed job',
        description:
          'As npm run dlq -- drop: for work done another way or no longer wanted (a new address told to the warehouse by hand). A refund still due, or a paid order’s hand-over, comes back by itself a sweep interval later (the backstop sweep enqueues its job again), so a refund is never paid back by hand and its letter dropped: it would be paid twice. Its failed job goes too, so no worker copies it into a letter again. 409 CONFLICT for a letter of accepted orders (their buyers were told the orders are taken: fix the cause and replay it), and for one whose replay or drop by someone else (npm run dlq, another admin) has not ended within 10 s; 404 NOT_FOUND for a letter not there, or replayed or dropped by the step this one waited for.',
        params: letterParams,
        body: noFieldsBody,
        response: { 200: letterDone, '4xx': problemRef },
      },
    },
    async (request) => onLetter(request.params.letterId, request.user.sub, 'drop', request.log),
  );
}

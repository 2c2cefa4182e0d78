import type { WindowCounter, WindowCounters } from '@orders/stock';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { rateLimited } from '../problems.js';

/** A counter of a signed-in user's counted in the same Redis call as their budget, and where its count goes. */
export interface CountedWithBudget {
  /** The counter for this request, or null when none applies; in `slotGroup`, the counter key's hash tag. */
  counterFor(request: FastifyRequest, userId: string): WindowCounter | null;
  record(request: FastifyRequest, count: number): void;
}

export interface RateLimitOptions {
  counters: WindowCounters;
  keyPrefix: string;
  /** The hash tag of a budget's key (a buyer's own keys' group), so a Redis Cluster pipeline of budgets stays on one node. */
  slotGroupOf: (budget: string) => string;
  windowMs: number;
  perUser: number;
  perIp: number;
  /** A request served unchecked because its budget could not be counted (Redis away): operators must see it. */
  onUnchecked: () => void;
  /** The checkout velocity: counted with the buyer's budget, one round trip for both. */
  countedWithBudget?: CountedWithBudget;
}

/**
 * Routes no client budget applies to: probes and scrapes, and the external systems'
 * callbacks, which are signed, arrive at the pace of our own requests to those systems,
 * and must not be bounced during a sale.
 */
const UNLIMITED_ROUTES = /^\/(health\/|metrics$|v1\/callbacks\/)/;

/**
 * Request budgets in Redis, shared by every api replica: a fixed window per budget
 * (WindowCounters, whose counts of one event-loop turn go as one pipeline). A request with
 * a valid token spends its user's budget; only anonymous ones spend their IP's, because a
 * sale's buyers arrive through a few CDN and NAT addresses (API.md). Unknown paths are
 * limited too, so ids cannot be probed. Each answer says the budget in `x-ratelimit-limit`,
 * `-remaining` and `-reset` (seconds); a refusal is 429 RATE_LIMITED with `retry-after`.
 *
 * Our own hook rather than @fastify/rate-limit's: it counts a checkout's velocity counter in
 * the same script call as the buyer's budget, which a store behind that plugin cannot see
 * (a second Redis command was ~6 % of a checkout's instructions, bench/README item 27).
 */
export const rateLimitPlugin = fp(
  async (app: FastifyInstance, options: RateLimitOptions) => {
    const { counters, keyPrefix, slotGroupOf, windowMs, countedWithBudget } = options;

    async function spenderOf(request: FastifyRequest): Promise<{ budget: string; userId: string | null }> {
      if (request.headers.authorization) {
        try {
          const { sub } = await app.principalOf(request);
          return { budget: `user:${sub}`, userId: sub };
        } catch {
          // a token that does not verify is anonymous: it cannot open a budget of its own
        }
      }
      return { budget: `ip:${request.ip}`, userId: null };
    }

    /** Counts the budget, and the counter spent with it when there is one (one script call when they share a slot group). */
    async function spend(request: FastifyRequest, budgetCounter: WindowCounter, userId: string | null) {
      const alongside = userId ? (countedWithBudget?.counterFor(request, userId) ?? null) : null;
      const [spent, counted] = await counters.countEach(alongside ? [budgetCounter, alongside] : [budgetCounter]);
      if (counted) countedWithBudget!.record(request, counted.count);
      return spent!;
    }

    // onRequest, at the root: every route and the not-found handler, before any body is read
    app.addHook('onRequest', async (request, reply) => {
      if (UNLIMITED_ROUTES.test(request.routeOptions.url ?? '')) return;
      const { budget, userId } = await spenderOf(request);
      const max = userId ? options.perUser : options.perIp;
      const slotGroup = slotGroupOf(budget);
      let spent;
      try {
        spent = await spend(request, { slotGroup, key: `${keyPrefix}${slotGroup}:rate:${budget}`, windowMs }, userId);
      } catch {
        // Redis away: checkouts fail on their own with 503; reads from MySQL still work, counted by onUnchecked
        options.onUnchecked();
        return;
      }
      const resetSeconds = Math.ceil(spent.msLeft / 1000);
      void reply.header('x-ratelimit-limit', max).header('x-ratelimit-remaining', Math.max(0, max - spent.count)).header('x-ratelimit-reset', resetSeconds);
      if (spent.count > max) throw rateLimited(Math.max(1, resetSeconds));
    });
  },
  { name: 'rate-limit', dependencies: ['auth'] },
);

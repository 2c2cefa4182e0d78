import rateLimit, { type FastifyRateLimitStore } from '@fastify/rate-limit';
import type { WindowCounters } from '@orders/stock';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { rateLimited } from '../problems.js';

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
}

/**
 * Routes no client budget applies to: probes and scrapes, and the external systems'
 * callbacks, which are signed, arrive at the pace of our own requests to those systems,
 * and must not be bounced during a sale.
 */
const UNLIMITED_ROUTES = /^\/(health\/|metrics$|v1\/callbacks\/)/;

type SpendCallback = (error: Error | null, spent?: { current: number; ttl: number }) => void;

/**
 * @fastify/rate-limit's store for budgets in Redis: one fixed-window counter per budget
 * (WindowCounters). The plugin's own Redis store sent a script per request, one socket
 * write each (14 % of the intake's CPU in the profile); the counters of one event-loop turn
 * go as one pipeline.
 */
function requestBudgetStore(counters: WindowCounters, slotGroupOf: (budget: string) => string, namespace: string, onUnchecked: () => void) {
  return class RequestBudgetStore {
    /** The plugin constructs its store with its settings, which say nothing this store needs. */
    constructor(
      _settings: unknown,
      private readonly keyPrefix = namespace,
    ) {}

    incr(budget: string, callback: SpendCallback, windowMs: number): void {
      const slotGroup = slotGroupOf(budget);
      counters.count(slotGroup, `${this.keyPrefix}${slotGroup}:rate:${budget}`, windowMs).then(
        ({ count, msLeft }) => callback(null, { current: count, ttl: msLeft }),
        (error: Error) => {
          onUnchecked();
          callback(error);
        },
      );
    }

    /** A route with budgets of its own (none today) counts them under its own keys. */
    child(routeOptions: Parameters<FastifyRateLimitStore['child']>[0]): RequestBudgetStore {
      // the plugin passes its merged route settings, which carry the route as `routeInfo` (not what its types say)
      const { routeInfo } = routeOptions as unknown as { routeInfo: { method?: string; url?: string } };
      return new RequestBudgetStore(routeOptions, `${this.keyPrefix}${routeInfo.method ?? ''}${routeInfo.url ?? ''}:`);
    }
  };
}

/**
 * Request budgets in Redis, shared by every api replica. A request with a valid token
 * spends its user's budget; only anonymous ones spend their IP's, because a sale's buyers
 * arrive through a few CDN and NAT addresses (API.md). Unknown paths are limited too, so
 * ids cannot be probed.
 */
export const rateLimitPlugin = fp(
  async (app: FastifyInstance, options: RateLimitOptions) => {
    async function budgetOf(request: FastifyRequest): Promise<string> {
      if (!request.headers.authorization) return `ip:${request.ip}`;
      try {
        return `user:${(await app.principalOf(request)).sub}`;
      } catch {
        return `ip:${request.ip}`;
      }
    }

    await app.register(rateLimit, {
      global: true,
      hook: 'onRequest',
      store: requestBudgetStore(options.counters, options.slotGroupOf, options.keyPrefix, options.onUnchecked),
      timeWindow: options.windowMs,
      max: async (_request, key) => (key.startsWith('user:') ? options.perUser : options.perIp),
      keyGenerator: budgetOf,
      allowList: (request) => UNLIMITED_ROUTES.test(request.routeOptions.url ?? ''),
      // Redis away: checkouts fail on their own with 503; reads from MySQL still work, counted by onUnchecked
      skipOnError: true,
      errorResponseBuilder: (_request, context) => rateLimited(Math.max(1, Math.ceil(context.ttl / 1000))),
    });
  },
  { name: 'rate-limit', dependencies: ['auth'] },
);

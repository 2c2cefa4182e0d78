import rateLimit from '@fastify/rate-limit';
import type { RedisClient } from '@orders/stock';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { rateLimited } from '../problems.js';

export interface RateLimitOptions {
  /** its budgets are single-key scripts, so a Redis Cluster serves them as they are */
  redis: RedisClient;
  keyPrefix: string;
  windowMs: number;
  perUser: number;
  perIp: number;
}

/**
 * Routes no client budget applies to: probes and scrapes, and the external systems'
 * callbacks, which are signed, arrive at the pace of our own requests to those systems,
 * and must not be bounced during a sale.
 */
const UNLIMITED_ROUTES = /^\/(health\/|metrics$|v1\/callbacks\/)/;

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
        // the verified-token cache makes this and the route's own check one HMAC at most
        await request.jwtVerify();
        return `user:${request.user.sub}`;
      } catch {
        return `ip:${request.ip}`;
      }
    }

    await app.register(rateLimit, {
      global: true,
      hook: 'onRequest',
      redis: options.redis,
      nameSpace: `${options.keyPrefix}rate:`,
      timeWindow: options.windowMs,
      max: async (_request, key) => (key.startsWith('user:') ? options.perUser : options.perIp),
      keyGenerator: budgetOf,
      allowList: (request) => UNLIMITED_ROUTES.test(request.routeOptions.url ?? ''),
      // Redis away: checkouts fail on their own with 503; reads from MySQL still work
      skipOnError: true,
      errorResponseBuilder: (_request, context) => rateLimited(Math.max(1, Math.ceil(context.ttl / 1000))),
    });
  },
  { name: 'rate-limit', dependencies: ['auth'] },
);

import type { CappedCounter, CheckoutCounters, WindowCount, WindowCounters } from '@orders/stock';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { isIPv6 } from 'node:net';
import { rateLimited, type HttpProblem } from '../problems.js';
import { retryLaterProblem } from '../schemas.js';
import type { Principal } from './auth.js';

/**
 * The budget an anonymous request spends: its IPv4 address's, or its IPv6 address's /64 network's.
 * One client holds a whole /64 (a home line, a cloud VM), so a budget per IPv6 address would give it
 * 2^64 budgets, and fill the per-process table while Redis is away.
 */
export function addressBudget(ip: string): string {
  if (!isIPv6(ip)) return `ip:${ip}`;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return `ip:${mapped[1]}`;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `ip6:${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/** A route whose handler spends a signed-in user's budget itself, and the counter it spends with it. */
export interface SpentByRoute {
  /** Whether the route spends this signed-in user's budget itself: only when its role check lets them reach its handler. */
  applies(request: FastifyRequest, spender: Principal): boolean;
  /** Counted with the budget (the checkout velocity), or null. */
  alongside(userId: string): CappedCounter | null;
}

export interface RateLimitOptions {
  counters: WindowCounters;
  keyPrefix: string;
  /** The hash tag of a budget's key (a buyer's own keys' group), so a Redis Cluster pipeline of budgets stays on one node. */
  slotGroupOf: (budget: string) => string;
  windowMs: number;
  perUser: number;
  perIp: number;
  /** A request whose budget Redis could not count (Redis away), counted by this process alone: operators must see it. */
  onUnchecked: () => void;
  /** The api processes of this replica (API_PROCESSES): while Redis is away each counts its share of a budget. */
  processes: number;
  /** The checkout: its reservation script counts the budget and velocity (one Redis command less). */
  spentByRoute?: SpentByRoute;
}

/** The counters a checkout's request carries (`SpentByRoute`): counted by the checkout's script, else by the error handler. */
export interface RequestCheckoutCounters extends CheckoutCounters {
  /**
   * Told when a Redis command of the checkout went unanswered (REDIS_COMMAND_TIMEOUT_MS passed,
   * the connection lost) before the counters' count came back: the script counting them may
   * have run all the same, so the error handler does not count them again. Counted twice, one
   * request would spend two of the buyer's budget and two checkout attempts (its attempt
   * record ignored); left alone, at worst none.
   */
  mayHaveBeenCounted(): void;
  /**
   * Told when the checkout is refused with a 503 before any script saw it (the intake shedding
   * load): the buyer is told to retry, so the request spends the budget but is no checkout
   * attempt for the velocity rule, which counts the attempt when it is taken on.
   */
  toBeRetried(): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The budget (and velocity) this request's route counts itself, when it does (`SpentByRoute`); null otherwise. */
    checkoutCounters: RequestCheckoutCounters | null;
  }
  interface FastifyInstance {
    /**
     * For the error handler: counts the budget of a request whose route spends it itself but
     * answers with an error before it did (a malformed body, a blocked buyer), or of a callback
     * whose signature did not verify (`error`: 401, 415); the refusal to answer instead when that
     * budget is spent.
     */
    budgetRefusalOf(request: FastifyRequest, error: unknown): Promise<HttpProblem | null>;
  }
}

/** Routes no client budget applies to: probes and scrapes. */
const UNLIMITED_ROUTES = /^\/(health\/|metrics$)/;
/**
 * The external systems' callbacks arrive at the pace of our own requests to those systems and
 * must not be bounced during a sale: a signed one spends no budget. One whose signature fails
 * spends its IP's (the error handler counts it), or anyone could make the api hash bodies of
 * BODY_LIMIT_BYTES without end.
 */
const CALLBACK_ROUTES = /^\/v1\/callbacks\//;
/** How a callback that was not signed (or not as JSON) is refused: it spends its IP's budget. */
const UNSIGNED_CALLBACK_STATUSES = new Set([401, 415]);

/** Budgets this process counts while Redis cannot: beyond, a budget is not counted at all (a flood of new addresses must not fill the heap). */
const LOCAL_BUDGETS_AT_MOST = 100_000;

/**
 * The budgets of one window counted in this process alone, while Redis cannot count them: fixed
 * windows as Redis keeps them, all forgotten when the next window starts.
 */
class LocalWindowCounts {
  private window = -1;
  private readonly counts = new Map<string, number>();

  /** The count of `key` with this request, or null when too many budgets are counted already. */
  count(key: string, windowMs: number): WindowCount | null {
    const now = Date.now();
    const window = Math.floor(now / windowMs);
    if (window !== this.window) {
      this.window = window;
      this.counts.clear();
    }
    const before = this.counts.get(key);
    if (before === undefined && this.counts.size >= LOCAL_BUDGETS_AT_MOST) return null;
    this.counts.set(key, (before ?? 0) + 1);
    return { count: (before ?? 0) + 1, msLeft: (window + 1) * windowMs - now };
  }
}

/** The 429 for a budget counted past its maximum; null within it. */
function refusalOf(spent: WindowCount, max: number): HttpProblem | null {
  return spent.count > max ? rateLimited(spent.msLeft) : null;
}

/**
 * Request budgets in Redis, shared by every api replica: a fixed window per budget
 * (WindowCounters, whose counts of one event-loop turn go as one pipeline). A request with
 * a valid token spends its user's budget; only anonymous ones spend their IP's, because a
 * sale's buyers arrive through a few CDN and NAT addresses (API.md). Unknown paths are
 * limited too, so ids cannot be probed. Each answer says the budget in `x-ratelimit-limit`,
 * `-remaining` and `-reset` (seconds); a refusal is 429 RATE_LIMITED with `retry-after`.
 *
 * Our own hook rather than @fastify/rate-limit's: a signed-in buyer's checkout spends the
 * budget and the velocity counter in its reservation script (or with the read of a SKU sold
 * out in memory), one Redis command instead of two (bench/README items 27 and 29), which a
 * store behind that plugin cannot do. Such a request is answered 429 like any other once over
 * budget; one that ends in an error before that (a malformed body, a blocked buyer) is counted
 * by the error handler (`budgetRefusalOf`), as the `onRequest` hook would have counted it.
 */
export const rateLimitPlugin = fp(
  async (app: FastifyInstance, options: RateLimitOptions) => {
    const { counters, keyPrefix, slotGroupOf, windowMs, spentByRoute } = options;

    // each budgeted route lists its 429 in /docs/json, so a client generated from it knows to wait retry-after
    const budgetHeaders = {
      'x-ratelimit-limit': { type: 'integer', description: 'requests the budget allows per window' },
      'x-ratelimit-remaining': { type: 'integer', description: 'requests left in this window' },
      'x-ratelimit-reset': { type: 'integer', description: 'seconds until the window ends' },
    };
    const budgetSpent = retryLaterProblem(
      'RATE_LIMITED: the request budget of this window is spent, the authenticated user\'s (an anonymous request: its IP\'s; a payment or warehouse callback: only one whose signature fails spends it)',
      budgetHeaders,
    );
    app.addHook('onRoute', (route) => {
      if (UNLIMITED_ROUTES.test(route.url) || !route.schema?.response) return;
      route.schema = { ...route.schema, response: { ...(route.schema.response as object), 429: budgetSpent } };
    });

    function spenderOf(request: FastifyRequest): { budget: string; principal: Principal | null } {
      if (request.headers.authorization) {
        try {
          const principal = app.principalOf(request);
          // by role too: a buyer whose id is a merchant's must not spend the merchant's budget
          return { budget: `user:${principal.role}:${principal.sub}`, principal };
        } catch {
          // a token that does not verify is anonymous: it cannot open a budget of its own
        }
      }
      return { budget: addressBudget(request.ip), principal: null };
    }

    function tellBudget(reply: FastifyReply, max: number, spent: WindowCount) {
      void reply.header('x-ratelimit-limit', max).header('x-ratelimit-remaining', Math.max(0, max - spent.count)).header('x-ratelimit-reset', Math.ceil(spent.msLeft / 1000));
    }

    const localCounts = new LocalWindowCounts();

    /**
     * Counts the budget (and what goes with it); with Redis away (checkouts fail on their own with
     * 503, reads from MySQL go on), this process counts the budget alone against its share of it,
     * so a flood still meets a limit on its way to MySQL. Null when neither could count it.
     */
    async function spend(budget: CappedCounter, alongside: CappedCounter | null): Promise<WindowCount | null> {
      try {
        const [spent] = await counters.countEach(alongside ? [budget, alongside] : [budget]);
        return spent!;
      } catch {
        options.onUnchecked();
        const local = localCounts.count(budget.key, windowMs);
        const share = Math.max(1, Math.floor(budget.max / options.processes));
        // in the whole budget's terms, so the headers and the refusal read as Redis's count would
        return local && { count: Math.ceil((local.count * budget.max) / share), msLeft: local.msLeft };
      }
    }

    /**
     * What the error handler counts of a checkout its route told more of: nothing when its script
     * went unanswered and may have counted them late (`mayHaveBeenCounted`), the budget alone when
     * it was refused for now before any script (`toBeRetried`); both, as any request, otherwise.
     */
    const leftToCount = new WeakMap<RequestCheckoutCounters, 'nothing' | 'budget'>();
    /** The IP budget of each callback request, spent only if its signature fails. */
    const callbackBudgets = new WeakMap<FastifyRequest, { counter: CappedCounter; reply: FastifyReply }>();

    function counterOf(budget: string, max: number): CappedCounter {
      const slotGroup = slotGroupOf(budget);
      return { slotGroup, key: `${keyPrefix}${slotGroup}:rate:${budget}`, windowMs, max };
    }

    app.decorateRequest('checkoutCounters', null);

    // onRequest, at the root: every route and the not-found handler, before any body is read;
    // synchronous until a count is awaited, so a checkout (whose script counts) passes in one turn
    app.addHook('onRequest', (request, reply, done) => {
      const route = request.routeOptions.url ?? '';
      if (UNLIMITED_ROUTES.test(route)) return done();
      if (CALLBACK_ROUTES.test(route)) {
        callbackBudgets.set(request, { counter: counterOf(addressBudget(request.ip), options.perIp), reply });
        return done();
      }
      const { budget, principal } = spenderOf(request);
      const max = principal ? options.perUser : options.perIp;
      const budgetCounter = counterOf(budget, max);
      if (principal && spentByRoute?.applies(request, principal)) {
        const checkoutCounters = {
          budget: budgetCounter,
          velocity: spentByRoute.alongside(principal.sub),
          spent: null as WindowCount | null,
          counted(spent: WindowCount) {
            checkoutCounters.spent = spent;
            tellBudget(reply, max, spent);
          },
          mayHaveBeenCounted() {
            leftToCount.set(checkoutCounters, 'nothing');
          },
          toBeRetried() {
            leftToCount.set(checkoutCounters, 'budget');
          },
        };
        request.checkoutCounters = checkoutCounters;
        return done();
      }
      void spend(budgetCounter, null).then((spent) => {
        if (!spent) return done();
        tellBudget(reply, max, spent);
        done(refusalOf(spent, max) ?? undefined);
      });
    });

    app.decorate('budgetRefusalOf', async (request: FastifyRequest, error: unknown) => {
      const callback = callbackBudgets.get(request);
      if (callback) {
        if (!UNSIGNED_CALLBACK_STATUSES.has((error as { statusCode?: number }).statusCode ?? 0)) return null;
        const spent = await spend(callback.counter, null);
        if (!spent) return null;
        tellBudget(callback.reply, callback.counter.max, spent);
        return refusalOf(spent, callback.counter.max);
      }
      const pending = request.checkoutCounters;
      const left = pending && leftToCount.get(pending);
      if (!pending || pending.spent || left === 'nothing') return null;
      const spent = await spend(pending.budget, left === 'budget' ? null : pending.velocity);
      if (!spent) return null;
      pending.counted(spent);
      return refusalOf(spent, pending.budget.max);
    });
  },
  { name: 'rate-limit', dependencies: ['auth'] },
);

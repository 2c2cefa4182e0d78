import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Thrown at start when a setting is missing or malformed; names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Parser<T> = (raw: string, name: string) => T;

const int = (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> => (raw, name) => {
  if (!/^-?\d+$/.test(raw.trim())) throw new Error(`${name} must be a whole number, got '${raw}'`);
  const value = Number(raw);
  if (value < min || value > max) throw new Error(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
};

const ratio: Parser<number> = (raw, name) => {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new Error(`${name} must be a number from 0 to 1, got '${raw}'`);
  }
  return value;
};

const text = (pattern?: RegExp, hint?: string): Parser<string> => (raw, name) => {
  if (raw.trim() === '') throw new Error(`${name} must not be empty`);
  if (pattern && !pattern.test(raw)) throw new Error(`${name} ${hint ?? `must match ${pattern}`}, got '${raw}'`);
  return raw;
};

/** Empty: not set. */
const optionalToken: Parser<string> = (raw, name) => {
  if (!/^[\x21-\x7e]{0,256}$/.test(raw)) throw new Error(`${name} may hold up to 256 printable characters and no spaces, got '${raw}'`);
  return raw;
};

const url = (protocols: string[]): Parser<string> => (raw, name) => {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // a URL's password is not printed, though the URL does not parse: what lies between // and the last @
    // (a password may hold / or @ itself: that is often why it does not parse)
    throw new Error(`${name} must be a URL (${protocols.join(' or ')}), got '${raw.replace(/\/\/.*@/, '//***@')}'`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new Error(`${name} must use ${protocols.join(' or ')}, got '${parsed.protocol}'`);
  }
  return raw;
};

/**
 * MySQL's URL; its query may hold `ssl` alone, mysql2's TLS options as JSON (`ssl={"ca":"..."}`,
 * or `ssl=true` for TLS with the system's certificate authorities): anything else there would be
 * dropped unsaid, a connection asked to be encrypted made in plain text.
 */
const mysqlUrl: Parser<string> = (raw, name) => {
  const parsed = new URL(url(['mysql:'])(raw, name));
  for (const [key, value] of parsed.searchParams) {
    if (key !== 'ssl') throw new Error(`${name} takes ssl=<mysql2's TLS options as JSON, or true> alone in its query, got '${key}'`);
    let ssl: unknown;
    try {
      ssl = JSON.parse(value);
    } catch {
      ssl = undefined;
    }
    if (ssl !== true && (typeof ssl !== 'object' || ssl === null || Array.isArray(ssl))) throw new Error(`${name}'s ssl must be true or mysql2's TLS options as a JSON object, got '${value}'`);
  }
  return raw;
};

/** An ISO 4217 code Node's Intl formats: the console shows the shop's amounts, kept in its minor unit, in it. */
const currency: Parser<string> = (raw, name) => {
  if (!/^[A-Z]{3}$/.test(raw) || !Intl.supportedValuesOf('currency').includes(raw)) throw new Error(`${name} must be an ISO 4217 currency code such as USD, EUR or GBP, got '${raw}'`);
  return raw;
};

/** How many of a currency's minor units make one (the `*Cents` amounts count minor units): 100 to a dollar or a euro, 1 to a yen, 1000 to a dinar. */
export function minorUnitsPerUnit(currencyCode: string): number {
  return 10 ** (new Intl.NumberFormat('en', { style: 'currency', currency: currencyCode }).resolvedOptions().maximumFractionDigits ?? 2);
}

const secret: Parser<string> = (raw, name) => {
  if (raw.length < 16) throw new Error(`${name} must be at least 16 characters`);
  return raw;
};

const oneOf = <T extends string>(values: readonly T[]): Parser<T> => (raw, name) => {
  if (!(values as readonly string[]).includes(raw)) throw new Error(`${name} must be one of ${values.join(', ')}, got '${raw}'`);
  return raw as T;
};

/** BullMQ queues, plus `events`: the order-event publisher and webhook deliveries (one active process at a time). */
const WORKER_QUEUE_NAMES = ['orders', 'timers', 'payments', 'fulfillment', 'events'] as const;
const queueList: Parser<string[]> = (raw, name) => {
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new Error(`${name} must name at least one queue`);
  for (const queue of names) {
    if (!(WORKER_QUEUE_NAMES as readonly string[]).includes(queue)) {
      throw new Error(`${name} names unknown queue '${queue}' (known: ${WORKER_QUEUE_NAMES.join(', ')})`);
    }
  }
  return names;
};

const flag: Parser<boolean> = (raw, name) => {
  if (raw !== 'true' && raw !== 'false') throw new Error(`${name} must be true or false, got '${raw}'`);
  return raw === 'true';
};

/**
 * A comma-separated list that may be empty (e.g. nobody blocked): ids of printable ASCII but the comma, as
 * a token's subject (`auth0|…`) and an `x-device-id` (base64's `+/=`, a braced GUID) hold them.
 */
const idList: Parser<ReadonlySet<string>> = (raw, name) => {
  const ids = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.find((id) => !/^[\x21-\x2B\x2D-\x7E]{1,128}$/.test(id));
  if (bad !== undefined) throw new Error(`${name} must be a comma-separated list of ids, got '${bad}'`);
  return new Set(ids);
};

/**
 * Which proxies' X-Forwarded-For the api believes, as Fastify's `trustProxy` takes it: false
 * (none: the socket's address is the client), a hop count, or addresses/CIDRs. Per-IP rate
 * limits behind a load balancer count the balancer itself unless this names it.
 */
const trustedProxies: Parser<boolean | number | string[]> = (raw, name) => {
  const value = raw.trim();
  if (value === 'false' || value === 'true') return value === 'true';
  if (/^\d+$/.test(value)) return Number(value);
  const addresses = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (addresses.length === 0 || addresses.some((a) => !/^[0-9A-Fa-f:.]+(\/\d{1,3})?$/.test(a))) {
    throw new Error(`${name} must be true, false, a hop count, or comma-separated proxy addresses/CIDRs, got '${raw}'`);
  }
  return addresses;
};

/** Any of a Redis Cluster's nodes as comma-separated host:port pairs (the client learns the rest); empty: one Redis at REDIS_URL. */
const redisNodes: Parser<ReadonlyArray<{ host: string; port: number }>> = (raw, name) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((node) => {
      const match = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$/.exec(node);
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) throw new Error(`${name} must be comma-separated host:port pairs, got '${node}'`);
      return Object.freeze({ host: match[1]!.replace(/^\[|\]$/g, ''), port });
    });

/** The hash tag Redis Cluster hashes a key by: what sits between its first `{` and the next `}`, if anything. */
function hashTagOf(key: string): string | undefined {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

const PORT = int(0, 65535);
/** The longest delay a Node timer takes: setTimeout takes past 2^31-1 ms (~24.8 days) as 1 ms. */
const LONGEST_TIMER_MS = 2_147_483_647;
/** The longest a failing job may wait before its last retry (JOB_ATTEMPTS, JOB_BACKOFF_MS). */
const LAST_RETRY_MOST_MS = 86_400_000;
/** A delay handed to a Node timer. */
const MS = int(0, LONGEST_TIMER_MS);
/** A timer's delay that must not be 0. */
const POSITIVE_MS = int(1, LONGEST_TIMER_MS);
const POSITIVE = int(1);
/**
 * An order's deadline or timer (a BullMQ delay and a date in MySQL): past ~8,000 years an order's
 * deadline is a date MySQL cannot hold, and every order would fail to be written; kept to 10 years.
 */
const ORDER_TIMER_MS = int(1, 3650 * 86_400_000);

/** Every setting a process reads, with its parser. Defaults live in config/default.json. */
const schema = {
  NODE_ENV: oneOf(['development', 'test', 'production'] as const),
  HOST: text(),
  PORT,
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
  /** Fastify's two request lines (incoming, completed) for each checkout: ~20 % of a checkout's CPU at `info` (bench/README item 26) */
  LOG_CHECKOUT_REQUESTS: flag,
  /** the currency the shop's amounts (priceCents and every other *Cents: its minor unit) are in, as the console shows them */
  SHOP_CURRENCY: currency,
  MYSQL_URL: mysqlUrl,
  // two at least: the order-event publisher keeps one connection for its lock while its statements take another
  MYSQL_POOL_SIZE: int(2),
  /** how long a statement, or the opening of a connection, may go unanswered before MySQL counts as unavailable (a frozen network, a failover) */
  MYSQL_QUERY_TIMEOUT_MS: int(1, LONGEST_TIMER_MS),
  REDIS_URL: url(['redis:', 'rediss:']),
  /** how long the api waits for a Redis command's answer before the request answers 503 (a frozen network, a failover) */
  REDIS_COMMAND_TIMEOUT_MS: POSITIVE_MS,
  /** set: Redis is a cluster reached through these nodes, with REDIS_URL's credentials and TLS */
  REDIS_CLUSTER_NODES: redisNodes,
  /** no hash-tag braces: the stock keys carry their own tag (`{g0}`) right after it */
  REDIS_KEY_PREFIX: text(/^[A-Za-z0-9:_-]{0,64}$/, 'may hold only letters, digits, ":", "_" and "-"'),
  QUEUE_PREFIX: text(/^[A-Za-z0-9:_{}-]{1,64}$/, 'may hold only letters, digits, ":", "_", "-" and hash-tag braces'),
  AUTH_JWT_SECRET: secret,
  /**
   * set: a token must carry this `iss` (and `aud`), so a token the same identity provider signed for
   * another service (the same secret, another audience) is refused; empty: neither is checked (API.md's claims)
   */
  AUTH_JWT_ISSUER: optionalToken,
  AUTH_JWT_AUDIENCE: optionalToken,
  /**
   * the furthest ahead a token's `exp` may be: one expiring later is refused, so a token minted
   * for years by mistake, once leaked, is not a key for years (HS256 tokens cannot be revoked)
   */
  AUTH_JWT_MAX_LIFETIME_MS: int(60_000, 3650 * 86_400_000),
  /**
   * how far the clocks of the api and of whoever issues tokens may disagree: a token is taken that
   * far before its `nbf` and past its `exp`, and its `exp` that much further ahead than the lifetime
   * (a token issued for the whole lifetime on a host a second ahead was refused at once)
   */
  AUTH_CLOCK_TOLERANCE_MS: int(0, 300_000),
  /** verified tokens kept per api process, the oldest dropped when full (0: verify every request) */
  AUTH_TOKEN_CACHE_SIZE: int(0, 10_000_000),
  PAYMENT_CALLBACK_SECRET: secret,
  WAREHOUSE_CALLBACK_SECRET: secret,
  PAYMENT_TIMEOUT_MS: ORDER_TIMER_MS,
  FLASH_SALE_PAYMENT_TIMEOUT_MS: ORDER_TIMER_MS,
  AUTO_CONFIRM_MS: ORDER_TIMER_MS,
  AFTER_SALES_WINDOW_MS: ORDER_TIMER_MS,
  RETURN_PARCEL_WINDOW_MS: ORDER_TIMER_MS,
  /** how long the shop has to review a buyer's return request: then the system approves it */
  RETURN_REVIEW_WINDOW_MS: ORDER_TIMER_MS,
  /**
   * how long a refund the payment system accepted may go unconfirmed (its signed callback)
   * before the overdue sweep asks the payment system for it again, which confirms it again:
   * its callback was lost for good
   */
  REFUND_CONFIRMATION_WAIT_MS: POSITIVE_MS,
  /**
   * how long after its part was first sent (not drawn: a refund may wait for the warehouse, or the
   * payment system, long after it fell due) a refund the payment system accepted and never
   * confirmed is asked for again: past it, nothing asks again, and it waits for an operator
   * (refunds_unconfirmed_given_up, alert RefundsUnconfirmedGivenUp)
   */
  REFUND_CONFIRMATION_GIVE_UP_MS: POSITIVE_MS,
  /**
   * how long a payment sent to the payment system may go unreported (its signed callback) since
   * its last request, answered or not, before the overdue sweep asks the payment system about it
   * again, which charges nothing twice: its callback was lost for good. Also how long after its
   * last request a payment no longer due is failed as never received there (a request still on
   * its way, or being worked on, may yet take the money)
   */
  PAYMENT_CONFIRMATION_WAIT_MS: POSITIVE_MS,
  /**
   * how long after it was first sent a payment sent to the payment system and never reported on
   * (nor decided there: PROCESSING) is asked about: past it, nothing asks again, and it waits for an
   * operator (payments_unconfirmed_given_up, alert PaymentsUnconfirmedGivenUp)
   */
  PAYMENT_CONFIRMATION_GIVE_UP_MS: POSITIVE_MS,
  IDEMPOTENCY_TTL_MS: int(86_400_000),
  BODY_LIMIT_BYTES: int(1024, 10 * 1024 * 1024),
  MAX_ORDER_LINES: int(1, 500),
  MAX_LINE_QTY: int(1, 1_000_000),
  QUEUE_HIGH_WATER_MARK: POSITIVE,
  /** replicas that must acknowledge a turn's reservations (Redis WAIT) before the intake answers; 0: the master alone */
  RESERVATION_REPLICA_ACKS: int(0, 16),
  RESERVATION_REPLICA_TIMEOUT_MS: int(1, 10_000),
  WORKER_QUEUES: queueList,
  WORKER_CONCURRENCY: int(1, 10_000),
  WORKER_METRICS_PORT: PORT,
  /** BullMQ renews locks and checks for stalled jobs with Node timers of these */
  WORKER_LOCK_DURATION_MS: int(1000, LONGEST_TIMER_MS),
  WORKER_STALLED_INTERVAL_MS: int(1000, LONGEST_TIMER_MS),
  /** how often a job may be taken back from crashed workers before it counts as failed */
  WORKER_MAX_STALLED_COUNT: int(1, 1000),
  JOB_ATTEMPTS: int(1, 1000),
  /** at least 10: a job waiting out an outage retries this often, and 0 retries it in a tight loop */
  JOB_BACKOFF_MS: int(10, LONGEST_TIMER_MS),
  PERSIST_BATCH_SIZE: int(1, 5000),
  PERSIST_BATCH_WAIT_MS: MS,
  /** while orders keep coming, a partial batch starts at most this long after the writer's previous one (a full batch at once) */
  PERSIST_BUSY_INTERVAL_MS: MS,
  ORDERS_PER_JOB: int(1, 5000),
  /** how long a SKU a checkout found with nothing left is answered OUT_OF_STOCK from the api's memory (0: every checkout asks Redis) */
  SOLD_OUT_MEMORY_MS: int(0, 60_000),
  API_PROCESSES: int(1, 256),
  STRANDED_ORDER_AFTER_MS: POSITIVE,
  SWEEP_INTERVAL_MS: POSITIVE_MS,
  /**
   * the rows a sweep reads at a time (stranded orders: per group of the accepted set; the overdue
   * sweep: per read); the next sweep reads on from there, so rows it leaves (their job in the dead
   * letters) never hide the rows behind them
   */
  SWEEP_PAGE_SIZE: int(1, 100_000),
  SHUTDOWN_GRACE_MS: MS,
  /** on SIGTERM, how long the api answers readiness with 503, still serving, before it stops taking requests: the load balancer's time to take it out */
  SHUTDOWN_DRAIN_DELAY_MS: MS,
  /** how long `npm start` waits for the api to answer /health/ready before it stops what it started and fails */
  START_READY_TIMEOUT_MS: POSITIVE_MS,
  PAYMENT_URL: url(['http:', 'https:']),
  WAREHOUSE_URL: url(['http:', 'https:']),
  PAYMENT_SIM_PORT: PORT,
  WAREHOUSE_SIM_PORT: PORT,
  PAYMENT_SIM_LATENCY_MS: MS,
  PAYMENT_SIM_FAILURE_RATE: ratio,
  WAREHOUSE_SIM_STEP_MS: MS,
  /** the api's base URL as the external systems reach it, for their callbacks */
  CALLBACK_BASE_URL: url(['http:', 'https:']),
  PAYMENT_BREAKER_TIMEOUT_MS: POSITIVE_MS,
  PAYMENT_BREAKER_ERROR_THRESHOLD_PERCENT: int(1, 100),
  PAYMENT_BREAKER_RESET_MS: POSITIVE_MS,
  PAYMENT_BREAKER_VOLUME_THRESHOLD: int(0, 100_000),
  WAREHOUSE_BREAKER_TIMEOUT_MS: POSITIVE_MS,
  WAREHOUSE_BREAKER_ERROR_THRESHOLD_PERCENT: int(1, 100),
  WAREHOUSE_BREAKER_RESET_MS: POSITIVE_MS,
  WAREHOUSE_BREAKER_VOLUME_THRESHOLD: int(0, 100_000),
  /** how long a job waits before calling an external system again after a failed call */
  EXTERNAL_RETRY_DELAY_MS: POSITIVE_MS,
  PRESALE_DEPOSIT_PERCENT: int(1, 99),
  /** a BullMQ job's delay, not a Node timer's: weeks are fine; order lists by date look back that far (orderListOptionsOf) */
  PRESALE_BALANCE_TIMEOUT_MS: ORDER_TIMER_MS,
  PAYMENT_SIM_TIMEOUT_RATE: ratio,
  PAYMENT_SIM_DECLINE_RATE: ratio,
  /** share of payment requests the simulator refuses outright (402), charging nothing */
  PAYMENT_SIM_REFUSAL_RATE: ratio,
  PAYMENT_SIM_OUTAGE: flag,
  WAREHOUSE_SIM_LATENCY_MS: MS,
  WAREHOUSE_SIM_FAILURE_RATE: ratio,
  WAREHOUSE_SIM_TIMEOUT_RATE: ratio,
  WAREHOUSE_SIM_OUTAGE: flag,
  /** how many times a simulator retries a callback the order system did not answer with 2xx */
  SIM_CALLBACK_ATTEMPTS: int(1, 1000),
  SIM_CALLBACK_RETRY_MS: POSITIVE_MS,
  /** the order-event stream keeps about this many events (XADD MAXLEN ~) */
  EVENTS_STREAM_MAXLEN: int(1000),
  /** and none older than this (XTRIM MINID ~, once a minute; 0: as many as EVENTS_STREAM_MAXLEN whatever their age) */
  EVENTS_STREAM_KEPT_MS: MS,
  /** how often the publisher looks for new outbox rows when it has caught up */
  EVENTS_POLL_MS: POSITIVE_MS,
  EVENTS_BATCH_SIZE: int(1, 10_000),
  /** replicas that must hold a batch of order events before the outbox marks it published (0: the master alone) */
  EVENTS_REPLICA_ACKS: int(0, 16),
  EVENTS_REPLICA_TIMEOUT_MS: int(1, 10_000),
  /** events per webhook request */
  WEBHOOK_BATCH_SIZE: int(1, 1000),
  WEBHOOK_TIMEOUT_MS: POSITIVE_MS,
  /** first retry delay of a failed webhook delivery; doubles per attempt up to WEBHOOK_MAX_BACKOFF_MS */
  WEBHOOK_BACKOFF_MS: POSITIVE_MS,
  WEBHOOK_MAX_BACKOFF_MS: POSITIVE_MS,
  /** how long each webhook delivery attempt stays in its log (GET /v1/admin/webhooks/:webhookId/deliveries) before the publisher deletes it */
  WEBHOOK_DELIVERIES_KEPT_MS: int(60_000),
  /** whether a webhook may name a receiver on the shop's own networks (loopback, private, link-local); production: no */
  WEBHOOK_PRIVATE_RECEIVERS: flag,
  /** requests per RATE_LIMIT_WINDOW_MS: per authenticated user, and per IP for anonymous requests only */
  RATE_LIMIT_WINDOW_MS: int(1000),
  RATE_LIMIT_PER_USER: POSITIVE,
  RATE_LIMIT_PER_IP: POSITIVE,
  TRUST_PROXY: trustedProxies,
  /** checkout risk control: refused buyers (JWT sub) and devices (x-device-id), comma-separated */
  RISK_BLOCKED_USERS: idList,
  RISK_BLOCKED_DEVICES: idList,
  /** a buyer's checkout attempts allowed per RISK_VELOCITY_WINDOW_MS (0: no velocity rule) */
  RISK_VELOCITY_MAX_CHECKOUTS: int(0, 1_000_000),
  RISK_VELOCITY_WINDOW_MS: int(1000),
  /**
   * how far a signed callback's `at` (when the payment or parcel event happened) may be ahead of
   * our clock: one further ahead is refused (its sender's clock is wrong, and the time would be
   * kept); one of any age is applied, as callbacks are idempotent
   */
  CALLBACK_REPLAY_WINDOW_MS: int(1000),
  /**
   * how often a worker serving `timers` looks in MySQL for unpaid orders this long past their
   * payment deadline and expires them, and for shipped or delivered orders this long past their
   * auto-confirm or after-sales window and moves them on: the backstop for timer jobs Redis
   * lost (0: never)
   */
  OVERDUE_SWEEP_INTERVAL_MS: MS,
  /** how often a worker serving `timers` compares Redis stock with the ledger (0: never) */
  RECONCILE_INTERVAL_MS: MS,
  /** drift must look the same in two readings this far apart, so in-flight movements are not drift */
  RECONCILE_SETTLE_MS: MS,
  /**
   * how long a statement of the stock check (scheduled, or npm run reconcile) may go unanswered
   * before the check gives up, its lock free for the next: longer than MYSQL_QUERY_TIMEOUT_MS,
   * as its ledger sums read the whole ledger
   */
  RECONCILE_QUERY_TIMEOUT_MS: POSITIVE_MS,
} satisfies Record<string, Parser<unknown>>;

type Schema = typeof schema;
export type Config = Readonly<{ [K in keyof Schema]: ReturnType<Schema[K]> }>;

const DEV_SECRET_PREFIX = 'dev-only-';
/** 256 bits of a hex secret's worth of characters: HS256's own key size. */
const PRODUCTION_SECRET_MIN_LENGTH = 32;
const defaultConfigDir = fileURLToPath(new URL('../../../config/', import.meta.url));

function readJson(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/**
 * The most a price takes in cents: a SKU's, an imported line's unit price or shipping (the
 * api's request schemas). With the order limits below, an order's total stays a safe
 * integer (2^53), which every sum and allocation of its cents needs.
 */
export const MAX_PRICE_CENTS = 100_000_000_000;

/**
 * Reads config/default.json, then config/<NODE_ENV>.json, then the environment, and
 * validates every value. Throws one ConfigError listing all problems so an operator
 * fixes them in one go rather than one restart per typo.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  configDir: string = env.CONFIG_DIR ?? defaultConfigDir,
): Config {
  const nodeEnv = env.NODE_ENV ?? 'development';
  const layered: Record<string, unknown> = {
    NODE_ENV: nodeEnv,
    ...readJson(path.join(configDir, 'default.json')),
    ...readJson(path.join(configDir, `${nodeEnv}.json`)),
  };
  const problems: string[] = [];
  // a setting misspelt in a config file would leave its default in force, unsaid (an environment variable cannot be told apart from the host's own)
  for (const name of Object.keys(layered)) if (!(name in schema)) problems.push(`${name}, in ${configDir}, is no setting of these services (misspelt?)`);
  const result: Record<string, unknown> = {};
  for (const [name, parse] of Object.entries(schema) as [string, Parser<unknown>][]) {
    const raw = env[name] ?? (layered[name] === undefined ? undefined : String(layered[name]));
    if (raw === undefined) {
      problems.push(`${name} is required`);
      continue;
    }
    try {
      result[name] = parse(raw, name);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (nodeEnv === 'production') {
    for (const name of ['AUTH_JWT_SECRET', 'PAYMENT_CALLBACK_SECRET', 'WAREHOUSE_CALLBACK_SECRET']) {
      const value = result[name];
      if (typeof value !== 'string') continue;
      if (value.startsWith(DEV_SECRET_PREFIX)) {
        problems.push(`${name} still holds the development default; set a real secret in production`);
      } else if (value.length < PRODUCTION_SECRET_MIN_LENGTH) {
        // every buyer holds a signed token: a short HMAC key can be searched for offline
        problems.push(`${name} must be at least ${PRODUCTION_SECRET_MIN_LENGTH} characters in production (a random one: openssl rand -hex 32)`);
      }
    }
    // one secret for all three: whoever learns the payment system's signs tokens as admin
    if (result.AUTH_JWT_SECRET !== undefined && (result.AUTH_JWT_SECRET === result.PAYMENT_CALLBACK_SECRET || result.AUTH_JWT_SECRET === result.WAREHOUSE_CALLBACK_SECRET)) {
      problems.push('AUTH_JWT_SECRET must differ from the callback secrets in production: the payment and warehouse systems know theirs');
    }
    // one for both callbacks: the warehouse could sign the payment system's callbacks (a payment taken)
    if (result.PAYMENT_CALLBACK_SECRET !== undefined && result.PAYMENT_CALLBACK_SECRET === result.WAREHOUSE_CALLBACK_SECRET) {
      problems.push('PAYMENT_CALLBACK_SECRET and WAREHOUSE_CALLBACK_SECRET must differ in production: each system must sign only its own callbacks');
    }
    // a payment deadline waits PAYMENT_TIMEOUT_MS past itself for a payment asked in time: one whose callback was lost, asked
    // about later than that, finds its order expired (tests and demos run short timeouts beside the default wait: production only)
    const [confirmationWaitMs, paymentTimeoutMs] = [result.PAYMENT_CONFIRMATION_WAIT_MS, result.PAYMENT_TIMEOUT_MS];
    if (typeof confirmationWaitMs === 'number' && typeof paymentTimeoutMs === 'number' && confirmationWaitMs >= paymentTimeoutMs) {
      problems.push(
        `PAYMENT_CONFIRMATION_WAIT_MS must be below PAYMENT_TIMEOUT_MS in production (a payment whose callback was lost is asked about only after it, and its order waits past its deadline only as long), got ${confirmationWaitMs} and ${paymentTimeoutMs}`,
      );
    }
  }
  const clusterNodes = result.REDIS_CLUSTER_NODES as ReadonlyArray<unknown> | undefined;
  if (clusterNodes && clusterNodes.length > 0 && typeof result.QUEUE_PREFIX === 'string' && hashTagOf(result.QUEUE_PREFIX) === undefined) {
    // BullMQ's scripts touch many keys of a queue at once: on a cluster they must share one slot
    problems.push(`QUEUE_PREFIX must carry a hash tag such as '{${result.QUEUE_PREFIX}}' when REDIS_CLUSTER_NODES is set, got '${result.QUEUE_PREFIX}'`);
  }
  const [drainMs, graceMs] = [result.SHUTDOWN_DRAIN_DELAY_MS, result.SHUTDOWN_GRACE_MS];
  // the shutdown deadline (api's primary, npm start) is a Node timer of drain + grace + 1 s
  if (typeof drainMs === 'number' && typeof graceMs === 'number' && drainMs + graceMs + 1000 > LONGEST_TIMER_MS) {
    problems.push(`SHUTDOWN_DRAIN_DELAY_MS + SHUTDOWN_GRACE_MS must be at most ${LONGEST_TIMER_MS - 1000} ms (a Node timer, with 1 s added), got ${drainMs} + ${graceMs}`);
  }
  const [lines, qty] = [result.MAX_ORDER_LINES, result.MAX_LINE_QTY];
  // the dearest order: every line at the most units, priced and shipped at MAX_PRICE_CENTS
  if (typeof lines === 'number' && typeof qty === 'number' && lines * (qty + 1) * MAX_PRICE_CENTS > Number.MAX_SAFE_INTEGER) {
    const most = Math.floor(Number.MAX_SAFE_INTEGER / MAX_PRICE_CENTS);
    problems.push(`MAX_ORDER_LINES × (MAX_LINE_QTY + 1) must be at most ${most}, so that an order's total in cents stays exact at prices up to ${MAX_PRICE_CENTS}; got ${lines} × ${qty + 1}`);
  }
  // a payment or refund part unreported is asked about again from its wait on until its give-up: given up first, none ever is
  for (const [what, wait, giveUp] of [
    ['PAYMENT', result.PAYMENT_CONFIRMATION_WAIT_MS, result.PAYMENT_CONFIRMATION_GIVE_UP_MS],
    ['REFUND', result.REFUND_CONFIRMATION_WAIT_MS, result.REFUND_CONFIRMATION_GIVE_UP_MS],
  ] as const) {
    if (typeof wait === 'number' && typeof giveUp === 'number' && giveUp <= wait) {
      problems.push(`${what}_CONFIRMATION_GIVE_UP_MS must be above ${what}_CONFIRMATION_WAIT_MS (nothing unreported would ever be asked about again), got ${giveUp} and ${wait}`);
    }
  }
  const [attempts, backoffMs] = [result.JOB_ATTEMPTS, result.JOB_BACKOFF_MS];
  // BullMQ's exponential backoff has no ceiling: past a day, a failing job waits for weeks, and never reaches the dead letters an operator watches
  if (typeof attempts === 'number' && typeof backoffMs === 'number' && attempts >= 2 && backoffMs * 2 ** (attempts - 2) > LAST_RETRY_MOST_MS) {
    problems.push(`JOB_BACKOFF_MS × 2^(JOB_ATTEMPTS − 2), a failing job's last wait, must be at most ${LAST_RETRY_MOST_MS} ms (a day), got ${backoffMs} × 2^${attempts - 2}`);
  }
  const [replicaAcks, replicaTimeoutMs, commandTimeoutMs] = [result.RESERVATION_REPLICA_ACKS, result.RESERVATION_REPLICA_TIMEOUT_MS, result.REDIS_COMMAND_TIMEOUT_MS];
  // the WAIT for the replicas runs under the connection's command timeout: at or past it, a replica acknowledging in time is a 503
  if (typeof replicaAcks === 'number' && replicaAcks > 0 && typeof replicaTimeoutMs === 'number' && typeof commandTimeoutMs === 'number' && replicaTimeoutMs >= commandTimeoutMs) {
    problems.push(`RESERVATION_REPLICA_TIMEOUT_MS must be below REDIS_COMMAND_TIMEOUT_MS, under which its WAIT runs, got ${replicaTimeoutMs} and ${commandTimeoutMs}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(result) as Config;
}

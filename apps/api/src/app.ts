import { Ajv, type ValidateFunction } from 'ajv';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import addFormats from 'ajv-formats';
import { RefundRepository, StockLedgerRepository, serializedWithoutStatementValues } from '@orders/persistence';
import { readQueues } from '@orders/queues';
import { StockRebalancer } from '@orders/stock';
import Fastify, { LogController, type FastifyInstance, type FastifyRequest, type FastifyServerOptions, type onRequestHookHandler, type preParsingHookHandler } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { sql } from 'kysely';
import { stdSerializers } from 'pino';
import type { AppDeps } from './app-deps.js';
import { CheckoutIntake } from './checkout-intake.js';
import { CheckoutVelocity } from './checkout-velocity.js';
import { authPlugin } from './plugins/auth.js';
import { consolePlugin } from './plugins/console.js';
import { docsPlugin } from './plugins/docs.js';
import { merchantOrderViewsPlugin } from './plugins/merchant-order-views.js';
import { metricsPlugin } from './plugins/metrics.js';
import { answerClientError, answerFrameworkError, answerUnmetExpectation, problemDetailsPlugin } from './plugins/problem-details.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { securityHeadersPlugin } from './plugins/security-headers.js';
import { HttpProblem } from './problems.js';
import { QueueDepthSampler } from './queue-depth.js';
import { holdsLoneSurrogate, loneSurrogate, notUtf8, utf8TextOf } from './utf8-body.js';
import { adminOrderRoutes } from './routes/admin-orders.js';
import { adminQueueRoutes } from './routes/admin-queues.js';
import { callbackRoutes } from './routes/callbacks.js';
import { catalogRoutes } from './routes/catalog.js';
import { healthRoutes } from './routes/health.js';
import { merchantActionRoutes } from './routes/merchant-actions.js';
import { orderActionRoutes } from './routes/order-actions.js';
import { orderImportRoutes } from './routes/order-import.js';
import { orderRoutes } from './routes/orders.js';
import { paymentRoutes } from './routes/payments.js';
import { pricingAdminRoutes } from './routes/pricing-admin.js';
import { returnRoutes } from './routes/returns.js';
import { reverseFlowRoutes } from './routes/reverse-flows.js';
import { webhookRoutes } from './routes/webhooks.js';
import { orderSchema, problemSchema, skuSchema } from './schemas.js';

/**
 * A route's schema compiled when the route is first used rather than when it is registered:
 * compiling every validator and serializer of the api's routes took ~0.4 s of the ~1.9 s of
 * CPU a process needs to start, so a rolling restart, a process node:cluster forks or an
 * instance scaled out during a sale serves sooner. A route's first request pays its few
 * milliseconds. Each compilation is kept here too, so compileEverySchema can run them all
 * (a broken schema would otherwise show only at its route's first request, as a 500).
 */
class SchemasCompiledOnFirstUse {
  private readonly compilations: Array<() => unknown> = [];

  compiledOnFirstUse<Compiled>(compile: () => Compiled): () => Compiled {
    let compiled: Compiled | undefined;
    const compiledOnce = () => (compiled ??= compile());
    this.compilations.push(compiledOnce);
    return compiledOnce;
  }

  compileAll(): number {
    for (const compile of this.compilations) compile();
    return this.compilations.length;
  }
}

/**
 * Bodies are validated strictly (no type coercion, unknown fields rejected: API.md);
 * query strings and path params are coerced, since they arrive as text.
 */
function validatorCompilers(schemas: SchemasCompiledOnFirstUse) {
  const options = { allErrors: false, useDefaults: true, removeAdditional: false, strict: false } as const;
  const strictAjv = addFormats.default(new Ajv({ ...options, coerceTypes: false }));
  const coercingAjv = addFormats.default(new Ajv({ ...options, coerceTypes: 'array' }));
  for (const schema of [problemSchema, orderSchema, skuSchema]) {
    strictAjv.addSchema(schema);
    coercingAjv.addSchema(schema);
  }
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => {
    const compiled = schemas.compiledOnFirstUse(() => (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema));
    // Fastify reads `errors` after a call, as of Ajv's own function, and passes the request as
    // the parent (`schemaEnv` set) so a coerced or defaulted part is written back to it
    const validate = Object.assign(
      (data: unknown, parent?: Parameters<ValidateFunction>[1]) => {
        const valid = compiled()(data, parent);
        validate.errors = compiled().errors;
        return valid;
      },
      { errors: null as ValidateFunction['errors'], schemaEnv: true },
    );
    return validate;
  };
}

/** Fastify's own response serializers (fast-json-stringify), each compiled on its first answer. */
function serializerCompilers(schemas: SchemasCompiledOnFirstUse): NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildSerializer'] {
  const fastJsonStringify = SerializerSelector();
  return (externalSchemas, options) => {
    const compile = fastJsonStringify(externalSchemas as Parameters<typeof fastJsonStringify>[0], options);
    return (route) => {
      const serialize = schemas.compiledOnFirstUse(() => compile(route));
      return (data) => serialize()(data);
    };
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** SIGTERM's first phase: readiness answers 503 so the load balancer takes this instance out, while every request is still served. */
    leaveLoadBalancer(): void;
    /** Compiles every route's validators and serializers now, where each is otherwise compiled at its first use; throws for a schema that does not compile. How many it compiled. */
    compileEverySchema(): number;
  }
}

/** `POST /v1/orders`: nearly every request of a sale. */
function isCheckout(request: FastifyRequest): boolean {
  return request.method === 'POST' && request.routeOptions.url === '/v1/orders';
}

/** What the api takes from a caller as its request's id: 1–128 characters that are safe in a log line or a header. */
const CALLER_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fastify's `genReqId`: a caller's `x-request-id` names its request in every log line, so it is
 * taken only when it is an id (Fastify's `requestIdHeader` takes any value, kilobytes of anything);
 * otherwise the request gets an id of its own, as one sent without the header does, in
 * Fastify's own form (`req-` and a counter that wraps within V8's small integers).
 */
function requestIdsOf(): (request: IncomingMessage) => string {
  let last = 0;
  return (request) => {
    const sent = request.headers['x-request-id'];
    if (typeof sent === 'string' && CALLER_REQUEST_ID.test(sent)) return sent;
    last = (last + 1) & 0x7fffffff;
    return `req-${last.toString(36)}`;
  };
}

/**
 * Fastify's query string parser: a parameter sent empty is one left out, on every route, so
 * API.md's own template (`GET /v1/orders?status=&type=&limit=&cursor=`) and a form's blank
 * fields list as the bare path does, rather than failing the status enum or the cursor check.
 */
function queryWithoutEmptyValues(query: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(parseQuery(query)).filter(([, value]) => value !== ''));
}

/** Charsets a JSON body may declare: RFC 8259 has JSON exchanged in UTF-8, which ASCII is a part of. */
const JSON_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii']);

/**
 * A body sent with a content coding (gzip, br, ...) is refused 415, as RFC 9110 (15.5.16) has
 * it, naming `accept-encoding: identity`: the api decodes none, and read as it is a gzip body is
 * "not valid JSON" (a misleading 400) while a `br` one that happens to be plain JSON would be
 * taken as sent. So is a body declared in a charset other than UTF-8: the parser reads UTF-8,
 * and a latin1 name or address would be stored garbled. Before any parser, the callbacks'
 * signed raw-body one included.
 */
const refuseBodiesNotPlainUtf8: preParsingHookHandler = (request, reply, payload, done) => {
  const coding = request.headers['content-encoding']?.trim().toLowerCase();
  if (coding && coding !== 'identity') {
    void reply.header('accept-encoding', 'identity');
    return done(new HttpProblem(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${coding} is not supported: send the body uncompressed (identity)`));
  }
  const type = request.headers['content-type'];
  const charset = type === undefined ? undefined : /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1]?.toLowerCase();
  if (charset !== undefined && !JSON_CHARSETS.has(charset)) return done(new HttpProblem(415, 'UNSUPPORTED_MEDIA_TYPE', `A body in ${charset} is not supported: send JSON in UTF-8`));
  done(null, payload);
};

function trustNearestProxies(hops: number) {
  return (_address: string, hop: number) => hop < hops;
}

/**
 * Fastify's `logger`: the one asked for (a test's own stream), else LOG_LEVEL's. Either way an
 * error in it leaves out what a MySQL error carries of its statement's values: buyers'
 * addresses, phone numbers and names (withoutStatementValues).
 */
function loggerOf(asked: FastifyServerOptions['logger'], level: string): FastifyServerOptions['logger'] {
  if (asked === false) return false;
  const options = asked === undefined ? { level } : asked === true ? {} : asked;
  return { ...options, serializers: { ...options.serializers, err: serializedWithoutStatementValues(stdSerializers.err) } };
}

export async function buildApp(deps: AppDeps, { logger, ...options }: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const { config } = deps;
  const schemas = new SchemasCompiledOnFirstUse();
  const app = Fastify({
    logger: loggerOf(logger, config.LOG_LEVEL),
    // A sale's requests are nearly all checkouts, and their two request lines each cost a
    // checkout ~20 % of its CPU (bench/README item 26): written only when asked for. Their
    // outcomes are counted (checkouts_total), their errors logged either way.
    logController: new LogController({ disableRequestLogging: config.LOG_CHECKOUT_REQUESTS ? false : isCheckout }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
    // the load balancer's idle timeout must stay below this one
    keepAliveTimeout: 72_000,
    genReqId: requestIdsOf(),
    // Fastify's types take no hop count; proxy-addr's meaning of one: the n nearest proxies are trusted
    trustProxy: typeof config.TRUST_PROXY === 'number' ? trustNearestProxies(config.TRUST_PROXY) : config.TRUST_PROXY,
    // while draining on SIGTERM, a request on an open keep-alive connection is served (with
    // `connection: close`) instead of Fastify's bare 503, so nothing already sent is bounced
    return503OnClosing: false,
    schemaController: { compilersFactory: { buildSerializer: serializerCompilers(schemas) } },
    routerOptions: { querystringParser: queryWithoutEmptyValues },
    ...options,
  });
  // Node closes idle keep-alive connections once, when the server starts closing; a response
  // still being written then leaves its connection idle and open until keepAliveTimeout, and
  // close() waits for it. Closing the idle ones until the server is closed lets a drain end.
  let closeIdle: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closeIdle = setInterval(() => app.server.closeIdleConnections(), 50);
  });
  app.addHook('onClose', async () => clearInterval(closeIdle));
  // an `Expect` other than 100-continue: Node's bare 417 otherwise
  app.server.on('checkExpectation', answerUnmetExpectation);
  app.addHook('preParsing', refuseBodiesNotPlainUtf8);
  // Fastify's own JSON parsing (prototype poisoning refused), of a body that is valid UTF-8
  const parseJson = app.getDefaultJsonParser(app.initialConfig.onProtoPoisoning ?? 'error', app.initialConfig.onConstructorPoisoning ?? 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    // no body under a JSON content type (many clients send one with every POST): the route's schema decides, as without the header
    if ((body as Buffer).length === 0) return done(null, undefined);
    const text = utf8TextOf(body as Buffer);
    if (text === undefined) return done(notUtf8(), undefined);
    parseJson(request, text, (error, parsed) => (error ? done(error, undefined) : holdsLoneSurrogate(text, parsed) ? done(loneSurrogate(), undefined) : done(null, parsed)));
  });
  app.setValidatorCompiler(validatorCompilers(schemas));
  app.decorate('compileEverySchema', () => schemas.compileAll());
  // every log line of a request about an order carries its id, so one grep follows an order;
  // a hook of those routes only, so a checkout (the order's id not yet known) passes none
  const logWithOrderId: onRequestHookHandler = (request, reply, done) => {
    const { orderId } = request.params as { orderId?: unknown };
    if (typeof orderId === 'string') request.log = reply.log = request.log.child({ orderId });
    done();
  };
  app.addHook('onRoute', (route) => {
    if (route.url.includes(':orderId')) route.onRequest = [...[route.onRequest ?? []].flat(), logWithOrderId];
  });
  for (const schema of [problemSchema, orderSchema, skuSchema]) app.addSchema(schema);

  // third-party plugins, then the app's own, then routes (fastify/demo's order)
  await app.register(securityHeadersPlugin);
  await app.register(authPlugin, { signing: config, tokenCacheSize: config.AUTH_TOKEN_CACHE_SIZE, maxLifetimeMs: config.AUTH_JWT_MAX_LIFETIME_MS, clockToleranceMs: config.AUTH_CLOCK_TOLERANCE_MS });
  // before the routes, whose answers of orders it narrows for merchants
  await app.register(merchantOrderViewsPlugin, { orders: deps.orders, refunds: new RefundRepository(deps.db) });
  // request budgets, and on a checkout the velocity with them, counted in its reservation script
  const velocity = config.RISK_VELOCITY_MAX_CHECKOUTS > 0 ? new CheckoutVelocity(deps.inventory.keys, config.RISK_VELOCITY_WINDOW_MS, config.RISK_VELOCITY_MAX_CHECKOUTS) : null;
  await app.register(rateLimitPlugin, {
    counters: deps.inventory.windowCounters,
    keyPrefix: config.REDIS_KEY_PREFIX,
    slotGroupOf: (budget) => deps.inventory.keys.groupOf(budget),
    windowMs: config.RATE_LIMIT_WINDOW_MS,
    perUser: config.RATE_LIMIT_PER_USER,
    perIp: config.RATE_LIMIT_PER_IP,
    onUnchecked: () => deps.metrics.requestBudgetsUnchecked.inc(),
    processes: config.API_PROCESSES,
    // a buyer's checkout: another role's is refused 403 before the handler, its own budget spent and no buyer's checkout attempt
    spentByRoute: { applies: (request, { role }) => role === 'buyer' && isCheckout(request), alongside: (userId) => velocity?.counterOf(userId) ?? null },
  });

  const queueDepth = new QueueDepthSampler(deps.inventory, deps.metrics.ordersAwaitingMysql).start();
  app.addHook('onClose', async () => queueDepth.stop());
  deps.metrics.watchQueues(async () => readQueues(deps.queues.all));
  deps.metrics.watchDependency('redis', () => deps.redis.ping());
  deps.metrics.watchDependency('mysql', () => sql`SELECT 1`.execute(deps.db));
  const stockLedger = new StockLedgerRepository(deps.db);
  const intake = new CheckoutIntake({
    inventory: deps.inventory,
    queues: deps.queues,
    metrics: deps.metrics,
    queueDepth,
    highWaterMark: config.QUEUE_HIGH_WATER_MARK,
    ordersPerJob: config.ORDERS_PER_JOB,
    clock: deps.clock,
    log: app.log,
    risk: { blockedUsers: config.RISK_BLOCKED_USERS, blockedDevices: config.RISK_BLOCKED_DEVICES },
    rebalancer: new StockRebalancer({
      inventory: deps.inventory,
      recordTransfer: (transfer) => stockLedger.recordTransfer(transfer),
      clock: deps.clock,
      onError: (error, skuId) => app.log.warn({ err: error, skuId }, 'stock rebalance failed; the reconciler finishes an open transfer'),
    }),
  });

  // after the intake, which the error handler tells how a checkout it refused is answered;
  // before any route, each of which takes the error handler there is when it is added
  await app.register(problemDetailsPlugin, { checkouts: intake });
  // after the error handler, which its pages' routes take (a 429 there is problem details too); before the routes it documents
  await app.register(docsPlugin);
  await app.register(metricsPlugin, { metrics: deps.metrics });

  let leaving = false;
  app.decorate('leaveLoadBalancer', () => {
    leaving = true;
  });
  await app.register(healthRoutes, { deps, leaving: () => leaving });
  await app.register(orderRoutes, { deps, intake });
  await app.register(catalogRoutes, { deps });
  await app.register(paymentRoutes, { deps });
  await app.register(orderActionRoutes, { deps });
  await app.register(callbackRoutes, { deps });
  await app.register(adminOrderRoutes, { deps });
  await app.register(webhookRoutes, { deps });
  await app.register(orderImportRoutes, { deps });
  await app.register(pricingAdminRoutes, { deps });
  await app.register(reverseFlowRoutes, { deps });
  await app.register(returnRoutes, { deps });
  await app.register(merchantActionRoutes, { deps });
  await app.register(adminQueueRoutes, { deps });
  await app.register(consolePlugin, { currency: config.SHOP_CURRENCY, refundConfirmationGiveUpMs: config.REFUND_CONFIRMATION_GIVE_UP_MS, paymentConfirmationGiveUpMs: config.PAYMENT_CONFIRMATION_GIVE_UP_MS });
  return app;
}

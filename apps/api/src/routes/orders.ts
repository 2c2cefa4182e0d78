import { mergeOrderLines } from '@orders/domain';
import { StatementTooSlow, isDatabaseUnavailable } from '@orders/persistence';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import type { CheckoutBody, CheckoutIntake } from '../checkout-intake.js';
import type { Principal } from '../plugins/auth.js';
import { IDEMPOTENCY_KEY_PATTERN, refuseRepeatedKey } from '../idempotency-keys.js';
import { notFound, validationFailed } from '../problems.js';
import { acceptedView, pageWithQueuedOrders, queuedOrderFor, type ListedOrder } from '../queued-orders.js';
import { ULID_PATTERN, acceptedSchema, checkoutBodySchema, orderFilterProperties, orderParamsSchema, problemRef, retryLaterProblem } from '../schemas.js';

const ULID = new RegExp(ULID_PATTERN);

export async function orderRoutes(app: FastifyInstance, { deps, intake }: { deps: AppDeps; intake: CheckoutIntake }) {
  const { config, orders } = deps;

  /** Buyers see their own orders, merchants orders with their SKUs, admins all; others get 404 so ids cannot be probed. */
  async function visibleOrder(principal: Principal, orderId: string): Promise<ListedOrder> {
    if (!ULID.test(orderId)) throw notFound('order');
    const order = await orders.findOrder(orderId).catch(async (error: unknown) => {
      // MySQL away or slow: an order still in the queue is read from Redis, as the checkout that just took it
      // without MySQL answered (its statusUrl); one written already is not, its status there being MySQL's
      if ((isDatabaseUnavailable(error) || error instanceof StatementTooSlow) && (await deps.inventory.awaitsPersisting(orderId))) return null;
      throw error;
    });
    if (order) {
      if (principal.role === 'admin') return order;
      if (principal.role === 'buyer' && order.userId === principal.sub) return order;
      if (principal.role === 'merchant' && order.items.some((item) => item.merchantId === principal.sub)) return order;
      throw notFound('order');
    }
    const queued = await queuedOrderFor(deps, principal, orderId);
    if (queued) return acceptedView(queued);
    throw notFound('order');
  }

  app.post<{ Body: CheckoutBody; Headers: { 'idempotency-key': string; 'x-device-id'?: string } }>(
    '/v1/orders',
    {
      onRequest: app.requireRole('buyer'),
      schema: {
        tags: ['orders'],
        summary: 'Checkout: reserve stock and queue the order',
        description:
          '202 once the stock is reserved (or, for payment-time deduction, checked) and the order queued; the same Idempotency-Key with the same body answers the same 202, with another body 422 IDEMPOTENCY_CONFLICT. While a checkout under the key is still under way (the same request sent twice at once, or retried before the first was answered) another with the same body may answer 503 CHECKOUT_IN_PROGRESS with retry-after: retried with the same key, it gets that checkout’s order, or once that one was refused is taken on its own merits. A request sent again with the same Idempotency-Key and body after a 503 is the same checkout attempt for the buyer’s checkout velocity (403 RISK_REJECTED counts attempts, not retries); every request counts toward the request budget (429). A SKU with nothing left answers 409 OUT_OF_STOCK before its sale window (422 SALE_NOT_ACTIVE) and the per-buyer limit (422 LIMIT_EXCEEDED) are looked at; one with too few units for the quantity asked answers them first. A flash-sale SKU is not sold before its sale opens, whatever orderType is asked: 422 SALE_NOT_ACTIVE with the opening time in `opensAt` (its units are held for the sale, which sells them at its price and per-buyer limit); after the sale ended it sells at the list price as a standard order, and asked as flash_sale it is 422 SALE_NOT_ACTIVE.',
        headers: {
          type: 'object',
          required: ['idempotency-key'],
          properties: {
            'idempotency-key': { type: 'string', minLength: 1, maxLength: 255, pattern: IDEMPOTENCY_KEY_PATTERN },
            'x-device-id': { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7E]+$', description: "the client's device id, for risk control" },
          },
        },
        body: checkoutBodySchema({ maxLines: config.MAX_ORDER_LINES, maxQty: config.MAX_LINE_QTY }),
        response: {
          202: { ...acceptedSchema, headers: { location: { type: 'string', description: "the order's statusUrl" } } },
          '4xx': problemRef,
          503: retryLaterProblem(
            'OVERLOADED: the order queue is past its high-water mark; CHECKOUT_IN_PROGRESS: a checkout under this Idempotency-Key is still under way (retry with the same key); SERVICE_UNAVAILABLE: Redis or MySQL is away or too slow',
          ),
          '5xx': problemRef,
        },
      },
    },
    async (request, reply) => {
      refuseRepeatedKey(request);
      // the schema holds each line to MAX_LINE_QTY; the lines of one SKU are one line of their sum
      const over = request.body.items.length > 1 ? mergeOrderLines(request.body.items).find((line) => line.qty > config.MAX_LINE_QTY) : undefined;
      if (over) {
        throw validationFailed(`body/items: the lines of SKU ${over.skuId} add up to ${over.qty} units, more than the ${config.MAX_LINE_QTY} one line may hold (lines of one SKU are one line of their sum)`);
      }
      const { order } = await intake.checkout(request.user.sub, request.headers['idempotency-key'], request.body, request.headers['x-device-id'] ?? null, request.checkoutCounters);
      // the request's completed line names its order; without that line the child has no use
      if (config.LOG_CHECKOUT_REQUESTS) request.log = reply.log = request.log.child({ orderId: order.orderId });
      const statusUrl = `/v1/orders/${order.orderId}`;
      return reply.code(202).header('location', statusUrl).send({ orderId: order.orderId, status: 'ACCEPTED', statusUrl });
    },
  );

  app.get<{ Params: { orderId: string } }>(
    '/v1/orders/:orderId',
    {
      onRequest: app.requireRole('buyer', 'merchant', 'admin'),
      schema: { tags: ['orders'], summary: 'One order with its lines, amounts, payment, shipments, children and history', params: orderParamsSchema, response: { 200: { $ref: 'Order#' }, '4xx': problemRef } },
    },
    async (request) => visibleOrder(request.user, request.params.orderId),
  );

  app.get<{ Querystring: { status?: string; type?: string; limit: number; cursor?: string } }>(
    '/v1/orders',
    {
      onRequest: app.requireRole('buyer', 'merchant', 'admin'),
      schema: {
        tags: ['orders'],
        summary: "The caller's orders, newest first (a merchant's: orders with its SKUs; an admin's: all)",
        description:
          "A buyer's list holds their orders still in the queue too (ACCEPTED, from their 202 until the worker has written them, usually within a second), read from Redis, in their place by order id; `status=ACCEPTED` lists those alone. A merchant's and an admin's hold persisted orders only (an admin's search by buyer, GET /v1/admin/orders?userId=, holds theirs in the queue too): one still in the queue is listed once written, and GET /v1/orders/{orderId} answers it until then. A parameter sent empty (`?status=&cursor=`) is one left out.",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...orderFilterProperties,
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            cursor: { type: 'string', maxLength: 200 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: { $ref: 'Order#' } }, nextCursor: { type: ['string', 'null'] } },
          },
          '4xx': problemRef,
        },
      },
    },
    async (request) => {
      const { status, type, limit, cursor } = request.query;
      let before: string | undefined;
      if (cursor !== undefined) {
        before = Buffer.from(cursor, 'base64url').toString('utf8');
        if (!ULID.test(before)) throw validationFailed('cursor is not one this API issued');
      }
      const principal = request.user;
      const persisted = () =>
        orders.listOrders({
          userId: principal.role === 'buyer' ? principal.sub : undefined,
          merchantId: principal.role === 'merchant' ? principal.sub : undefined,
          // a buyer lists what they bought (a split order's parts are its subOrders); a merchant
          // lists what it fulfils: unsplit orders and the children holding its SKUs
          topLevel: principal.role === 'buyer' ? true : undefined,
          leaf: principal.role === 'merchant' ? true : undefined,
          status,
          type,
          before,
          limit: limit + 1,
        });
      const page =
        principal.role === 'buyer' && (status === undefined || status === 'ACCEPTED')
          ? await pageWithQueuedOrders(deps, { userId: principal.sub, before, limit: limit + 1, matching: (order) => type === undefined || order.type === type }, persisted, request.log)
          : await persisted();
      const items = page.slice(0, limit);
      const last = items.at(-1);
      return { items, nextCursor: page.length > limit && last ? Buffer.from(last.orderId).toString('base64url') : null };
    },
  );
}

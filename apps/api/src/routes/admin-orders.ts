import type { AcceptedOrder } from '@orders/domain';
import type { OrderListFilter } from '@orders/persistence';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { validationFailed } from '../problems.js';
import { pageWithQueuedOrders } from '../queued-orders.js';
import { ULID_PATTERN, orderFilterProperties, problemRef, subjectId } from '../schemas.js';
import { instant } from '../time-window.js';

const ULID = new RegExp(ULID_PATTERN);

/** GET /v1/admin/orders: the order centre's search over every order of every type, newest first. */
export async function adminOrderRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  app.get<{
    // the repository's filter, its instants as the query string gives them, paged by cursor
    Querystring: Omit<OrderListFilter, 'createdFrom' | 'createdTo' | 'before' | 'refundUnconfirmedForMs' | 'paymentUnconfirmedForMs'> & { createdFrom?: string; createdTo?: string; cursor?: string; refundUnconfirmed?: boolean; paymentUnconfirmed?: boolean };
  }>(
    '/v1/admin/orders',
    {
      onRequest: app.requireRole('admin'),
      schema: {
        tags: ['admin'],
        summary: 'Search all orders (any type, parents and children) by status, type, buyer, merchant, SKU, parent or when they were placed',
        description:
          "Persisted orders, and with `userId` a buyer's orders still in the queue too (ACCEPTED, from their 202 until the worker has written them), in their place by order id, unless the search names a merchant, a parent, refunds declined or refunds unconfirmed (`status=ACCEPTED` with `userId` lists those alone); one still in the queue is read by its id as well. A parameter sent empty is one left out, as is a flag (topLevel, leaf, refundDeclined, refundUnconfirmed, paymentUnconfirmed) sent false: a flag narrows the search when true; createdFrom and createdTo must be times the shop keeps (no leap second, years 1000 to 9999 in UTC), createdFrom not after createdTo, else 400 VALIDATION_FAILED naming them.",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...orderFilterProperties,
            userId: subjectId,
            merchantId: subjectId,
            skuId: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
            parentOrderId: { type: 'string', pattern: ULID_PATTERN },
            topLevel: { type: 'boolean', description: 'only orders that were not split off another' },
            leaf: { type: 'boolean', description: 'only orders that were not split into others: unsplit orders and the children of split ones (a split order takes its children\'s statuses, so each return or parcel is listed once)' },
            refundDeclined: {
              type: 'boolean',
              description:
                'only orders owing the buyer a refund the payment system declined (a refund part FAILED): money still owed until the payment system pays it after all or an admin settles it by hand (POST /v1/orders/:orderId/refunds/:refundId/settle-by-hand)',
            },
            refundUnconfirmed: {
              type: 'boolean',
              description:
                'only orders holding a refund part the payment system accepted (SENT) and never confirmed by its callback within REFUND_CONFIRMATION_GIVE_UP_MS (24 h) of first being asked: asked about no more (RefundsUnconfirmedGivenUp), until an admin asks for it again (POST /v1/orders/:orderId/refunds/:refundId/ask-again)',
            },
            paymentUnconfirmed: {
              type: 'boolean',
              description:
                'only orders holding a payment sent to the payment system and never reported on (no callback; looked up, not decided there) within PAYMENT_CONFIRMATION_GIVE_UP_MS (24 h) of first being sent: asked about no more (PaymentsUnconfirmedGivenUp), until an admin asks about it again (POST /v1/orders/:orderId/payments/:paymentId/ask-again). A split order\'s payment is its parent\'s: the parent is listed',
            },
            createdFrom: { type: 'string', format: 'date-time', description: 'only orders placed at or after this instant' },
            createdTo: { type: 'string', format: 'date-time', description: 'only orders placed before this instant' },
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            cursor: { type: 'string', maxLength: 200 },
          },
        },
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'Order#' } }, nextCursor: { type: ['string', 'null'] } } },
          '4xx': problemRef,
        },
      },
    },
    async (request) => {
      const { limit, cursor, createdFrom, createdTo, refundUnconfirmed, paymentUnconfirmed, ...rest } = request.query;
      const filter = {
        ...rest,
        ...(refundUnconfirmed ? { refundUnconfirmedForMs: deps.config.REFUND_CONFIRMATION_GIVE_UP_MS } : {}),
        ...(paymentUnconfirmed ? { paymentUnconfirmedForMs: deps.config.PAYMENT_CONFIRMATION_GIVE_UP_MS } : {}),
      };
      let before: string | undefined;
      if (cursor !== undefined) {
        before = Buffer.from(cursor, 'base64url').toString('utf8');
        if (!ULID.test(before)) throw validationFailed('cursor is not one this API issued');
      }
      const from = createdFrom === undefined ? undefined : instant(createdFrom, 'createdFrom');
      const to = createdTo === undefined ? undefined : instant(createdTo, 'createdTo');
      // swapped bounds: an empty page would read as "no orders then"
      if (from && to && from.getTime() > to.getTime()) throw validationFailed(`createdFrom ${from.toISOString()} is after createdTo ${to.toISOString()}`);
      const persisted = () => deps.orders.listOrders({ ...filter, createdFrom: from, createdTo: to, before, limit: limit + 1 });
      // a buyer's search (a support call about a fresh 202) shows their orders still in the queue too: unsplit,
      // of no merchant's search (a SKU's merchant is the catalog's), owing no refund
      const { userId, status, type, skuId } = filter;
      const queuedToo = userId !== undefined && (status === undefined || status === 'ACCEPTED') && filter.merchantId === undefined && filter.parentOrderId === undefined && !filter.refundDeclined && !refundUnconfirmed && !paymentUnconfirmed;
      const placedWithin = (order: AcceptedOrder) => {
        const placed = new Date(order.acceptedAt).getTime();
        return (from === undefined || placed >= from.getTime()) && (to === undefined || placed < to.getTime());
      };
      const matching = (order: AcceptedOrder) => (type === undefined || order.type === type) && (skuId === undefined || order.items.some((item) => item.skuId === skuId)) && placedWithin(order);
      const page = queuedToo ? await pageWithQueuedOrders(deps, { userId, before, limit: limit + 1, matching }, persisted, request.log) : await persisted();
      const items = page.slice(0, limit);
      const last = items.at(-1);
      return { items, nextCursor: page.length > limit && last ? Buffer.from(last.orderId).toString('base64url') : null };
    },
  );
}

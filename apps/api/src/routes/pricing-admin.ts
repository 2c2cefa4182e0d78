import type { Coupon } from '@orders/domain';
import { PricingRepository } from '@orders/persistence';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { SUBJECT } from '../tokens.js';
import { createCoupon, endCoupon } from '../pricing-admin.js';
import { notFound, validationFailed } from '../problems.js';
import { problemRef, warehouseIdSchema } from '../schemas.js';
import { timeWindow } from '../time-window.js';

const code = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } as const;
const cents = { type: 'integer', minimum: 0, maximum: 100_000_000_000 } as const;
const window = { startsAt: { type: 'string', format: 'date-time' }, endsAt: { type: 'string', format: 'date-time' } } as const;
const answered = { 200: { type: 'object', additionalProperties: true }, '4xx': problemRef, '5xx': problemRef } as const;
const created = { 201: { type: 'object', additionalProperties: true }, '4xx': problemRef, '5xx': problemRef } as const;

interface PromotionBody {
  promotionId: string;
  title: string;
  thresholdCents: number;
  offCents: number;
  skuIds?: string[];
  startsAt: string;
  endsAt: string;
}

interface CouponBody {
  code: string;
  kind: 'percent' | 'fixed';
  percentOff?: number;
  offCents?: number;
  minSpendCents: number;
  perBuyerLimit: number;
  totalLimit?: number;
  startsAt: string;
  endsAt: string;
}

/**
 * The admin side of pricing: threshold promotions, coupons, member levels and each
 * buyer's level, and shipping fees per warehouse. A change applies to the orders accepted
 * after it: the worker prices each order with the rules in force when it was accepted,
 * however long it waited in the queue.
 */
export async function pricingAdminRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const { catalog } = deps;
  const pricing = new PricingRepository(deps.db);
  const acceptanceClock = () => deps.inventory.acceptanceClock();
  const admin = app.requireRole('admin');

  app.post<{ Body: PromotionBody }>(
    '/v1/admin/promotions',
    {
      onRequest: admin,
      schema: {
        tags: ['pricing'],
        summary:
          'Create a threshold promotion: spend thresholdCents on the covered SKUs, get offCents off (409 CONFLICT if the id exists, or if 100 promotions already overlap its window on one of its SKUs; 400 VALIDATION_FAILED naming SKUs that do not exist)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['promotionId', 'title', 'thresholdCents', 'offCents', 'startsAt', 'endsAt'],
          properties: {
            promotionId: code,
            title: { type: 'string', minLength: 1, maxLength: 200 },
            thresholdCents: cents,
            offCents: { ...cents, minimum: 1, description: 'at least 1: a promotion of 0 would be listed on orders for nothing' },
            skuIds: { type: 'array', minItems: 1, maxItems: 1000, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' }, description: 'absent: every SKU' },
            ...window,
          },
        },
        response: created,
      },
    },
    async (request, reply) => {
      const body = request.body;
      const { startsAt, endsAt } = timeWindow(body);
      if (body.skuIds) {
        const known = await catalog.findSkus(body.skuIds);
        const unknown = body.skuIds.filter((skuId) => !known.has(skuId));
        if (unknown.length > 0) throw validationFailed(`skuIds name SKUs that do not exist: ${unknown.join(', ')}`);
      }
      // from its creation on, for the orders accepted since: by the clock they are accepted by
      await pricing.createPromotion({ ...body, skuIds: body.skuIds ?? null, startsAt, endsAt }, acceptanceClock);
      return reply.code(201).send(body);
    },
  );

  app.post<{ Body: CouponBody }>(
    '/v1/admin/coupons',
    {
      onRequest: admin,
      schema: {
        tags: ['pricing'],
        summary: 'Create a coupon: percentOff % or offCents off an order reaching minSpendCents, perBuyerLimit orders per buyer (409 CONFLICT if the code exists)',
        description:
          'The coupon reaches checkout once MySQL has committed it. A create answered 5xx may have committed it without putting it on sale: the same create sent again (the same fields) puts it on sale and answers 201; a different one under its code, or the same one once on sale, answers 409, as does the same one after Redis lost it once an order used it (`npm run reconcile -- --repair` puts it back on sale with its uses counted).',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['code', 'kind', 'minSpendCents', 'perBuyerLimit', 'startsAt', 'endsAt'],
          properties: {
            code,
            kind: { type: 'string', enum: ['percent', 'fixed'] },
            percentOff: { type: 'integer', minimum: 1, maximum: 100, description: 'required for kind percent; refused for kind fixed' },
            offCents: { ...cents, description: 'required for kind fixed, at least 1; refused for kind percent unless 0' },
            minSpendCents: cents,
            perBuyerLimit: { type: 'integer', minimum: 1, maximum: 1_000 },
            totalLimit: {
              type: 'integer',
              minimum: 1,
              maximum: 1_000_000_000,
              description:
                'the first so many orders, all buyers together: at most this many orders hold a use at once (checkout answers 422 COUPON_LIMIT_EXCEEDED beyond it), a use given back by an order cancelled, unpaid or priced without the coupon taken again by the next. A checkout holds its use from its acceptance until its order is priced: a cart below the minimum spend gives it back then, seconds later, or longer while the orders queue (a cart of flash-sale lines alone, which the coupon takes nothing off, holds none); absent: no limit',
            },
            ...window,
          },
        },
        response: created,
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body.kind === 'percent' && body.percentOff === undefined) throw validationFailed('a percent coupon needs percentOff');
      if (body.kind === 'fixed' && body.offCents === undefined) throw validationFailed('a fixed coupon needs offCents');
      if (body.kind === 'fixed' && body.offCents === 0) throw validationFailed('a fixed coupon takes at least 1 cent off: offCents 0 would take nothing');
      // the other kind's amount would be stored and answered back, and never applied (offCents 0 names none)
      if (body.kind === 'percent' && body.offCents) throw validationFailed('offCents is for a fixed coupon: a percent coupon takes percentOff % off, no amount');
      if (body.kind === 'fixed' && body.percentOff !== undefined) throw validationFailed('percentOff is for a percent coupon: a fixed coupon takes offCents off, no percentage');
      const coupon = { ...body, percentOff: body.percentOff ?? 0, offCents: body.offCents ?? 0, totalLimit: body.totalLimit ?? 0, ...timeWindow(body) };
      await createCoupon({ pricing, inventory: deps.inventory }, coupon);
      return reply.code(201).send(body);
    },
  );

  app.get<{ Params: { code: string } }>(
    '/v1/admin/coupons/:code',
    {
      onRequest: admin,
      schema: {
        tags: ['pricing'],
        summary: 'A coupon as created, with how many orders hold a use of it now (and, with a total limit, how many uses are left)',
        description:
          '`usesHeld` is checkout\'s count in Redis: orders accepted with the coupon that neither gave the use back (cancelled, unpaid, priced without it) nor lost it; null while Redis has no copy of the coupon (a day after its end it is gone; one not ended that Redis lost, the stock repair publishes again). `usesLeft` is `totalLimit` less that, or null without a total limit.',
        params: { type: 'object', additionalProperties: false, required: ['code'], properties: { code } },
        response: answered,
      },
    },
    async (request) => {
      const coupon = await pricing.findCoupon(request.params.code);
      if (!coupon) throw notFound('coupon');
      return couponView(coupon);
    },
  );

  app.put<{ Params: { code: string } }>(
    '/v1/admin/coupons/:code/end',
    {
      onRequest: admin,
      schema: {
        tags: ['pricing'],
        summary: 'End a coupon now: checkout refuses it from this answer on (422 COUPON_INVALID); orders accepted with it before keep it',
        description:
          "The coupon ends now by Redis's clock, the one checkouts are accepted by, at checkout and in MySQL at the same instant: an order accepted with it before is priced with it, however long it waits in the queue, and keeps the discount through payment, cancellation and refunds; one not started yet ends at its start and never runs. 200 with the coupon as GET answers it (`endsAt` its new end). Asked again, or for a coupon ended already, it answers 200 as it stands. 404 NOT_FOUND for a code that does not exist. A 503 means Redis or MySQL did not answer: checkout may refuse the coupon already while MySQL still holds the old end (the stock repair would publish that one again), so send the same request again until it answers 200.",
        params: { type: 'object', additionalProperties: false, required: ['code'], properties: { code } },
        response: answered,
      },
    },
    async (request) => {
      const coupon = await endCoupon({ pricing, inventory: deps.inventory }, request.params.code);
      if (!coupon) throw notFound('coupon');
      return couponView(coupon);
    },
  );

  app.put<{ Params: { promotionId: string } }>(
    '/v1/admin/promotions/:promotionId/end',
    {
      onRequest: admin,
      schema: {
        tags: ['pricing'],
        summary: 'End a threshold promotion now: orders accepted from this answer on are priced without it; those accepted before keep it',
        description:
          "The promotion ends now by Redis's clock, the one checkouts are accepted by: the worker prices an order accepted before with it, however long it waits in the queue (a batch priced while the end was made is priced again), and one accepted after without it; one not started yet ends at its start and never runs. 200 with the promotion (`endsAt` its new end; `skuIds` absent when it covers every SKU). Asked again, or for a promotion ended already, it answers 200 as it stands. 404 NOT_FOUND for an id that does not exist. A 503 means MySQL did not answer: nothing changed, send it again.",
        params: { type: 'object', additionalProperties: false, required: ['promotionId'], properties: { promotionId: code } },
        response: answered,
      },
    },
    async (request) => {
      const promotion = await pricing.endPromotion(request.params.promotionId, acceptanceClock);
      if (!promotion) throw notFound('promotion');
      const { skuIds, ...rest } = promotion;
      return { ...rest, ...(skuIds ? { skuIds } : {}), startsAt: promotion.startsAt.toISOString(), endsAt: promotion.endsAt.toISOString() };
    },
  );

  /** A coupon as GET answers it: with how many orders hold a use of it now, and how many are left under a total limit. */
  async function couponView(coupon: Coupon) {
    const usesHeld = await deps.inventory.couponUsesHeld(coupon.code);
    const totalLimit = coupon.totalLimit || null;
    return {
      ...coupon,
      totalLimit,
      startsAt: coupon.startsAt.toISOString(),
      endsAt: coupon.endsAt.toISOString(),
      usesHeld,
      usesLeft: totalLimit === null || usesHeld === null ? null : Math.max(0, totalLimit - usesHeld),
    };
  }

  app.put<{ Params: { level: string }; Body: { discountPercent: number; freeShipping: boolean } }>(
    '/v1/admin/member-levels/:level',
    {
      onRequest: admin,
      schema: {
        tags: ['pricing'],
        summary: "Define or change a member level's discount and free shipping",
        params: { type: 'object', additionalProperties: false, required: ['level'], properties: { level: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$' } } },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['discountPercent', 'freeShipping'],
          properties: { discountPercent: { type: 'integer', minimum: 0, maximum: 100 }, freeShipping: { type: 'boolean' } },
        },
        response: answered,
      },
    },
    async (request) => {
      const level = { level: request.params.level, ...request.body };
      // dated by the clock orders are accepted by (Redis's), as promotions are: an api host's clock off would price orders accepted before it with it, or after it without it
      await pricing.setMemberLevel(level, acceptanceClock);
      return level;
    },
  );

  app.put<{ Params: { userId: string }; Body: { level: string } }>(
    '/v1/admin/members/:userId',
    {
      onRequest: admin,
      schema: {
        tags: ['pricing'],
        summary: "Set a buyer's member level (400 VALIDATION_FAILED for an undefined level)",
        params: { type: 'object', additionalProperties: false, required: ['userId'], properties: { userId: { type: 'string', pattern: SUBJECT.source, description: 'a subject the api accepts in a token: not . or ..' } } },
        body: { type: 'object', additionalProperties: false, required: ['level'], properties: { level: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$' } } },
        response: answered,
      },
    },
    async (request) => {
      await pricing.setMember(request.params.userId, request.body.level, acceptanceClock);
      return { userId: request.params.userId, level: request.body.level };
    },
  );

  app.put<{ Params: { warehouseId: string }; Body: { feeCents: number } }>(
    '/v1/admin/warehouses/:warehouseId/shipping',
    {
      onRequest: admin,
      schema: {
        tags: ['pricing'],
        summary: 'Set the shipping fee of a parcel from this warehouse (a warehouse without one ships free)',
        params: { type: 'object', additionalProperties: false, required: ['warehouseId'], properties: { warehouseId: warehouseIdSchema } },
        body: { type: 'object', additionalProperties: false, required: ['feeCents'], properties: { feeCents: cents } },
        response: answered,
      },
    },
    async (request) => {
      await pricing.setShippingFee(request.params.warehouseId, request.body.feeCents, acceptanceClock);
      return { warehouseId: request.params.warehouseId, feeCents: request.body.feeCents };
    },
  );
}

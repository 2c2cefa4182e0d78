import { randomUUID } from 'node:crypto';
import { SALE_CHANGE_CUTOFF_MS, SaleAlreadyOpen, SaleEndTooClose, flashSaleConflict, isOffSale, orderTypeConflict, sameFlashSale, stockBucketsConflict, type FlashSale, type Sku, type SkuOrderType } from '@orders/domain';
import { StockBucketLost, StockSets, summedBuckets } from '@orders/stock';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { changeFlashSale, createSkuWithStock, keyedCreateRef, keyedStockSetRef, putSkuOffSale } from '../catalog-admin.js';
import { optionalIdempotencyKey, refuseRepeatedKey } from '../idempotency-keys.js';
import type { Principal } from '../plugins/auth.js';
import { HttpProblem, forbidden, notFound, validationFailed } from '../problems.js';
import { PATH_SEGMENT_ID_PATTERN, flashSaleBodySchema, problemRef, skuBodySchema, skuParamsSchema, subjectId } from '../schemas.js';
import { instant, timeWindow } from '../time-window.js';

type FlashSaleBody = { priceCents: number; startsAt: string; endsAt: string; perUserLimit: number };

/**
 * A flash sale as a body gives it, its times checked (timeWindow; `prefix`: where the body has it).
 * Redis keeps its times, and names each buyer's count toward its limit, by milliseconds since 1970:
 * a sale opening before then (a negative count) would fail every later checkout of its buyers.
 */
const flashSaleOf = (body: FlashSaleBody, prefix: string): FlashSale => {
  const window = timeWindow(body, prefix);
  if (window.startsAt.getTime() < 0) throw validationFailed(`${prefix}startsAt ${body.startsAt} is before 1970-01-01T00:00:00Z: a sale opening now may say so with any time since`);
  return { priceCents: body.priceCents, ...window, perUserLimit: body.perUserLimit };
};

/** A SKU to create, as validated: a field the body leaves out has the schema's default (useDefaults). */
interface SkuBody {
  skuId: string;
  title: string;
  priceCents: number;
  merchantId: string;
  channel: Sku['channel'];
  warehouseId: string;
  stock: number;
  deduction: Sku['deduction'];
  flashSale?: FlashSaleBody;
  stockBuckets: number;
  orderType: SkuOrderType;
}

/** A SKU's id as the catalog takes it (skuBodySchema): what a page's cursor names. */
const SKU_ID = new RegExp(PATH_SEGMENT_ID_PATTERN);

/** Redis lost part of a SKU's counters: its stock cannot be set until the stock repair has recreated them. */
const stockRepairPending = () =>
  new HttpProblem(503, 'SERVICE_UNAVAILABLE', "Stock (Redis) lost part of this SKU's counters: its stock can be set again once the stock repair has recreated them; retry later", 60);

export async function catalogRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const { catalog, inventory } = deps;
  const stockSets = new StockSets({ inventory, record: (...set) => catalog.setStock(...set), clock: deps.clock });
  const staff = app.requireRole('merchant', 'admin');
  const skuResponse = { 200: { $ref: 'Sku#' }, '4xx': problemRef, '5xx': problemRef };
  /** Listed in /docs/json on the answers of the routes that take an Idempotency-Key. */
  const replayedHeader = { 'idempotent-replayed': { type: 'string', enum: ['true'], description: 'sent when the answer is to a request repeated with its Idempotency-Key: nothing was done again' } };

  async function skuView(skuId: string, principal: Principal) {
    const sku = await catalog.findSku(skuId);
    if (!sku || (principal.role === 'merchant' && sku.merchantId !== principal.sub)) throw notFound('SKU');
    return viewOf(sku);
  }

  /** A catalog SKU as the api answers it: with its stock in Redis, per bucket and summed from that one reading, and whether it is on sale. */
  async function viewOf(sku: Sku & { stock: number }) {
    const bucketStock = await inventory.bucketStock(sku.skuId);
    const stock = bucketStock && summedBuckets(bucketStock);
    const { stock: _setQuantity, offSaleSince, ...rest } = sku;
    return {
      ...rest,
      stockBuckets: sku.stockBuckets ?? 1,
      orderType: sku.orderType ?? 'standard',
      onSale: !isOffSale(sku),
      offSaleSince: offSaleSince?.toISOString() ?? null,
      stock: stock ?? { available: 0, reserved: 0, sold: 0 },
      bucketStock: bucketStock ?? [],
    };
  }

  app.post<{ Body: SkuBody; Headers: { 'idempotency-key'?: string } }>(
    '/v1/admin/skus',
    { onRequest: staff, schema: {
        tags: ['catalog'],
        summary: 'Create a SKU with its stock and optional flash sale',
        description:
          'A SKU with a flash sale sells at its flash price and per-buyer limit from startsAt until endsAt (by Redis\'s clock). Its stock is held for the sale until it opens: a checkout before startsAt is refused with 422 SALE_NOT_ACTIVE, saying when it opens (`opensAt`). After endsAt what is left sells at the list price as a standard order, without the limit. 409 SKU_EXISTS for a skuId the catalog has. With an Idempotency-Key header (the caller\'s own, for this skuId) a create sent again after a lost answer is answered as the first was: 201 with the SKU as it is now and the header `idempotent-replayed: true`, even sent twice at once; the same key with another body for this skuId 422 IDEMPOTENCY_CONFLICT (the key is kept with the SKU: one sent for another skuId is that SKU\'s).',
        headers: optionalIdempotencyKey('the caller’s own key for the skuId: the same key and body answer the SKU it created (201, idempotent-replayed: true), another body for that skuId 422 IDEMPOTENCY_CONFLICT'),
        body: skuBodySchema,
        response: { '4xx': problemRef, '5xx': problemRef, 201: { $ref: 'Sku#', headers: { location: { type: 'string', description: 'the SKU at GET /v1/admin/skus/{skuId}' }, ...replayedHeader } } },
      },
    },
    async (request, reply) => {
      refuseRepeatedKey(request);
      const body = request.body;
      if (request.user.role === 'merchant' && body.merchantId !== request.user.sub) {
        throw forbidden('A merchant creates SKUs for itself only');
      }
      const flashSale = body.flashSale && flashSaleOf(body.flashSale, 'flashSale.');
      const sku: Sku = {
        skuId: body.skuId,
        title: body.title,
        priceCents: body.priceCents,
        merchantId: body.merchantId,
        channel: body.channel,
        warehouseId: body.warehouseId,
        deduction: body.deduction,
        flashSale: flashSale ?? null,
        stockBuckets: body.stockBuckets,
        orderType: body.orderType,
      };
      const conflict = orderTypeConflict(sku) ?? flashSaleConflict(sku) ?? stockBucketsConflict(sku);
      if (conflict) throw validationFailed(conflict);
      const key = request.headers['idempotency-key'];
      const keyed = key === undefined ? undefined : keyedCreateRef(request.user, key, body);
      const { replacedLeftover, finishedEarlier, replayed } = await createSkuWithStock(deps, sku, body.stock, keyed?.ref ?? randomUUID(), keyed?.keyPrefix);
      if (replacedLeftover) request.log.warn({ skuId: sku.skuId }, 'replaced counters Redis held for this SKU, which the catalog did not have');
      if (finishedEarlier) request.log.warn({ skuId: sku.skuId }, 'put on sale a SKU an earlier create committed without reaching Redis');
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).header('location', `/v1/admin/skus/${sku.skuId}`).send(await skuView(sku.skuId, request.user));
    },
  );

  app.get<{ Querystring: { offSale?: boolean; merchantId?: string; limit: number; cursor?: string } }>(
    '/v1/admin/skus',
    {
      onRequest: staff,
      schema: {
        tags: ['catalog'],
        summary: 'The SKUs, by id, each with its stock (a merchant: its own)',
        description:
          'A page of the catalog by skuId, each SKU as GET /v1/admin/skus/{skuId} answers it. `offSale=true`: only the SKUs taken off sale (what skus_off_sale counts: one left there by mistake sells nothing), `false` only those on sale. An admin may name a merchant; a merchant lists its own SKUs (naming another is 403 FORBIDDEN). The next page is read with `cursor` set to `nextCursor` (null on the last).',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            offSale: { type: 'boolean' },
            merchantId: subjectId,
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            cursor: { type: 'string', maxLength: 200 },
          },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'Sku#' } }, nextCursor: { type: ['string', 'null'] } } }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const { offSale, limit, cursor } = request.query;
      const merchant = request.user.role === 'merchant' ? request.user.sub : undefined;
      if (merchant !== undefined && request.query.merchantId !== undefined && request.query.merchantId !== merchant) throw forbidden('A merchant lists its own SKUs only');
      const after = cursor === undefined ? undefined : Buffer.from(cursor, 'base64url').toString('utf8');
      if (after !== undefined && !SKU_ID.test(after)) throw validationFailed('cursor is not one this API issued');
      const page = await catalog.listSkus({ offSale, merchantId: merchant ?? request.query.merchantId, after, limit: limit + 1 });
      const items = await Promise.all(page.slice(0, limit).map(viewOf));
      const last = items.at(-1);
      return { items, nextCursor: page.length > limit && last ? Buffer.from(last.skuId).toString('base64url') : null };
    },
  );

  app.get<{ Params: { skuId: string } }>(
    '/v1/admin/skus/:skuId',
    { onRequest: staff, schema: { tags: ['catalog'], summary: 'A SKU with its available, reserved and sold stock', params: skuParamsSchema, response: skuResponse } },
    async (request) => skuView(request.params.skuId, request.user),
  );

  app.put<{ Params: { skuId: string }; Body: { stock: number }; Headers: { 'idempotency-key'?: string } }>(
    '/v1/admin/skus/:skuId/stock',
    {
      onRequest: staff,
      schema: {
        tags: ['catalog'],
        summary: 'Set the sellable quantity (Redis and the MySQL ledger together)',
        description:
          'The stock is absolute. With an Idempotency-Key header (the caller\'s own, for this SKU) a set sent again after a lost answer (a timeout, a 502, a 503) is answered as the first was: 200 with the SKU as it is now and the header `idempotent-replayed: true`, nothing set again, so the units sold in between stay sold; the same key with another body 422 IDEMPOTENCY_CONFLICT, nothing set. Sent again without a key, the set is made again: units sold since the first are back on sale. A 503 means Redis or MySQL did not answer in time: the set may have begun. One that reached Redis is then finished, in Redis, MySQL and the ledger, by the next set of the SKU or the next stock check; never half-done. Retrying with the same stock is safe for Redis, MySQL and the ledger; with the same key it also keeps what sold meanwhile sold. With RESERVATION_REPLICA_ACKS above 0 a set is answered 200 only once that many Redis replicas hold it: fewer within RESERVATION_REPLICA_TIMEOUT_MS answer 503 SERVICE_UNAVAILABLE with retry-after, the set made on the master alone (a failover would bring the stock it replaced back); send it again with the same key, answered once the replicas hold it. While Redis has lost part of the SKU\'s stock counters (a node that came back empty), the set is refused with 503 SERVICE_UNAVAILABLE and retry-after, nothing changed: measured without them it would put their units back on sale on top of the new stock once the stock repair (reconcile --repair) recreates them; it goes through once the repair has run.',
        headers: optionalIdempotencyKey('the caller’s own key for the SKU: the same key and body answer the SKU as it is now, nothing set again (200, idempotent-replayed: true), another body 422 IDEMPOTENCY_CONFLICT'),
        params: skuParamsSchema,
        body: { type: 'object', additionalProperties: false, required: ['stock'], properties: { stock: { type: 'integer', minimum: 0, maximum: 1_000_000_000 } } },
        response: { ...skuResponse, 200: { $ref: 'Sku#', headers: replayedHeader } },
      },
    },
    async (request, reply) => {
      refuseRepeatedKey(request);
      await skuView(request.params.skuId, request.user);
      const { skuId } = request.params;
      const { stock } = request.body;
      const key = request.headers['idempotency-key'];
      const keyed = key === undefined ? undefined : keyedStockSetRef(request.user, key, request.body);
      const outcome = await stockSets
        .set(
          skuId,
          stock,
          keyed?.ref ?? randomUUID(),
          (untaken) => {
            if (untaken > 0) request.log.warn({ skuId, untaken }, 'stock set undone after MySQL refused it; units reserved meanwhile stay as drift for the reconciler');
          },
          keyed?.keyPrefix,
        )
        .catch((error: unknown) => {
          if (!(error instanceof StockBucketLost)) throw error;
          request.log.warn({ skuId, lostBuckets: error.buckets }, 'stock set refused: Redis lost buckets of the SKU; run the stock repair (reconcile --repair)');
          throw stockRepairPending();
        });
      if (outcome === 'unknown') throw notFound('SKU');
      if (outcome === 'recorded') reply.header('idempotent-replayed', 'true');
      return skuView(request.params.skuId, request.user);
    },
  );

  /**
   * Changes, adds or withdraws (`sale` null) a SKU's flash sale while no buyer has bought in it:
   * the sale has not opened (nor opens within SALE_CHANGE_CUTOFF_MS), or is over for good
   * (ended, its buyers' counts gone with it and its queued orders all in MySQL), and the new one
   * does not open now, all by Redis's clock, the one checkouts are accepted by. The catalog's row
   * is held while every bucket in Redis changes; asked again, the same change answers the same.
   */
  async function changeSkuSale(skuId: string, principal: Principal, sale: FlashSale | null, log: FastifyBaseLogger) {
    const sku = await catalog.findSku(skuId);
    if (!sku || (principal.role === 'merchant' && sku.merchantId !== principal.sub)) throw notFound('SKU');
    const conflict = orderTypeConflict({ ...sku, flashSale: sale }) ?? flashSaleConflict({ ...sku, flashSale: sale });
    if (conflict) throw validationFailed(conflict);
    if (!sameFlashSale(sku.flashSale, sale)) {
      const now = await inventory.acceptanceClock();
      const cutoff = now.getTime() + SALE_CHANGE_CUTOFF_MS;
      const opened = sku.flashSale && sku.flashSale.startsAt.getTime() <= cutoff ? sku.flashSale : null;
      const overForGoodAt = opened ? (await inventory.saleOverForGoodAt(sku, opened)).getTime() : 0;
      if (opened && now.getTime() < overForGoodAt) throw new SaleAlreadyOpen(skuId, opened.startsAt, new Date(overForGoodAt));
      // over for good: a queued order accepted in it is yet to be priced, by the sale the catalog has then (one
      // accepted before it opened is priced without a sale either way)
      const queued = opened ? await inventory.acceptedIn(skuId, opened.startsAt, opened.endsAt) : 0;
      if (queued > 0) throw new HttpProblem(409, 'CONFLICT', `${queued} order(s) of SKU ${skuId} accepted while its last sale ran are not in MySQL yet (priced there by the sale it had): retry once they are (dead letters: npm run dlq)`, 60);
      if (sale && sale.startsAt.getTime() <= cutoff) {
        throw validationFailed(`startsAt must be more than ${SALE_CHANGE_CUTOFF_MS / 1000} s ahead of now (${now.toISOString()} by the clock checkouts are accepted by): orders accepted before the change were priced without this sale`);
      }
    }
    return publishSaleChange(sku, sale, false, principal, log);
  }

  /**
   * Ends a SKU's flash sale at `endsAt`, opened or not, in the catalog and every bucket together:
   * by Redis's clock, more than SALE_CHANGE_CUTOFF_MS ahead and before the sale's own end, so that
   * every bucket has the change before that instant and no order accepted in the sale is priced
   * without it. Asked again, the same end answers the same.
   */
  async function endSkuSale(skuId: string, principal: Principal, endsAt: Date, log: FastifyBaseLogger) {
    const sku = await catalog.findSku(skuId);
    if (!sku || (principal.role === 'merchant' && sku.merchantId !== principal.sub)) throw notFound('SKU');
    const sale = sku.flashSale;
    if (!sale) throw new HttpProblem(409, 'CONFLICT', `SKU ${skuId} has no flash sale to end`);
    if (sale.endsAt.getTime() === endsAt.getTime()) return skuView(skuId, principal);
    const now = await inventory.acceptanceClock();
    const cutoff = now.getTime() + SALE_CHANGE_CUTOFF_MS;
    if (sale.endsAt.getTime() <= cutoff) throw new SaleEndTooClose(skuId, sale.endsAt, endsAt);
    if (endsAt.getTime() > sale.endsAt.getTime()) throw validationFailed(`endsAt must be before the sale's end (${sale.endsAt.toISOString()}): a sale is ended early here, never made longer`);
    if (endsAt.getTime() <= cutoff) {
      throw validationFailed(`endsAt must be more than ${SALE_CHANGE_CUTOFF_MS / 1000} s ahead of now (${now.toISOString()} by the clock checkouts are accepted by): every bucket of the SKU ends the sale at that instant, after it has the change`);
    }
    if (endsAt.getTime() <= sale.startsAt.getTime()) throw validationFailed(`endsAt must be after the sale's startsAt (${sale.startsAt.toISOString()}): to call off a sale not open yet, withdraw it`);
    return publishSaleChange(sku, { ...sale, endsAt }, true, principal, log);
  }

  /** A checked change of a SKU's sale made in the catalog and Redis (changeFlashSale), logged with who made it. */
  async function publishSaleChange(sku: Sku, sale: FlashSale | null, endOnly: boolean, principal: Principal, log: FastifyBaseLogger) {
    const { skuId } = sku;
    const previous = await changeFlashSale(deps, sku, sale, endOnly).catch((error: unknown) => {
      if (!(error instanceof StockBucketLost)) throw error;
      log.warn({ skuId, lostBuckets: error.buckets }, 'flash sale change refused: Redis lost buckets of the SKU; run the stock repair (reconcile --repair)');
      throw stockRepairPending();
    });
    if (previous === undefined) throw notFound('SKU');
    if (!sameFlashSale(previous, sale)) log.info({ skuId, by: principal.sub, from: previous, to: sale }, endOnly ? 'flash sale ended early' : sale ? 'flash sale changed' : 'flash sale withdrawn');
    return skuView(skuId, principal);
  }

  const saleChangeDescription =
    `Only while no buyer has bought in the sale: before it opens (by Redis's clock, the one checkouts are accepted by), and no later than ${SALE_CHANGE_CUTOFF_MS / 1000} s before; or once it is over for good, at its end (its buyers' counts toward its limit name it and count in no other sale), when a new sale may replace it, so a SKU can have a sale every day, and one ended early its next at once (409 CONFLICT with retry-after while orders accepted while it ran are still on their way to MySQL). A sale that has opened answers 409 SALE_ALREADY_OPEN with \`opensAt\` and \`changeableAt\` (when it is over for good: its end; for a sale set by a release before the counts named their sale, when they go: its former end for one ended early, a day after its end for one set before the counts went with it) until then: orders were accepted, and are priced, by it; to stop a running sale, end it early (PUT .../flash-sale/end), or take the SKU off sale (PUT /v1/admin/skus/{skuId}/on-sale) to stop selling it at once, what orders give back afterwards included. Asked again, the same change answers 200 as it stands. A 503 means Redis or MySQL did not answer: retry the same request, which finishes a change half made.`;

  app.put<{ Params: { skuId: string }; Body: FlashSaleBody }>(
    '/v1/admin/skus/:skuId/flash-sale',
    {
      onRequest: staff,
      schema: {
        tags: ['catalog'],
        summary: 'Change, postpone or add the flash sale of a SKU before it opens',
        description: `The SKU sells by the new sale from its startsAt (at least ${SALE_CHANGE_CUTOFF_MS / 1000} s ahead, else 400 VALIDATION_FAILED); its units are held for it until then (checkouts answer 422 SALE_NOT_ACTIVE with the new \`opensAt\`). A SKU without a sale gets one. ${saleChangeDescription}`,
        params: skuParamsSchema,
        body: flashSaleBodySchema,
        response: skuResponse,
      },
    },
    async (request) => changeSkuSale(request.params.skuId, request.user, flashSaleOf(request.body, ''), request.log),
  );

  app.put<{ Params: { skuId: string }; Body: { endsAt: string } }>(
    '/v1/admin/skus/:skuId/flash-sale/end',
    {
      onRequest: staff,
      schema: {
        tags: ['catalog'],
        summary: 'End the flash sale of a SKU early, running or not',
        description: `The sale ends at endsAt, by Redis's clock (the one checkouts are accepted by), in every bucket of the SKU and in the catalog at the same instant: endsAt must be before the sale's end and more than ${SALE_CHANGE_CUTOFF_MS / 1000} s ahead of now, else 400 VALIDATION_FAILED (every bucket has the change before then); a sale ending within that time, or ended, answers 409 SALE_END_TOO_CLOSE, a SKU without a sale 409 CONFLICT. Orders accepted before endsAt keep the sale's price; from endsAt what is left sells at the list price as a standard order, without the limit (to stop selling, take the SKU off sale: PUT /v1/admin/skus/{skuId}/on-sale). The buyers' counts toward the sale's limit name it and count in no other sale, so the SKU's next sale may follow once it has ended (a sale set by a release before the counts named their sale waits for its former end: changeableAt). Asked again, the same end answers 200 as it stands. A 503 means Redis or MySQL did not answer: send the same request again before endsAt, which finishes an end half made.`,
        params: skuParamsSchema,
        body: { type: 'object', additionalProperties: false, required: ['endsAt'], properties: { endsAt: { type: 'string', format: 'date-time' } } },
        response: skuResponse,
      },
    },
    async (request) => endSkuSale(request.params.skuId, request.user, instant(request.body.endsAt, 'endsAt'), request.log),
  );

  app.put<{ Params: { skuId: string }; Body: { onSale: boolean } }>(
    '/v1/admin/skus/:skuId/on-sale',
    {
      onRequest: staff,
      schema: {
        tags: ['catalog'],
        summary: 'Take a SKU off sale, or put it back on sale',
        description:
          "`{ \"onSale\": false }` stops selling the SKU at once, in every bucket of its stock: every checkout of it is refused with 422 SALE_NOT_ACTIVE (its detail says the SKU is off sale), whatever its flash sale and the time, or 409 OUT_OF_STOCK once nothing is left to sell (the sold-out answer comes first). Nothing else changes: orders already accepted go on (paid, shipped, cancelled as ever), and the units they give back (a cancel, an unpaid order's expiry, a return) wait in `available` instead of going on sale, so the stock need not be set again. What a wrong price, a product recall or a launch called off asks for first; the flash sale, if any, runs on by the clock (end it too, PUT .../flash-sale/end, for its buyers' next sale). `{ \"onSale\": true }` sells what is available again, by the SKU's rules. 200 with the SKU (`onSale`, `offSaleSince`: MySQL's time it was taken off). Asked again, the same answers 200 as it stands. A bucket of its stock Redis lost sells nothing until the stock repair recreates it, as the catalog then has the SKU. A 503 means Redis or MySQL did not answer: retry the same request, which finishes a change half made.",
        params: skuParamsSchema,
        body: { type: 'object', additionalProperties: false, required: ['onSale'], properties: { onSale: { type: 'boolean' } } },
        response: skuResponse,
      },
    },
    async (request) => {
      const { skuId } = request.params;
      const sku = await catalog.findSku(skuId);
      if (!sku || (request.user.role === 'merchant' && sku.merchantId !== request.user.sub)) throw notFound('SKU');
      const offSale = !request.body.onSale;
      const since = await putSkuOffSale(deps, sku, offSale);
      if (since === undefined) throw notFound('SKU');
      if (isOffSale(sku) !== offSale) request.log.info({ skuId, by: request.user.sub }, offSale ? 'SKU taken off sale' : 'SKU put back on sale');
      return skuView(skuId, request.user);
    },
  );

  app.delete<{ Params: { skuId: string } }>(
    '/v1/admin/skus/:skuId/flash-sale',
    {
      onRequest: staff,
      schema: {
        tags: ['catalog'],
        summary: 'Withdraw the flash sale of a SKU before it opens',
        description: `The SKU sells at its list price as a standard order from now on. ${saleChangeDescription}`,
        params: skuParamsSchema,
        response: skuResponse,
      },
    },
    async (request) => changeSkuSale(request.params.skuId, request.user, null, request.log),
  );
}

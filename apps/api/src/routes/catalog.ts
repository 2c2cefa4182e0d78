import { randomUUID } from 'node:crypto';
import { orderTypeConflict, type Sku, type SkuOrderType } from '@orders/domain';
import { StockSets } from '@orders/stock';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { createSkuWithStock } from '../catalog-admin.js';
import type { Principal } from '../plugins/auth.js';
import { forbidden, notFound, validationFailed } from '../problems.js';
import { problemRef, skuBodySchema, skuParamsSchema } from '../schemas.js';
import { timeWindow } from '../time-window.js';

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
  flashSale?: { priceCents: number; startsAt: string; endsAt: string; perUserLimit: number };
  stockBuckets: number;
  orderType: SkuOrderType;
}

export async function catalogRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const { catalog, inventory } = deps;
  const stockSets = new StockSets({ inventory, record: (...set) => catalog.setStock(...set), clock: deps.clock });
  const staff = app.requireRole('merchant', 'admin');
  const skuResponse = { 200: { $ref: 'Sku#' }, 201: { $ref: 'Sku#' }, '4xx': problemRef, '5xx': problemRef };

  async function skuView(skuId: string, principal: Principal) {
    const sku = await catalog.findSku(skuId);
    if (!sku || (principal.role === 'merchant' && sku.merchantId !== principal.sub)) throw notFound('SKU');
    const [stock, bucketStock] = await Promise.all([inventory.getSkuStock(skuId), inventory.bucketStock(skuId)]);
    const { stock: _setQuantity, ...rest } = sku;
    return { ...rest, stockBuckets: sku.stockBuckets ?? 1, orderType: sku.orderType ?? 'standard', stock: stock ?? { available: 0, reserved: 0, sold: 0 }, bucketStock: bucketStock ?? [] };
  }

  app.post<{ Body: SkuBody }>(
    '/v1/admin/skus',
    { preValidation: staff, schema: { tags: ['catalog'], summary: 'Create a SKU with its stock and optional flash sale', body: skuBodySchema, response: skuResponse } },
    async (request, reply) => {
      const body = request.body;
      if (request.user.role === 'merchant' && body.merchantId !== request.user.sub) {
        throw forbidden('A merchant creates SKUs for itself only');
      }
      const flashSale = body.flashSale && {
        priceCents: body.flashSale.priceCents,
        ...timeWindow(body.flashSale, 'flashSale.'),
        perUserLimit: body.flashSale.perUserLimit,
      };
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
      const conflict = orderTypeConflict(sku);
      if (conflict) throw validationFailed(conflict);
      const { replacedLeftover } = await createSkuWithStock(deps, sku, body.stock, randomUUID());
      if (replacedLeftover) request.log.warn({ skuId: sku.skuId }, 'replaced the stock an earlier create of this SKU left in Redis without reaching MySQL');
      return reply.code(201).header('location', `/v1/admin/skus/${sku.skuId}`).send(await skuView(sku.skuId, request.user));
    },
  );

  app.get<{ Params: { skuId: string } }>(
    '/v1/admin/skus/:skuId',
    { preValidation: staff, schema: { tags: ['catalog'], summary: 'A SKU with its available, reserved and sold stock', params: skuParamsSchema, response: skuResponse } },
    async (request) => skuView(request.params.skuId, request.user),
  );

  app.put<{ Params: { skuId: string }; Body: { stock: number } }>(
    '/v1/admin/skus/:skuId/stock',
    {
      preValidation: staff,
      schema: {
        tags: ['catalog'],
        summary: 'Set the sellable quantity (Redis and the MySQL ledger together)',
        description:
          'A 503 means Redis or MySQL did not answer in time: the set may have begun. One that reached Redis is then finished, in Redis, MySQL and the ledger, by the next set of the SKU or the next stock check; never half-done. Retrying with the same stock is safe.',
        params: skuParamsSchema,
        body: { type: 'object', additionalProperties: false, required: ['stock'], properties: { stock: { type: 'integer', minimum: 0, maximum: 1_000_000_000 } } },
        response: skuResponse,
      },
    },
    async (request) => {
      await skuView(request.params.skuId, request.user);
      const { skuId } = request.params;
      const { stock } = request.body;
      const found = await stockSets.set(skuId, stock, randomUUID(), (untaken) => {
        if (untaken > 0) request.log.warn({ skuId, untaken }, 'stock set undone after MySQL refused it; units reserved meanwhile stay as drift for the reconciler');
      });
      if (!found) throw notFound('SKU');
      return skuView(request.params.skuId, request.user);
    },
  );
}

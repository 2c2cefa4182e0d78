import { planImport, type ImportedOrder } from '@orders/domain';
import { OrderImportRepository } from '@orders/persistence';
import type { FastifyInstance } from 'fastify';
import { ulid } from 'ulid';
import type { AppDeps } from '../app-deps.js';
import { validationFailed } from '../problems.js';
import { ORDER_IMPORT_BODY_LIMIT, orderImportBodySchema, problemRef } from '../schemas.js';

/**
 * The order centre's import: orders taken by other business order systems join this
 * shop's orders, so the console, the order lists and the metrics show one truth across
 * channels. Each keeps its channel and external id and follows the `imported` table.
 * All or nothing per request: one invalid order refuses the batch (400, naming it).
 */
export async function orderImportRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const imports = new OrderImportRepository(deps.db);
  const { config } = deps;

  app.post<{ Body: { channel: string; orders: ImportedOrder[] } }>(
    '/v1/admin/orders/import',
    {
      // its bodies may be large: only an admin's are read
      onRequest: app.requireRole('admin'),
      bodyLimit: ORDER_IMPORT_BODY_LIMIT,
      schema: {
        tags: ['admin'],
        summary: 'Import orders from another order system; importing the same (channel, externalOrderId) again changes nothing',
        description:
          "All or nothing per request: one invalid order refuses the batch with 400 VALIDATION_FAILED naming it, among them one holding a SKU on two lines (an order holds one line per SKU). An imported order is never split, and a merchant moves only orders holding its own goods alone: an order holding several merchants' goods that is still to be shipped, delivered or completed (PAID, SHIPPED, DELIVERED) is refused, its channel sending each merchant's goods as an order of its own; one that arrived closed (COMPLETED, CANCELLED) is taken as it is.",
        body: orderImportBodySchema({ maxLines: config.MAX_ORDER_LINES, maxQty: config.MAX_LINE_QTY }),
        response: {
          200: {
            type: 'object',
            properties: {
              imported: { type: 'integer' },
              duplicates: { type: 'integer' },
              results: {
                type: 'array',
                items: { type: 'object', properties: { externalOrderId: { type: 'string' }, orderId: { type: 'string' }, outcome: { type: 'string', enum: ['imported', 'duplicate'] } } },
              },
            },
          },
          '4xx': problemRef,
          '5xx': problemRef,
        },
      },
    },
    async (request) => {
      const { channel, orders } = request.body;
      const repeated = orders.find((order, index) => orders.findIndex((other) => other.externalOrderId === order.externalOrderId) !== index);
      if (repeated) throw validationFailed(`externalOrderId ${repeated.externalOrderId} appears twice in the batch`);
      const now = deps.clock();
      const plans = orders.map((order) => ({ ...planImport(order, now), orderId: ulid() }));
      const results = await imports.importOrders(channel, plans, deps.clock());
      const imported = results.filter((result) => result.outcome === 'imported').length;
      deps.metrics.ordersImported.inc({ channel }, imported);
      return { imported, duplicates: results.length - imported, results };
    },
  );
}

import { IllegalTransition, planImport, stateMachineFor, type ImportedOrder } from '@orders/domain';
import { OrderImportRepository, type ImportOutcome } from '@orders/persistence';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { ulid } from 'ulid';
import type { AppDeps } from '../app-deps.js';
import { bodySize, validationFailed } from '../problems.js';
import { ORDER_IMPORT_BODY_LIMIT, ORDER_IMPORT_MAX, orderImportBodySchema, problemRef } from '../schemas.js';
import { fireTableAction, followUpAgain } from './order-engine-support.js';

/** What importing an order again did: nothing (`duplicate`), moved it on to the status its channel reports, or found it cannot. */
type ImportResult = Omit<ImportOutcome, 'outcome'> & { outcome: ImportOutcome['outcome'] | 'advanced' | 'conflict'; status: string };

const importedMachine = stateMachineFor('imported');

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
        summary: "Import orders from another order system; importing the same (channel, externalOrderId) again moves it on to the status its channel reports, or changes nothing",
        description:
          `Up to ${ORDER_IMPORT_MAX} orders in a body of at most ${bodySize(ORDER_IMPORT_BODY_LIMIT)}; a larger body is refused with 413 PAYLOAD_TOO_LARGE naming the limit: send fewer orders per request. ` +
          "An order imported before (the same channel and externalOrderId) is not imported again: of what is sent again only its status is read. One further on the imported table (SHIPPED, DELIVERED, COMPLETED; CANCELLED while PAID) moves the order there as its channel (system), step by step, its shipment with it and its warehouse told of a cancel (outcome advanced); the status it has, or one it passed here (its warehouse delivered it first), changes nothing (duplicate); one it cannot reach from here (cancelled in the channel, shipped here) changes nothing (conflict: for the shop to settle with the channel; counted in imported_order_conflicts_total by channel at each sending, which raises ImportedOrderConflicts). Each result carries the order's status here. All or nothing per request: one invalid order refuses the batch with 400 VALIDATION_FAILED naming it, among them one holding a SKU on two lines (an order holds one line per SKU). An imported order is never split, and a merchant moves only orders holding its own goods alone: an order holding several merchants' goods that is still to be shipped, delivered or completed (PAID, SHIPPED, DELIVERED) is refused, its channel sending each merchant's goods as an order of its own, and so is one whose goods are at several warehouses (it has one parcel, from one warehouse); one that arrived closed (COMPLETED, CANCELLED) is taken as it is.",
        body: orderImportBodySchema({ maxLines: config.MAX_ORDER_LINES, maxQty: config.MAX_LINE_QTY }),
        response: {
          200: {
            type: 'object',
            properties: {
              imported: { type: 'integer' },
              duplicates: { type: 'integer' },
              advanced: { type: 'integer' },
              conflicts: { type: 'integer' },
              results: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    externalOrderId: { type: 'string' },
                    orderId: { type: 'string' },
                    outcome: { type: 'string', enum: ['imported', 'duplicate', 'advanced', 'conflict'] },
                    status: { type: 'string', description: "the order's status here, once this request is done with it" },
                  },
                },
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
      const outcomes = await imports.importOrders(channel, plans, deps.clock());
      // counted once committed: a re-sent order failing to move on below answers 5xx, and a replay finds these duplicates
      deps.metrics.ordersImported.inc({ channel }, outcomes.filter((outcome) => outcome.outcome === 'imported').length);
      // the channel's conflicts from 0 on: increase() misses the first of a series that appears with it (ImportedOrderConflicts)
      deps.metrics.importedOrderConflicts.inc({ channel }, 0);
      const results: ImportResult[] = [];
      // one at a time, in the batch's order: a channel's updates of one buyer's orders land as it sent them
      for (const [index, outcome] of outcomes.entries()) {
        const reported = plans[index]!.order.status;
        results.push(outcome.outcome === 'imported' ? { ...outcome, status: reported } : await moveOnAsReported(request.log, channel, outcome, reported));
      }
      const counted = (outcome: ImportResult['outcome']) => results.filter((result) => result.outcome === outcome).length;
      return { imported: counted('imported'), duplicates: counted('duplicate'), advanced: counted('advanced'), conflicts: counted('conflict'), results };
    },
  );

  /**
   * An order imported before, sent again by its channel: moved on to the status the channel
   * reports, each step as the channel (`system`) as the import's replay fires them, unless it is
   * there already or past it here. Moved meanwhile by someone else (its merchant, its warehouse,
   * the same update sent twice), it is looked at again.
   */
  async function moveOnAsReported(log: FastifyBaseLogger, channel: string, outcome: ImportOutcome, reported: string): Promise<ImportResult> {
    const { orderId, externalOrderId } = outcome;
    let moved = false;
    for (;;) {
      const { status } = (await deps.orders.findOrderRow(orderId))!;
      const [here, there] = [importedMachine.progress(status), importedMachine.progress(reported)];
      // on its forward life already past what the channel reports (its warehouse delivered it first)
      if (status === reported || (there >= 0 && here >= there)) {
        // sent again, maybe as the first sending's follow-ups were lost (its warehouse never told of a cancel): enqueued again, harmless by their job ids
        if (!moved) await followUpAgain(deps, orderId);
        return { ...outcome, outcome: moved ? 'advanced' : 'duplicate', status };
      }
      const path = importedMachine.pathTo(reported, 'system', status);
      if (!path) {
        log.warn({ orderId, channel, externalOrderId, reported, status }, 'a channel reports a status its imported order cannot reach here: left as it is, for the shop to settle with the channel');
        // goods gone with the money paid back in the channel, or the other way round: someone has to hear of it
        deps.metrics.importedOrderConflicts.inc({ channel });
        return { ...outcome, outcome: 'conflict', status };
      }
      let at = status;
      try {
        for (const step of path) {
          await fireTableAction(deps, { orderId, action: step.action, actor: 'system', detail: `reported ${reported} by ${channel} order ${externalOrderId}` });
          [at, moved] = [step.to, true];
          // cancelled by its channel: a cancellation of an order paid there, as its shop's is counted
          if (step.action === 'cancel') deps.metrics.cancellations.inc({ stage: 'paid_in_channel' });
        }
      } catch (error) {
        // looked at again only when someone else moved it meanwhile: each look follows a step taken, so the looks end
        if (!(error instanceof IllegalTransition) || (await deps.orders.findOrderRow(orderId))!.status === at) throw error;
      }
    }
  }
}

import { storedAddress, type PlannedImport } from '@orders/domain';
import type { OrderDb } from './connection.js';
import { isDuplicateKey, retryTransaction } from './mysql-errors.js';
import { orderItemRow } from './order-repository.js';

export interface ImportOutcome {
  externalOrderId: string;
  orderId: string;
  outcome: 'imported' | 'duplicate';
}

/** Tries of one import against concurrent imports of the same orders. */
const IMPORT_ATTEMPTS = 8;

/**
 * The parcel of an imported order still on its way, where its channel left it (with the
 * warehouse of its lines): the warehouse's callbacks move it on, and the order with it.
 * An order that arrived closed (COMPLETED, CANCELLED) is taken as it is, with none.
 */
const SHIPMENT_OF_IMPORTED: Partial<Record<string, string>> = { PAID: 'ACCEPTED', SHIPPED: 'SHIPPED', DELIVERED: 'DELIVERED' };

/**
 * Writes orders taken by other order systems into the order centre. Idempotent per
 * (channel, external id): importing the same order again answers its existing id and
 * changes nothing. Imported stock is the channel's own allocation, so no stock ledger
 * rows are written; the history (and so the event feed) reads like any other order's,
 * and an order still on its way has its shipment, as a handed-over one has.
 */
export class OrderImportRepository {
  constructor(private readonly db: OrderDb) {}

  async importOrders(channel: string, plans: ReadonlyArray<PlannedImport & { orderId: string }>, now: Date): Promise<ImportOutcome[]> {
    // some of the orders imported at the same moment by other requests: the next try finds
    // them duplicates (a deadlock between overlapping batches ends the same way); each try
    // settles at least one rival, so a few cover the batches sent at once
    return retryTransaction(() => this.importOnce(channel, plans, now), { attempts: IMPORT_ATTEMPTS, alsoAfter: isDuplicateKey });
  }

  private async importOnce(channel: string, plans: ReadonlyArray<PlannedImport & { orderId: string }>, now: Date): Promise<ImportOutcome[]> {
    return this.db.transaction().execute(async (trx) => {
      const externalIds = plans.map((plan) => plan.order.externalOrderId);
      const existing = new Map(
        (await trx.selectFrom('orders').select(['order_id', 'external_order_id']).where('source_channel', '=', channel).where('external_order_id', 'in', externalIds).execute()).map(
          (row) => [row.external_order_id!, row.order_id],
        ),
      );
      // in one order of ids, so two imports of overlapping batches lock them in the same order
      const fresh = plans.filter((plan) => !existing.has(plan.order.externalOrderId)).sort((a, b) => (a.order.externalOrderId < b.order.externalOrderId ? -1 : 1));
      if (fresh.length > 0) {
        await trx
          .insertInto('orders')
          .values(
            fresh.map(({ orderId, order, amounts, steps }) => ({
              order_id: orderId,
              parent_order_id: null,
              type: 'imported',
              status: steps.at(-1)!.to,
              version: steps.length,
              user_id: order.userId,
              channel: null,
              subtotal_cents: amounts.subtotalCents,
              discount_cents: amounts.discountCents,
              shipping_cents: amounts.shippingCents,
              payable_cents: amounts.payableCents,
              refunded_cents: 0,
              address: storedAddress(order.address),
              coupon_code: null,
              accepted_at: new Date(order.placedAt),
              payment_deadline: new Date(order.placedAt),
              source_channel: channel,
              external_order_id: order.externalOrderId,
              created_at: now,
              updated_at: now,
            })),
          )
          .execute();
        await trx
          .insertInto('order_items')
          .values(
            fresh.flatMap(({ orderId, lines }) => lines.map((line) => orderItemRow(orderId, line))),
          )
          .execute();
        await trx
          .insertInto('order_history')
          .values(
            fresh.flatMap(({ orderId, order, steps }) => [
              { order_id: orderId, version: 0, from_status: null, action: 'checkout', to_status: 'ACCEPTED', actor: 'buyer', detail: `placed in channel ${channel}`, at: new Date(order.placedAt) },
              ...steps.map((step, index) => ({
                order_id: orderId,
                version: index + 1,
                from_status: step.from,
                action: step.action,
                to_status: step.to,
                actor: step.actor,
                detail: `imported from ${channel} order ${order.externalOrderId}`,
                at: now,
              })),
            ]),
          )
          .execute();
        const shipments = fresh.flatMap(({ orderId, lines, steps }) => {
          const status = SHIPMENT_OF_IMPORTED[steps.at(-1)!.to];
          // named as ProcessRepository.openShipment names a handed-over order's; when it was shipped or delivered its channel does not say
          return status ? [{ shipment_id: `shp-${orderId}`, order_id: orderId, warehouse_id: lines[0]!.warehouseId, tracking_no: null, status, created_at: now, updated_at: now }] : [];
        });
        if (shipments.length > 0) await trx.insertInto('shipments').values(shipments).execute();
      }
      return plans.map((plan) => {
        const known = existing.get(plan.order.externalOrderId);
        return { externalOrderId: plan.order.externalOrderId, orderId: known ?? plan.orderId, outcome: known ? 'duplicate' : 'imported' };
      });
    });
  }
}

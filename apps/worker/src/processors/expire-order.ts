import { IllegalTransition, type Actor } from '@orders/domain';
import type { OrderMetrics } from '@orders/metrics';
import { OrderRepository } from '@orders/persistence';
import type { Inventory } from '@orders/stock';

/** Statuses in which an order holds no stock: reaching one gives the reservation back. */
const RELEASED_STATUSES = new Set(['EXPIRED', 'CANCELLED']);

export interface CloseOrderDeps {
  orders: OrderRepository;
  inventory: Inventory;
  metrics: OrderMetrics;
  clock: () => Date;
}

/**
 * Closes an unpaid order (expiry, cancellation) and gives its stock and its coupon use back exactly once:
 * the transition and the ledger's release rows commit together in MySQL, then Redis
 * releases the reservation (a no-op when already released). A retry after a crash
 * between the two finds the order closed and still completes the Redis side.
 */
export async function closeUnpaidOrder(
  deps: CloseOrderDeps,
  request: { orderId: string; action: 'expire' | 'cancel'; actor: Actor; detail?: string },
): Promise<{ changed: boolean }> {
  const { orders, inventory, metrics, clock } = deps;
  let changed = false;
  try {
    const { order, fired } = await orders.applyTransition({
      orderId: request.orderId,
      action: request.action,
      actor: request.actor,
      at: clock(),
      detail: request.detail,
      effects: async (trx, current, transition) => {
        if (transition.effects.includes('releaseStock')) await OrderRepository.releaseReservation(trx, current.order_id, transition.action, clock());
      },
    });
    metrics.transitions.inc({ type: order.type, from: fired.from, to: fired.to, action: fired.action });
    changed = true;
  } catch (error) {
    if (!(error instanceof IllegalTransition)) throw error;
  }
  const order = await orders.findOrderRow(request.orderId);
  if (order && RELEASED_STATUSES.has(order.status)) {
    await inventory.releaseStock(order.order_id, order.user_id, order.status.toLowerCase(), order.coupon_code);
  }
  return { changed };
}

import type { AcceptedOrder } from '@orders/domain';
import type { OrderRow } from '@orders/persistence';
import type { AppDeps } from './app-deps.js';
import type { Principal } from './plugins/auth.js';
import { forbidden, notFound, stillInQueue, type HttpProblem } from './problems.js';
import { ULID_PATTERN } from './schemas.js';

const ULID = new RegExp(ULID_PATTERN);

/** Why a merchant may not move an order it sees: it holds another merchant's lines too. */
export const MERCHANT_ALONE = "A merchant acts on orders (or parts of a split order) holding its own SKUs alone; this one holds another merchant's too: the buyer or an admin acts on it";

/**
 * An order still in the queue (accepted, not yet in MySQL), as far as the principal may know
 * of it: its buyer, an admin, or a merchant holding one of its SKUs, the same people who see
 * it once persisted (a buyer's support call about a fresh 202 during a backlog finds it); a
 * merchant sees its own lines alone, as of a persisted order (merchantOrderView).
 * null for anyone else, so ids cannot be probed.
 */
export async function queuedOrderFor(deps: Pick<AppDeps, 'inventory' | 'catalog'>, principal: Principal, orderId: string): Promise<AcceptedOrder | null> {
  const accepted = await deps.inventory.findAcceptedOrder(orderId);
  return accepted && queuedOrderAsSeenBy(deps, principal, accepted);
}

async function queuedOrderAsSeenBy(deps: Pick<AppDeps, 'catalog'>, principal: Principal, accepted: AcceptedOrder): Promise<AcceptedOrder | null> {
  switch (principal.role) {
    case 'admin':
      return accepted;
    case 'buyer':
      return accepted.userId === principal.sub ? accepted : null;
    case 'merchant': {
      const skus = await deps.catalog.findSkus(accepted.items.map((item) => item.skuId));
      const own = accepted.items.filter((item) => skus.get(item.skuId)?.merchantId === principal.sub);
      return own.length > 0 ? { ...accepted, items: own } : null;
    }
  }
}

/**
 * What an action on an order still in the queue answers to those who may see it: 409 with
 * retry-after, as it exists and the action becomes possible once it is persisted; to a
 * merchant, one holding another merchant's SKUs too answers 403 at once, as it will once
 * persisted (an unpaid order is never split). null for anyone else (and for an order not in
 * the queue), so ids cannot be probed.
 */
export async function queuedActionRefusal(deps: Pick<AppDeps, 'inventory' | 'catalog'>, principal: Principal, orderId: string, action: string): Promise<HttpProblem | null> {
  const accepted = await deps.inventory.findAcceptedOrder(orderId);
  const seen = accepted && (await queuedOrderAsSeenBy(deps, principal, accepted));
  if (!seen) return null;
  return seen.items.length < accepted.items.length ? forbidden(MERCHANT_ALONE) : stillInQueue(action, principal.role);
}

/**
 * The persisted order a caller acts on: buyers their own, merchants one holding their SKUs,
 * admins any; 404 for anyone else so ids cannot be probed. An order still in the queue
 * answers as queuedActionRefusal says.
 */
export async function ownOrder(deps: Pick<AppDeps, 'inventory' | 'catalog' | 'orders'>, principal: Principal, orderId: string, action: string): Promise<OrderRow> {
  if (!ULID.test(orderId)) throw notFound('order');
  const order = await deps.orders.findOrderRow(orderId);
  if (order && (principal.role === 'admin' || (principal.role === 'buyer' && order.user_id === principal.sub))) return order;
  if (order && principal.role === 'merchant' && (await deps.orders.orderHasMerchant(orderId, principal.sub))) return order;
  throw (order ? null : await queuedActionRefusal(deps, principal, orderId, action)) ?? notFound('order');
}

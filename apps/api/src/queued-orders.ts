import { priceOrder, stateMachineFor, type AcceptedOrder, type Sku } from '@orders/domain';
import { PricingRepository, benefitsOfOwnLines, type OrderRow, type OrderView } from '@orders/persistence';
import type { FastifyBaseLogger } from 'fastify';
import type { AppDeps } from './app-deps.js';
import type { Principal } from './plugins/auth.js';
import { forbidden, notFound, stillInQueue, type HttpProblem } from './problems.js';
import { ULID_PATTERN } from './schemas.js';

const ULID = new RegExp(ULID_PATTERN);

/** Why a merchant may not move an order it sees: it holds another merchant's lines too. */
export const MERCHANT_ALONE = "A merchant acts on orders (or parts of a split order) holding its own SKUs alone; this one holds another merchant's too: the buyer or an admin acts on it";

/** The view of an order still in the queue: what the buyer sent, no amounts yet. */
export function acceptedView(order: AcceptedOrder) {
  const labels = stateMachineFor(order.type).labels('ACCEPTED');
  return {
    orderId: order.orderId,
    parentOrderId: null,
    type: order.type,
    status: 'ACCEPTED',
    buyerStatus: labels.buyerLabel,
    merchantStatus: labels.merchantLabel,
    userId: order.userId,
    items: order.items,
    amounts: null,
    address: order.address,
    couponCode: order.couponCode,
    payment: null,
    payments: [],
    shipments: [],
    subOrders: [],
    history: [{ from: null, action: 'checkout', to: 'ACCEPTED', at: order.acceptedAt, actor: 'buyer', detail: null }],
    paymentDeadline: order.paymentDeadline,
    balanceDeadline: null,
    nextTimer: null,
    createdAt: null,
    updatedAt: null,
  };
}

/** An order of a list: persisted (MySQL's view), or still in the queue (acceptedView). */
export type ListedOrder = OrderView | ReturnType<typeof acceptedView>;

/**
 * A page of a list of one buyer's orders (at most `limit`, newest first by order id) with their
 * orders still in the queue in their place among the persisted ones `persistedPage` reads (the
 * same page: before `before`, at most `limit`). The queue is read first: an order persisted
 * meanwhile has left it by the time MySQL is read, and is found there (read in both, MySQL's
 * view is kept). Without Redis the page holds the persisted orders alone, as lists did before
 * they held queued ones: a list is no reason to fail while MySQL answers.
 */
export async function pageWithQueuedOrders(
  deps: Pick<AppDeps, 'inventory'>,
  buyer: { userId: string; before: string | undefined; limit: number; matching: (order: AcceptedOrder) => boolean },
  persistedPage: () => Promise<OrderView[]>,
  log: FastifyBaseLogger,
): Promise<ListedOrder[]> {
  const queued = await deps.inventory.queuedOrdersOf(buyer.userId, buyer).catch((error: unknown) => {
    log.warn({ err: error, userId: buyer.userId }, "a buyer's orders still in the queue were not read (Redis did not answer): the list holds their persisted ones alone");
    return [];
  });
  const persisted = await persistedPage();
  const written = new Set(persisted.map((order) => order.orderId));
  const listed: ListedOrder[] = [...queued.filter((order) => !written.has(order.orderId)).map(acceptedView), ...persisted];
  return listed.sort((a, b) => (a.orderId < b.orderId ? 1 : -1)).slice(0, buyer.limit);
}

/**
 * An order still in the queue (accepted, not yet in MySQL), as far as the principal may know
 * of it: its buyer, an admin, or a merchant holding one of its SKUs, the same people who see
 * it once persisted (a buyer's support call about a fresh 202 during a backlog finds it); a
 * merchant sees its own lines alone, and the coupon's code where they take it, as of a persisted
 * order (merchantOrderView). null for anyone else, so ids cannot be probed.
 */
export async function queuedOrderFor(deps: Pick<AppDeps, 'inventory' | 'catalog' | 'db'>, principal: Principal, orderId: string): Promise<AcceptedOrder | null> {
  const accepted = await deps.inventory.findAcceptedOrder(orderId);
  return accepted && queuedOrderAsSeenBy(deps, principal, accepted);
}

async function queuedOrderAsSeenBy(deps: Pick<AppDeps, 'catalog' | 'db'>, principal: Principal, accepted: AcceptedOrder): Promise<AcceptedOrder | null> {
  switch (principal.role) {
    case 'admin':
      return accepted;
    case 'buyer':
      return accepted.userId === principal.sub ? accepted : null;
    case 'merchant': {
      const skus = await deps.catalog.findSkus(accepted.items.map((item) => item.skuId));
      const own = accepted.items.filter((item) => skus.get(item.skuId)?.merchantId === principal.sub);
      if (own.length === 0) return null;
      // an order of the merchant's lines alone is shown whole, as once persisted; one without a coupon has no code to hide
      if (own.length === accepted.items.length || accepted.couponCode === null) return { ...accepted, items: own };
      return { ...accepted, items: own, couponCode: await couponCodeOfOwnLines(deps, accepted, skus, principal.sub) };
    }
  }
}

/**
 * The coupon's code as a merchant sees it on its own lines of an order still in the queue
 * (benefitsOfOwnLines, as once persisted): of the order priced as the worker will price it,
 * with the rules of its acceptance, since which lines take the coupon is known only then.
 */
async function couponCodeOfOwnLines(deps: Pick<AppDeps, 'db'>, accepted: AcceptedOrder, skus: ReadonlyMap<string, Sku>, merchantId: string): Promise<string | null> {
  const rules = await new PricingRepository(deps.db).rulesFor([accepted], skus);
  const priced = priceOrder(accepted.type, accepted.items, skus, new Date(accepted.acceptedAt), rules.byOrder.get(accepted.orderId));
  const shares = priced.lines.filter((line) => line.merchantId === merchantId).flatMap((line) => line.discounts);
  return benefitsOfOwnLines({ couponCode: accepted.couponCode, benefits: priced.applied }, shares).couponCode;
}

/**
 * What an action on an order still in the queue answers to those who may see it: 409 with
 * retry-after, as it exists and the action becomes possible once it is persisted; to a
 * merchant, one holding another merchant's SKUs too answers 403 at once, as it will once
 * persisted (an unpaid order is never split). null for anyone else (and for an order not in
 * the queue), so ids cannot be probed.
 */
export async function queuedActionRefusal(deps: Pick<AppDeps, 'inventory' | 'catalog' | 'db'>, principal: Principal, orderId: string, action: string): Promise<HttpProblem | null> {
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
export async function ownOrder(deps: Pick<AppDeps, 'inventory' | 'catalog' | 'orders' | 'db'>, principal: Principal, orderId: string, action: string): Promise<OrderRow> {
  if (!ULID.test(orderId)) throw notFound('order');
  const order = await deps.orders.findOrderRow(orderId);
  if (order && (principal.role === 'admin' || (principal.role === 'buyer' && order.user_id === principal.sub))) return order;
  if (order && principal.role === 'merchant' && (await deps.orders.orderHasMerchant(orderId, principal.sub))) return order;
  throw (order ? null : await queuedActionRefusal(deps, principal, orderId, action)) ?? notFound('order');
}

import { IllegalTransition, RefundExceedsLine, StaleOrderVersion, stateMachineFor, type Actor, type Address, type OrderType } from '@orders/domain';
import { OrderRepository, ProcessRepository, RefundRepository, refundIdFor, type OrderRow, type RefundView } from '@orders/persistence';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import type { Principal } from '../plugins/auth.js';
import { notFound, stillInQueue } from '../problems.js';
import { queuedOrderFor } from '../queued-orders.js';
import { ULID_PATTERN, addressSchema, orderParamsSchema, problemRef } from '../schemas.js';
import { followUp } from './order-engine-support.js';

const ULID = new RegExp(ULID_PATTERN);
const reason = { type: 'string', minLength: 1, maxLength: 500 } as const;
const skuId = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } as const;
const refundItems = {
  type: 'array',
  minItems: 1,
  maxItems: 100,
  items: { type: 'object', additionalProperties: false, required: ['skuId', 'qty'], properties: { skuId, qty: { type: 'integer', minimum: 1, maximum: 1_000_000 } } },
} as const;

type RequestedLines = Array<{ skuId: string; qty: number }>;

/**
 * The requested lines grouped by the order part that holds their SKU: a split order's
 * children, or the order itself. A SKU no part holds is refused before anything opens.
 */
export async function linesByOrderPart(process: ProcessRepository, order: OrderRow, items: RequestedLines): Promise<Array<{ unit: OrderRow; items: RequestedLines }>> {
  const children = await process.children(order.order_id);
  const parts: Array<{ unit: OrderRow; items: RequestedLines }> = [];
  for (const unit of children.length > 0 ? children : [order]) {
    const skus = (await process.items(unit.order_id)).map((line) => line.sku_id);
    const mine = items.filter((item) => skus.includes(item.skuId));
    if (mine.length > 0) parts.push({ unit, items: mine });
  }
  const stranger = items.find((item) => !parts.some((part) => part.items.includes(item)));
  if (stranger) throw new RefundExceedsLine(`SKU ${stranger.skuId}`);
  return parts;
}

export const refundSchema = {
  type: 'object',
  properties: {
    refundId: { type: 'string' },
    orderId: { type: 'string', description: 'the order (or the child of a split order) the units belong to' },
    kind: { type: 'string', enum: ['refund', 'return'] },
    status: {
      type: 'string',
      description:
        'A return: REQUESTED, then APPROVED or REFUSED, PENDING once the warehouse received it. Every refund: PENDING (due), SENT (accepted by the payment system), SUCCEEDED (confirmed by its signed callback).',
    },
    reason: { type: 'string' },
    amountCents: { type: 'integer' },
    items: {
      type: 'array',
      items: { type: 'object', properties: { lineNo: { type: 'integer' }, skuId: { type: 'string' }, qty: { type: 'integer' }, cents: { type: 'integer' } } },
    },
    parts: {
      type: 'array',
      description:
        "where the money goes back to: the order's successful payments, latest first (a presale: the balance, then the deposit), each giving back at most what it took. One refund per part at the payment system (the first under the refund's id, the next ones <refundId>-2, ...); the refund is SUCCEEDED once every part is confirmed. Empty until the money is due.",
      items: {
        type: 'object',
        properties: { partId: { type: 'string' }, paymentId: { type: 'string' }, amountCents: { type: 'integer' }, status: { type: 'string', description: 'PENDING, SENT or SUCCEEDED' } },
      },
    },
    history: {
      type: 'array',
      description: 'every status the refund took, oldest first',
      items: { type: 'object', properties: { from: { type: ['string', 'null'] }, to: { type: 'string' }, at: { type: 'string' }, actor: { type: 'string' } } },
    },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const;

/** Statuses in which a paid order has not left the warehouse: what a refund or a paid cancellation may touch. */
const UNSHIPPED = new Set(['PAID', 'IN_FULFILLMENT']);

/**
 * The reverse flows before shipment (API.md): cancel (before payment: stock and coupon
 * released; after payment: a full refund through the payment system's breaker, the units
 * back on sale and the coupon use back), refund orders for some or all lines, and their list. A refund's
 * id is derived from the request, so the same request twice opens one refund; every
 * refused request changes nothing.
 */
export async function reverseFlowRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const process = new ProcessRepository(deps.db);
  const refunds = new RefundRepository(deps.db);

  /** Buyers act on their own orders, merchants on orders holding their SKUs, admins on any; others get 404 so ids cannot be probed. */
  async function ownOrder(principal: Principal, orderId: string, action: 'cancel' | 'change_address' | 'refund'): Promise<OrderRow> {
    if (!ULID.test(orderId)) throw notFound('order');
    const order = await deps.orders.findOrderRow(orderId);
    if (order && (principal.role === 'admin' || (principal.role === 'buyer' && order.user_id === principal.sub))) return order;
    if (order && principal.role === 'merchant' && (await deps.orders.orderHasMerchant(orderId, principal.sub))) return order;
    // still in the queue: nothing to cancel or refund yet, told only to those who may see the order
    if (!order && (await queuedOrderFor(deps, principal, orderId))) throw stillInQueue(action, principal.role);
    throw notFound('order');
  }

  /**
   * The order's stock was committed at payment (its parent's, for a child): only then can
   * units go back on sale. A cancel or refund sent right after the payment callback can
   * overtake the settle job: the paid order's reservation is committed here then, as the
   * job does it (both are idempotent, in Redis and in the ledger), so the refund restocks
   * sold units. False when there is no reservation to commit (e.g. payment-time stock
   * gone: the settle job refunds that order itself).
   */
  async function stockCommitted(order: OrderRow): Promise<boolean> {
    const ref = order.parent_order_id ?? order.order_id;
    const row = await deps.db.selectFrom('stock_ledger').select('id').where('ref', '=', ref).where('kind', '=', 'commit').limit(1).executeTakeFirst();
    if (row !== undefined) return true;
    if (order.parent_order_id !== null || order.status !== 'PAID') return false;
    const outcome = await deps.inventory.commitStock(order.order_id);
    if (outcome.status !== 'committed' && outcome.status !== 'already') return false;
    await process.recordStockCommitted(order.order_id);
    return true;
  }

  /** A refund goes back to the successful payments of the order (its parent's, for a child): there must be one. */
  async function isPaid(order: OrderRow): Promise<boolean> {
    return (await process.payments(order.parent_order_id ?? order.order_id)).some((p) => p.status === 'SUCCEEDED');
  }

  /**
   * Opens one refund order on an unsplit order or a child: 'refund' (the order goes to
   * REFUNDING) when it gives back every unit left, else 'refund_lines'. The ledger
   * restocks the units in the transaction and Redis right after it (once per refund id,
   * the payment job again as a backstop); the job pays the money back. A refund id seen
   * before changes nothing.
   */
  async function openRefund(
    order: OrderRow,
    request: { refundId: string; reason: string; items: Array<{ skuId: string; qty: number }> | 'rest'; restockReason: string; actor: Actor; restoreCouponOf?: string },
  ): Promise<{ refund: RefundView; changed: boolean }> {
    for (let attempt = 1; ; attempt++) {
      const known = await refunds.find(request.refundId);
      if (known) {
        // a repeat: the payment job (which also restocks Redis) is queued again, in case the first request died before
        await followUp(deps, order, ['refundPayments']);
        return { refund: known, changed: false };
      }
      const current = (await deps.orders.findOrderRow(order.order_id))!;
      if (!UNSHIPPED.has(current.status)) throw new IllegalTransition(current.status, 'refund', request.actor);
      if (!(await isPaid(current)) || !(await stockCommitted(current))) throw new IllegalTransition(current.status, 'refund', request.actor);
      const items = await process.items(order.order_id);
      const left = new Map(items.map((line) => [line.sku_id, line.qty - line.refunded_qty]));
      const asked = (sku: string) => (request.items === 'rest' ? 0 : request.items.filter((i) => i.skuId === sku).reduce((s, i) => s + i.qty, 0));
      const whole = request.items === 'rest' || [...left].every(([sku, qty]) => qty === asked(sku));
      try {
        let opened: RefundView | undefined;
        const { order: moved, fired } = await deps.orders.applyTransition({
          orderId: order.order_id,
          action: whole ? 'refund' : 'refund_lines',
          actor: request.actor,
          at: deps.clock(),
          detail: `refund ${request.refundId}: ${request.reason}`.slice(0, 500),
          effects: async (trx, current) => {
            const { restoreCouponOf, ...refund } = request;
            opened = await RefundRepository.openRefund(trx, current, { ...refund, kind: 'refund', status: 'PENDING', at: deps.clock() });
            if (restoreCouponOf !== undefined) await OrderRepository.restoreCoupon(trx, restoreCouponOf, deps.clock());
          },
        });
        deps.metrics.transitions.inc({ type: moved.type, from: fired.from, to: fired.to, action: fired.action });
        // Redis follows the ledger at once; the refund job does it again (once per refund id) should this process die here
        await deps.inventory.restockStock(opened!.orderId, opened!.refundId, opened!.items.filter((item) => item.qty > 0));
        await followUp(deps, moved, fired.effects);
        return { refund: opened!, changed: true };
      } catch (error) {
        if (error instanceof StaleOrderVersion && attempt < 5) continue;
        throw error;
      }
    }
  }

  app.post<{ Params: { orderId: string }; Body: { reason: string } }>(
    '/v1/orders/:orderId/cancel',
    {
      preValidation: app.requireRole('buyer', 'merchant', 'admin'),
      schema: {
        tags: ['orders'],
        summary: 'Cancel an order: before payment its stock and coupon are released; after payment and before shipment it is refunded in full',
        description:
          'A buyer cancels their own order, a merchant one holding its SKUs, an admin any. Unpaid: CANCELLED, the reserved stock and the coupon use go back. Paid and not shipped (on a split order: no child shipped): the order (each child) goes to REFUNDING with a refund of everything it paid, its units go back on sale, the coupon use goes back (cancelling one child of a split order keeps it), and it becomes REFUNDED once the payment system has paid it back (through its circuit breaker: while the payment system is down the refund waits). Cancelling again changes nothing. 409 ILLEGAL_TRANSITION once shipped, and (with retry-after) while the order is still in the queue (ACCEPTED).',
        params: orderParamsSchema,
        body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason } },
        response: { 200: { $ref: 'Order#' }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const order = await ownOrder(request.user, request.params.orderId, 'cancel');
      const actor: Actor = request.user.role;
      const { reason: why } = request.body;
      const machine = stateMachineFor(order.type as OrderType);
      if (order.status === 'CANCELLED') return deps.orders.findOrder(order.order_id);
      // the order type's table decides: unpaid orders (and e.g. imported ones, paid in their channel) cancel as it says
      if (machine.can(order.status, 'cancel', actor)) {
        await cancelByTable(order, actor, why, machine.rule(order.status, 'cancel')?.effects?.includes('releaseStock') ?? false);
        deps.metrics.cancellations.inc({ stage: 'before_payment' });
      } else {
        const children = await process.children(order.order_id);
        const units = children.length > 0 ? children : [order];
        const cancelRefund = (unit: OrderRow) => `${unit.order_id}-cancel`;
        const open = await Promise.all(units.map(async (unit) => ({ unit, known: await refunds.find(cancelRefund(unit)) })));
        // all or nothing: a cancellation refunds only when no part has shipped
        for (const { unit, known } of open) if (!known && !UNSHIPPED.has(unit.status)) throw new IllegalTransition(unit.status, 'cancel', actor);
        // the whole order cancelled (not one child of it): its coupon use goes back with the first
        // refund's commit, and the refund job makes Redis follow before it pays anything back
        const restoreCouponOf = order.parent_order_id === null && order.coupon_code !== null ? order.order_id : undefined;
        let changed = false;
        for (const { unit } of open) changed = (await openRefund(unit, { refundId: cancelRefund(unit), reason: why, items: 'rest', restockReason: 'cancel', actor, restoreCouponOf })).changed || changed;
        if (changed) deps.metrics.cancellations.inc({ stage: 'after_payment' });
      }
      return deps.orders.findOrder(order.order_id);
    },
  );

  /** Fires the table's cancel; with `releaseStock` the reservation and the coupon use go back, in the ledger and then in Redis. */
  async function cancelByTable(order: OrderRow, actor: Actor, why: string, releaseStock: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { order: closed, fired } = await deps.orders.applyTransition({
          orderId: order.order_id,
          action: 'cancel',
          actor,
          at: deps.clock(),
          detail: why.slice(0, 500),
          effects: async (trx, current, transition) => {
            if (releaseStock) await OrderRepository.releaseReservation(trx, current.order_id, transition.action, deps.clock());
          },
        });
        deps.metrics.transitions.inc({ type: closed.type, from: fired.from, to: fired.to, action: fired.action });
        break;
      } catch (error) {
        if (error instanceof StaleOrderVersion && attempt < 5) continue;
        throw error;
      }
    }
    if (releaseStock) await deps.inventory.releaseStock(order.order_id, order.user_id, 'cancelled');
  }

  app.patch<{ Params: { orderId: string }; Body: { address: Address } }>(
    '/v1/orders/:orderId/address',
    {
      preValidation: app.requireRole('buyer', 'admin'),
      schema: {
        tags: ['orders'],
        summary: "Change the order's delivery address until it ships",
        description:
          "Each change is a step in the history (change_address). A warehouse that already has the order (or a split order's child) is told through its circuit breaker. The same address again changes nothing. 409 ILLEGAL_TRANSITION once the order (any part of a split order) has shipped or closed.",
        params: orderParamsSchema,
        body: { type: 'object', additionalProperties: false, required: ['address'], properties: { address: addressSchema } },
        response: { 200: { $ref: 'Order#' }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const order = await ownOrder(request.user, request.params.orderId, 'change_address');
      const actor: Actor = request.user.role;
      const address = JSON.stringify(request.body.address);
      // a child already closed (refunded) has no parcel left to send anywhere
      const children = (await process.children(order.order_id)).filter((child) => !stateMachineFor(child.type as OrderType).isFinal(child.status));
      const parts = [...children, order];
      // all or nothing: no part may have shipped
      for (const part of parts) {
        if (part.address !== address && !stateMachineFor(part.type as OrderType).can(part.status, 'change_address', actor)) throw new IllegalTransition(part.status, 'change_address', actor);
      }
      for (const part of parts) {
        if (part.address === address) continue;
        for (let attempt = 1; ; attempt++) {
          try {
            const { order: moved, fired } = await deps.orders.applyTransition({
              orderId: part.order_id,
              action: 'change_address',
              actor,
              at: deps.clock(),
              detail: `${request.body.address.line1}, ${request.body.address.postalCode} ${request.body.address.city}`.slice(0, 500),
              effects: async (trx) => {
                await trx.updateTable('orders').set({ address, updated_at: deps.clock() }).where('order_id', '=', part.order_id).execute();
              },
            });
            deps.metrics.transitions.inc({ type: moved.type, from: fired.from, to: fired.to, action: fired.action });
            await followUp(deps, moved, fired.effects);
            break;
          } catch (error) {
            if (error instanceof StaleOrderVersion && attempt < 5) continue;
            throw error;
          }
        }
      }
      return deps.orders.findOrder(order.order_id);
    },
  );

  app.post<{ Params: { orderId: string }; Body: { reason: string; items?: Array<{ skuId: string; qty: number }> } }>(
    '/v1/orders/:orderId/refunds',
    {
      preValidation: app.requireRole('buyer', 'merchant', 'admin'),
      schema: {
        tags: ['after-sales'],
        summary: 'Refund some or all lines of a paid order that has not shipped (202: the payment system pays it back)',
        description:
          "A buyer refunds their own order, a merchant one holding its SKUs, an admin any. Opens a refund order (its own id and status) per order part the units belong to (a split order's child). Each line refunds its allocated payable by units, never more; the order's shipping is refunded with the request that brings every unit back. The units go back on sale. The same request again answers the same refund and changes nothing. Without items: every unit not refunded yet. 409 ILLEGAL_TRANSITION once shipped or before the payment settled; 422 REFUND_EXCEEDS_ORDER for more units than are left.",
        params: orderParamsSchema,
        body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason, items: refundItems } },
        response: {
          202: {
            type: 'object',
            properties: { refundId: { type: 'string' }, status: { type: 'string' }, refunds: { type: 'array', items: refundSchema, description: 'one refund per order part (child) touched' } },
            required: ['refundId', 'status'],
          },
          '4xx': problemRef,
          '5xx': problemRef,
        },
      },
    },
    async (request, reply) => {
      const order = await ownOrder(request.user, request.params.orderId, 'refund');
      const actor: Actor = request.user.role;
      const { reason: why, items } = request.body;
      let parts: Array<{ unit: OrderRow; items: RequestedLines | 'rest' }>;
      if (items !== undefined) parts = await linesByOrderPart(process, order, items);
      else {
        // without items: every unit not refunded yet, of every part that has not shipped
        const children = await process.children(order.order_id);
        parts = children.length === 0 ? [{ unit: order, items: 'rest' }] : children.filter((child) => UNSHIPPED.has(child.status)).map((unit) => ({ unit, items: 'rest' as const }));
        if (parts.length === 0) throw new IllegalTransition(order.status, 'refund', actor);
      }
      const key = (unit: OrderRow, unitItems: (typeof parts)[number]['items']) =>
        refundIdFor(unit.order_id, ['refund', why, unitItems === 'rest' ? 'rest' : unitItems.map((i) => `${i.skuId}x${i.qty}`).sort().join(',')]);
      // every part must be refundable before any is opened
      for (const part of parts) {
        if (!(await refunds.find(key(part.unit, part.items))) && !UNSHIPPED.has(part.unit.status)) throw new IllegalTransition(part.unit.status, 'refund', actor);
      }
      const opened: RefundView[] = [];
      for (const part of parts) {
        opened.push((await openRefund(part.unit, { refundId: key(part.unit, part.items), reason: why, items: part.items, restockReason: 'refund', actor })).refund);
      }
      return reply.code(202).send({ refundId: opened[0]!.refundId, status: opened[0]!.status, refunds: opened });
    },
  );

  app.get<{ Params: { orderId: string } }>(
    '/v1/orders/:orderId/refunds',
    {
      preValidation: app.requireRole('buyer', 'merchant', 'admin'),
      schema: {
        tags: ['after-sales'],
        summary: "The order's refunds and returns (its children's too), oldest first",
        params: orderParamsSchema,
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: refundSchema } }, required: ['items'] }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const { orderId } = request.params;
      if (!ULID.test(orderId)) throw notFound('order');
      const order = await deps.orders.findOrderRow(orderId);
      const principal = request.user;
      const visible =
        order &&
        (principal.role === 'admin' ||
          (principal.role === 'buyer' && order.user_id === principal.sub) ||
          (principal.role === 'merchant' && (await deps.orders.orderHasMerchant(orderId, principal.sub))));
      if (!visible) throw notFound('order');
      const children = await process.children(orderId);
      return { items: await refunds.ofOrders([orderId, ...children.map((c) => c.order_id)]) };
    },
  );
}

import { IllegalTransition, offeredActions, offeredOnOwnChildren, ownPartStatus, returnDecisionsOnChildren, stateMachineFor, type Actor, type ChildOrder, type OrderType } from '@orders/domain';
import { ProcessRepository, RefundRepository, type OrderView } from '@orders/persistence';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import type { Principal } from '../plugins/auth.js';
import { HttpProblem, forbidden, notFound } from '../problems.js';
import { MERCHANT_ALONE, queuedActionRefusal, queuedOrderFor } from '../queued-orders.js';
import { ULID_PATTERN, orderParamsSchema, problemRef } from '../schemas.js';
import { fireTableAction } from './order-engine-support.js';

const ULID = new RegExp(ULID_PATTERN);
const ACTION = '^[a-z_]{1,32}$';

/** The table's action a paid order's cancel fires (a full refund): the cancel route's, which refuses more than the table does. */
const PAID_CANCEL = 'refund';
/** The table's action a refund of some lines fires: the refunds route's. */
const REFUND_LINES = 'refund_lines';

/**
 * The reverse flows that need the parcel still at the warehouse: their routes refuse a part whose parcel left with
 * the units of a refund withdrawn (RefundRepository.partsWhoseParcelLeft), whatever the table says of its status.
 */
const BEFORE_THE_PARCEL_LEFT: ReadonlySet<string> = new Set([PAID_CANCEL, REFUND_LINES, 'change_address']);

/**
 * Actions that carry more than a state change (stock and coupons given back, refund
 * records, the lines refunded) are taken through the reverse flows' own routes (API.md);
 * the list names where, and this route sends the caller there.
 */
const REFUND_ROUTE = { method: 'POST', does: 'it also gives back coupons and records the refund' };
const REVERSE_FLOW_ROUTES = new Map<string, { path: (orderId: string) => string; method: string; does: string }>([
  ['cancel', { path: (orderId) => `/v1/orders/${orderId}/cancel`, ...REFUND_ROUTE }],
  // a paid order cancelled before shipment becomes a full refund (API.md)
  [PAID_CANCEL, { path: (orderId) => `/v1/orders/${orderId}/cancel`, ...REFUND_ROUTE }],
  [REFUND_LINES, { path: (orderId) => `/v1/orders/${orderId}/refunds`, ...REFUND_ROUTE }],
  ['change_address', { path: (orderId) => `/v1/orders/${orderId}/address`, method: 'PATCH', does: 'it also tells the warehouse and keeps the new address' }],
]);

/** A return is approved, refused or closed through its own route, which also moves the return record: from the status it must be in. */
const RETURN_DECISIONS = new Map([
  ['approve_return', { verb: 'approve', returnIn: 'REQUESTED' }],
  ['refuse_return', { verb: 'refuse', returnIn: 'REQUESTED' }],
  ['close_return', { verb: 'close', returnIn: 'APPROVED' }],
]);

const allowedActionsSchema = {
  type: 'object',
  properties: {
    orderId: { type: 'string' },
    type: { type: 'string' },
    status: { type: 'string' },
    actor: { type: 'string', enum: ['merchant', 'admin'] },
    actions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          action: { type: 'string' },
          to: { type: 'string' },
          merchantLabel: { type: 'string', description: "the merchant's label of the status the action leads to" },
          href: { type: 'string', description: 'where to send it: /v1/orders/{orderId}/actions/{action}, or the route that owns it (cancel, refunds, address, a return\'s approve/refuse/close)' },
        },
      },
    },
  },
} as const;

/**
 * What a merchant or an operator may do to an order, read from the order type's state
 * table (actor `merchant` for merchants, `admin` for admins, guards included; on a split
 * order, a cancellation or an address change only when every child it would move allows
 * it), and firing one of those actions through the same transition path as every other
 * route. A console shows only what this lists; an action that became illegal meanwhile
 * answers 409 ILLEGAL_TRANSITION.
 */
export async function merchantActionRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const { orders } = deps;
  const refunds = new RefundRepository(deps.db);
  const process = new ProcessRepository(deps.db);

  /**
   * Merchants see orders holding their SKUs, admins every order; anything else is 404, so ids
   * cannot be probed. null when no such order is persisted: it may still be in the queue.
   */
  async function persistedOrder(principal: Principal, orderId: string): Promise<OrderView | null> {
    if (!ULID.test(orderId)) throw notFound('order');
    const order = await orders.findOrder(orderId);
    if (order && principal.role === 'merchant' && !order.items.some((item) => item.merchantId === principal.sub)) throw notFound('order');
    return order;
  }

  const actorOf = (principal: Principal): Actor => (principal.role === 'admin' ? 'admin' : 'merchant');

  app.get<{ Params: { orderId: string } }>(
    '/v1/orders/:orderId/actions',
    {
      onRequest: app.requireRole('merchant', 'admin'),
      schema: {
        tags: ['orders'],
        summary: "The actions the caller (as actor merchant or admin) may take on the order in its current status, from its type's state table",
        description:
          "An order still in the queue (ACCEPTED) allows no action by anyone yet: its list is empty. On a split order, `refund` (its cancellation) and `change_address` are carried out on its children and listed only when each child they would move allows them: not once a child has shipped, whatever the order's own status says (it follows its least advanced child, or a child's refund or return under way); `refund_lines` is listed while one child may refund lines, whatever the others became. `refund`, `change_address` and `refund_lines` are not listed once a refund of the order (or of a child they would move) was withdrawn, a cancel's or one of some lines alike, its parcel having left before the warehouse read it: their routes refuse them then, whatever the order reads until its SHIPPED comes; on a split order `refund_lines` stays listed while another child may refund lines. A merchant on a split order holding another merchant's lines too is offered what is carried out on its own children alone, from their status: their cancellation, a refund of their lines, and a decision on a return of one of them (approve, refuse, close). On a split order, a decision on a return is listed once for each child holding a return to decide, from that child's own status (its `to` is the child's next status, its `href` the return's route), whatever child the order's own status follows. A merchant is offered `close_return` only once RETURN_PARCEL_WINDOW_MS has passed since the return's approval (its route refuses it before: the parcel may still be on its way); an admin at any time.",
        params: orderParamsSchema,
        response: { 200: allowedActionsSchema, '4xx': problemRef },
      },
    },
    async (request) => {
      const order = await persistedOrder(request.user, request.params.orderId);
      const actor = actorOf(request.user);
      if (!order) {
        // an order still in the queue allows no action by anyone yet
        const queued = await queuedOrderFor(deps, request.user, request.params.orderId);
        if (!queued) throw notFound('order');
        return { orderId: queued.orderId, type: queued.type, status: 'ACCEPTED', actor, actions: [] };
      }
      const machine = stateMachineFor(order.type as OrderType);
      const facts = { split: order.subOrders.length > 0, child: order.parentOrderId !== null };
      // a split order's cancellation and address change are carried out on its children: theirs decide
      const children = facts.split ? (await process.children(order.orderId)).map((child) => ({ orderId: child.order_id, status: child.status })) : [];
      // a merchant sees an order holding another merchant's lines too, and acts on none of it but,
      // once it is split, its own children, through the routes that move the children (partsFor)
      const mayAct = actor === 'admin' || order.items.every((item) => item.merchantId === request.user.sub);
      const own = async () => {
        const alone = await Promise.all(children.map((child) => deps.orders.orderOfMerchantAlone(child.orderId, request.user.sub)));
        return children.filter((_, i) => alone[i]);
      };
      const ownChildren = !mayAct && facts.split ? await own() : [];
      // the parts the caller's actions move: the order itself, a split order's children, or a merchant's own children of one
      const parts = mayAct ? (facts.split ? children : [{ orderId: order.orderId, status: order.status }]) : ownChildren;
      // the order as the caller sees it: a merchant's part of a split order reads its own children's status
      const seen = ownChildren.length > 0 ? ownPartStatus(machine, ownChildren) : order.status;
      // a decision is on a return in the status it moves from; a split order's returns are on the children holding the
      // units, each decided from its child's own status (returnDecisionsOnChildren), whatever child the order's status is
      const partIds = parts.map((part) => part.orderId);
      const returns = (await refunds.ofOrders(partIds)).filter((record) => record.kind === 'return');
      // a merchant closes an approved return no sooner than the system would (its route refuses it before): the parcel's
      // window (RETURN_PARCEL_WINDOW_MS since the approval, by MySQL's clock) still running, close is not offered
      const closingTooEarly = new Set<string>();
      if (actor === 'merchant') {
        for (const orderId of new Set(returns.filter((record) => record.status === 'APPROVED').map((record) => record.orderId))) {
          const { now, dueAt } = await deps.orders.timersDue(orderId, ['scheduleReturnClose'], deps.config);
          const closesAt = dueAt.scheduleReturnClose;
          if (closesAt && closesAt.getTime() > now.getTime()) closingTooEarly.add(orderId);
        }
      }
      const returnOf = (orderId: string, action: string) => {
        if (action === 'close_return' && closingTooEarly.has(orderId)) return undefined;
        const decision = RETURN_DECISIONS.get(action)!;
        const decided = returns.find((record) => record.orderId === orderId && record.status === decision.returnIn);
        return decided && `/v1/orders/${order.orderId}/returns/${decided.refundId}/${decision.verb}`;
      };
      const decisions = facts.split
        ? returnDecisionsOnChildren(machine, actor, parts).flatMap(({ orderId, action, to }) => {
            const href = returnOf(orderId, action);
            return href ? [{ action, to, merchantLabel: machine.labels(to).merchantLabel, href }] : [];
          })
        : [];
      const offeredOn = (moved: ChildOrder[]) => (mayAct ? offeredActions(machine, order.status, actor, facts, moved) : offeredOnOwnChildren(machine, moved));
      const offered = offeredOn(mayAct ? children : ownChildren);
      // the routes refuse a part whose parcel left with the units of a refund withdrawn, whatever that part reads: a cancellation
      // and an address change move every part, and are not offered then; a refund of lines of a split order is, while one of
      // the other children may take it
      const parcelsLeft = offered.some((action) => BEFORE_THE_PARCEL_LEFT.has(action)) ? await refunds.partsWhoseParcelLeft(partIds) : new Set<string>();
      const stillHere = (action: string) =>
        parcelsLeft.size === 0 || (action === REFUND_LINES && facts.split && offeredOn(parts.filter((part) => !parcelsLeft.has(part.orderId))).includes(REFUND_LINES));
      const actions = offered
        .filter((action) => !BEFORE_THE_PARCEL_LEFT.has(action) || stillHere(action))
        .flatMap((action) => {
          // a decision on a return needs the return's id: without a return to decide there is nothing to offer
          const decided = RETURN_DECISIONS.has(action) ? returnOf(order.orderId, action) : undefined;
          if (RETURN_DECISIONS.has(action) && decided === undefined) return [];
          const to = machine.rule(seen, action)!.to;
          const href = decided ?? REVERSE_FLOW_ROUTES.get(action)?.path(order.orderId) ?? `/v1/orders/${order.orderId}/actions/${action}`;
          return [{ action, to, merchantLabel: machine.labels(to).merchantLabel, href }];
        });
      return { orderId: order.orderId, type: order.type, status: seen, actor, actions: [...actions, ...decisions] };
    },
  );

  app.post<{ Params: { orderId: string; action: string }; Body: { reason?: string } | undefined }>(
    '/v1/orders/:orderId/actions/:action',
    {
      onRequest: app.requireRole('merchant', 'admin'),
      schema: {
        tags: ['orders'],
        summary:
          'Fire one action of GET /v1/orders/:orderId/actions as the caller (merchant or admin); 409 ILLEGAL_TRANSITION when the state table refuses it, 409 CONFLICT naming the route for cancel and refunds',
        description:
          "A merchant acts on orders holding its own SKUs alone: one holding another merchant's too answers 403 FORBIDDEN whatever its status, still in the queue (ACCEPTED) included. Any other order still in the queue answers 409 ILLEGAL_TRANSITION with retry-after: the action may become possible once it is persisted.",
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['orderId', 'action'],
          properties: { orderId: orderParamsSchema.properties.orderId, action: { type: 'string', pattern: ACTION } },
        },
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { reason: { type: 'string', minLength: 1, maxLength: 500, description: "kept in the order's history" } },
        },
        response: { 200: { $ref: 'Order#' }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const { orderId, action } = request.params;
      const seen = await persistedOrder(request.user, orderId);
      if (!seen) throw (await queuedActionRefusal(deps, request.user, orderId, action)) ?? notFound('order');
      const actor = actorOf(request.user);
      if (actor === 'merchant' && !seen.items.every((item) => item.merchantId === request.user.sub)) throw forbidden(MERCHANT_ALONE);
      const owner = REVERSE_FLOW_ROUTES.get(action);
      if (RETURN_DECISIONS.has(action) || owner) {
        // named to the caller only where the table lets it take the action: from the order's status, or a split order's child's
        const machine = stateMachineFor(seen.type as OrderType);
        const statuses = [seen.status, ...(await process.children(orderId)).map((child) => child.status)];
        if (!statuses.some((status) => machine.allowedActions(status, actor).includes(action))) throw new IllegalTransition(seen.status, action, actor);
        if (RETURN_DECISIONS.has(action)) throw new HttpProblem(409, 'CONFLICT', `${action} is taken through POST /v1/orders/${orderId}/returns/:returnId/${RETURN_DECISIONS.get(action)!.verb}: it also settles the return`);
        throw new HttpProblem(409, 'CONFLICT', `${action} is taken through ${owner!.method} ${owner!.path(orderId)}: ${owner!.does}`);
      }
      await fireTableAction(deps, { orderId, action, actor, detail: request.body?.reason });
      return orders.findOrder(orderId);
    },
  );
}

import { IllegalTransition, ReturnDecidedOtherwise, StaleOrderVersion, stateMachineFor, type Actor, type OrderType } from '@orders/domain';
import { DeadlineAhead, DeadlinePassed, historyDetail, ProcessRepository, refundIdFor, RefundRepository, timerDeadlineOf, type OrderRow, type TransitionRequest, type TransitionResult } from '@orders/persistence';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { refuseRepeatedKey } from '../idempotency-keys.js';
import { KeyedRefunds, idempotencyKeyHeaders, unitsKey } from '../keyed-refunds.js';
import { HttpProblem, notFound } from '../problems.js';
import { ownOrder } from '../queued-orders.js';
import { orderParamsSchema, problemRef } from '../schemas.js';
import { followUp } from '@orders/settlement';
import { linesByOrderPart, moveParts, orderParts, refundSchema } from './reverse-flows.js';

const skuId = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } as const;
const returnParams = {
  type: 'object',
  additionalProperties: false,
  required: ['orderId', 'returnId'],
  properties: { orderId: orderParamsSchema.properties.orderId, returnId: { type: 'string' } },
} as const;

/**
 * A merchant's close of an approved return before the parcel's window has run (RETURN_PARCEL_WINDOW_MS after the
 * approval, when the system closes it by itself): the parcel may still be on its way, and closed now it would be
 * only counted on arrival (ReturnParcelsAfterClose), the shop keeping both the units and the money. Staff may close
 * it earlier (a parcel the carrier reports lost); a merchant asks them, or again from `deadline` (retry-after).
 */
const parcelStillAwaited = (returnId: string, late: DeadlineAhead) =>
  new HttpProblem(
    409,
    'ILLEGAL_TRANSITION',
    `Return ${returnId} was approved less than RETURN_PARCEL_WINDOW_MS ago: its parcel may still reach the warehouse. A merchant may close it as never sent from ${late.deadline.toISOString()} (when the system closes it by itself); before then only staff (admin) may`,
    Math.max(1, Math.ceil(late.dueInMs / 1000)),
  );

const windowClosed = (orderId: string) => new HttpProblem(422, 'RETURN_WINDOW_CLOSED', `The after-sales window of order ${orderId} has closed`);

/**
 * Refuses a return of the order part as it stands: its window closed (COMPLETED), or a status or
 * order type that takes none, or an order not paid. Whether a DELIVERED part's window is still
 * open is the return's transition's to decide (openUntil), by MySQL's clock.
 */
function refuseUnreturnable(unit: OrderRow, paid: boolean): void {
  const machine = stateMachineFor(unit.type as OrderType);
  // only an order type with returns had a window to close; one without (an imported order: its channel took the
  // money; a virtual one: delivered with its payment) is refused like any other state, COMPLETED too
  const hasReturns = machine.actions().includes('request_return');
  if (hasReturns && unit.status === 'COMPLETED') throw windowClosed(unit.order_id);
  if (!machine.can(unit.status, 'request_return', 'buyer') || !paid) throw new IllegalTransition(unit.status, 'request_return', 'buyer');
}

/**
 * Returns (API.md): inside the after-sales window a buyer asks to return delivered
 * units; a merchant or admin approves or refuses; the warehouse's RETURN_RECEIVED
 * (callbacks) restocks them and the refund job pays back their allocated amounts (and
 * a parcel's shipping when every unit of that parcel comes back); an approved return
 * whose parcel never comes back is closed by a merchant or admin. Each return is a
 * refund order of kind `return` with its own id and status: REQUESTED, APPROVED or
 * REFUSED, PENDING once received, SUCCEEDED once paid back, or CLOSED.
 */
export async function returnRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const process = new ProcessRepository(deps.db);
  const refunds = new RefundRepository(deps.db);

  /** Moves the parts in one transaction (moveParts), then queues what each move asks for. */
  async function transition(moves: () => Promise<TransitionRequest[]>): Promise<TransitionResult[]> {
    const moved = await moveParts(deps, moves);
    for (const { order, fired } of moved) await followUp(deps, order, fired.effects);
    return moved;
  }

  app.post<{ Params: { orderId: string }; Body: { reason: string; items: Array<{ skuId: string; qty: number }> }; Headers: { 'idempotency-key'?: string } }>(
    '/v1/orders/:orderId/returns',
    {
      onRequest: app.requireRole('buyer'),
      schema: {
        tags: ['after-sales'],
        summary: 'Ask to return delivered units inside the after-sales window (202: a merchant reviews it)',
        description:
          "Opens a return (a refund order of kind return) per order part the units belong to (a split order's child), every one or none, each part going to RETURN_REQUESTED, where its merchant (or an admin) approves or refuses it; one left unreviewed for RETURN_REVIEW_WINDOW_MS (2 days by default, by MySQL's clock) is approved by the system (history actor `system`). Its amounts are fixed now: each line its allocated payable by units, a parcel's shipping too when every unit of that parcel comes back. With an Idempotency-Key header the return belongs to the key: the same key with the same body answers the same return, even sent twice at once, another body 422 IDEMPOTENCY_CONFLICT. Without it the id derives from the reason, the units and the delivery they come back from: the same request again answers the same return, until it is refused or closed (then it asks anew). `replayed` is true when the answer is a return opened before. 422 RETURN_WINDOW_CLOSED after the window (AFTER_SALES_WINDOW_MS from the delivery or a partial return's receipt, by the database's clock, as the order's completion; a refused or closed return gives back only what was left of it, and at least RETURN_REVIEW_WINDOW_MS after its end when it was asked inside it); 409 ILLEGAL_TRANSITION before delivery, while another return is open, or for an order type without returns (a virtual order, delivered with its payment, had no window); 422 REFUND_EXCEEDS_ORDER for more units than are left.",
        params: orderParamsSchema,
        headers: idempotencyKeyHeaders,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['reason', 'items'],
          properties: {
            reason: { type: 'string', minLength: 1, maxLength: 500 },
            items: {
              type: 'array',
              minItems: 1,
              maxItems: 100,
              items: { type: 'object', additionalProperties: false, required: ['skuId', 'qty'], properties: { skuId, qty: { type: 'integer', minimum: 1, maximum: 1_000_000 } } },
            },
          },
        },
        response: {
          202: {
            type: 'object',
            properties: {
              returnId: { type: 'string' },
              status: { type: 'string' },
              returns: { type: 'array', items: refundSchema, description: 'one return per order part (child) touched' },
              replayed: { type: 'boolean', description: 'true when nothing was opened: the returns are the ones this request (its key, or its reason and units) opened before' },
            },
            required: ['returnId', 'status'],
          },
          '4xx': problemRef,
          '5xx': problemRef,
        },
      },
    },
    async (request, reply) => {
      refuseRepeatedKey(request);
      const { orderId } = request.params;
      const order = await ownOrder(deps, request.user, orderId, 'request_return');
      const { reason, items } = request.body;
      const units = await orderParts(process, order);
      const parts = await linesByOrderPart(process, units, items);
      const idempotencyKey = request.headers['idempotency-key'];
      const keyed = idempotencyKey === undefined ? null : new KeyedRefunds(deps.db, { orderId, kind: 'return', caller: request.user, key: idempotencyKey }, { reason, items });
      if (keyed) await keyed.refuseOtherBodies();
      // unkeyed, the whole request's units name each part's return: by the part's share alone, a later
      // request repeating that share (the second of two lamps) found the first's return and opened none;
      // and so does the delivery they come back from: once a return is refused or closed (the order
      // delivered again), the same request is a new return, not that one answered again (read on each attempt)
      const deliveriesNow = async () => new Map(await Promise.all(parts.map(async (part) => [part.unit.order_id, await process.lastEntryInto(part.unit.order_id, 'DELIVERED')] as const)));
      let deliveries = new Map<string, number | null>();
      const returnIdOf = (part: (typeof parts)[number]) =>
        keyed ? keyed.idFor(part.unit.order_id) : refundIdFor(part.unit.order_id, ['return', reason, unitsKey(items), `delivery ${deliveries.get(part.unit.order_id) ?? 'none'}`]);
      // the money is drawn from the order's payments when the units are received (every payment, latest first; a child's: its parent's)
      const paid = await process.isPaid(order);
      const open = () => transition(async () => {
        // on every attempt: after a request racing with the same key took it, another body is refused here
        if (keyed) await keyed.refuseOtherBodies();
        else deliveries = await deliveriesNow();
        // every part must be returnable before any is opened, as it is now: an attempt after losing a
        // race to the completion timer (StaleOrderVersion) finds the part COMPLETED, its window closed
        const opening: typeof parts = [];
        for (const part of parts) {
          if (await refunds.find(returnIdOf(part))) continue;
          refuseUnreturnable((await deps.orders.findOrderRow(part.unit.order_id)) ?? part.unit, paid);
          opening.push(part);
        }
        return opening.map((part, index): TransitionRequest => {
          const returnId = returnIdOf(part);
          return {
            orderId: part.unit.order_id,
            action: 'request_return',
            actor: 'buyer',
            at: deps.clock(),
            // the window is MySQL's to close, in this transaction, as the completion timer's is
            // (dueAfter of the same deadline): a host's clock ahead or behind neither refuses a
            // return inside it nor takes one after it
            // (the after-sales window: from the delivery, which a refused or closed return does not open again)
            openUntil: timerDeadlineOf('scheduleCompletion', deps.config),
            detail: historyDetail(`return ${returnId}: ${reason}`),
            effects: async (trx, current) => {
              if (index === 0 && keyed) await keyed.take(trx, deps.clock());
              await RefundRepository.openRefund(trx, current, { refundId: returnId, kind: 'return', reason, items: part.items, restockReason: 'return', status: 'REQUESTED', actor: 'buyer', at: deps.clock() });
            },
          };
        });
      });
      const moved = await open()
        // the same request, committed since this one read the parts (a part asked to return takes no other return):
        // read again, each part's return is found and answered as opened; another return open is refused as read
        .catch((error: unknown) => (error instanceof IllegalTransition ? open() : Promise.reject(error)))
        .catch((error: unknown) => {
          throw error instanceof DeadlinePassed ? windowClosed(error.orderId) : error;
        });
      if (moved.length > 0) deps.metrics.returns.inc({ stage: 'requested' }, moved.length);
      const opened = await Promise.all(parts.map(async (part) => (await refunds.find(returnIdOf(part)))!));
      return reply.code(202).send({ returnId: opened[0]!.refundId, status: opened[0]!.status, returns: opened, replayed: moved.length === 0 });
    },
  );

  const summaries = {
    approve: 'Approve a return: the buyer sends the units back (RETURNING)',
    refuse: 'Refuse a return: the order is DELIVERED again, with what was left of its after-sales window (at least RETURN_REVIEW_WINDOW_MS)',
    close: 'Close an approved return whose parcel never came back: the order is DELIVERED again, with what was left of its after-sales window (at least RETURN_REVIEW_WINDOW_MS); nothing is paid back',
  };
  const notes = {
    approve: '',
    refuse: '',
    close:
      " A merchant may close a return only once RETURN_PARCEL_WINDOW_MS (14 days by default, by MySQL's clock) has passed since its approval, when the system closes it by itself: before then 409 ILLEGAL_TRANSITION with retry-after, its detail saying from when (the parcel may still be on its way). An admin may close it at any time.",
  };
  // the decision's verb, its action, the return's status after it, the statuses it may have moved on to since (a repeat
  // answers the return as it stands), and the only one before it (its other decision's 409)
  for (const [verb, action, to, since, from, other] of [
    ['approve', 'approve_return', 'APPROVED', ['PENDING', 'SENT', 'SUCCEEDED', 'CLOSED'], 'REQUESTED', 'refused'],
    ['refuse', 'refuse_return', 'REFUSED', [], 'REQUESTED', 'approved'],
    ['close', 'close_return', 'CLOSED', [], 'APPROVED', 'received'],
  ] as const) {
    const decided = new Set<string>([to, ...since]);
    app.post<{ Params: { orderId: string; returnId: string }; Body: { reason?: string } | undefined }>(
      `/v1/orders/:orderId/returns/:returnId/${verb}`,
      {
        onRequest: app.requireRole('merchant', 'admin'),
        schema: {
          tags: ['after-sales'],
          summary: summaries[verb],
          description: `A merchant acts on returns of its own SKUs, an admin on any; an optional reason is kept in the order's history (the step's detail). Repeating it changes nothing (200 with the return as it stands${since.length > 0 ? `, ${since.join(', ')} once it moved on` : ''}); 409 ILLEGAL_TRANSITION once the return was ${other}.${notes[verb]}`,
          params: returnParams,
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: { reason: { type: 'string', minLength: 1, maxLength: 400, description: "kept in the order's history, after the return's id" } },
          },
          response: { 200: refundSchema, '4xx': problemRef, '5xx': problemRef },
        },
      },
      async (request) => {
        const { orderId, returnId } = request.params;
        const found = await refunds.find(returnId);
        if (!found || found.kind !== 'return') throw notFound('return');
        const owner = await deps.orders.findOrderRow(found.orderId);
        if (!owner || (found.orderId !== orderId && owner.parent_order_id !== orderId)) throw notFound('return');
        const actor: Actor = request.user.role === 'admin' ? 'admin' : 'merchant';
        if (actor === 'merchant' && !(await deps.orders.orderHasMerchant(found.orderId, request.user.sub))) throw notFound('return');
        if (decided.has(found.status)) return found;
        if (found.status !== from) throw new ReturnDecidedOtherwise(returnId, found.status, action, actor);
        try {
          await transition(async () => [
            {
              orderId: found.orderId,
              action,
              actor,
              at: deps.clock(),
              // a merchant closes a return no sooner than the system would (its parcel's window run, by MySQL's clock)
              ...(action === 'close_return' && actor === 'merchant' ? { dueAfter: timerDeadlineOf('scheduleReturnClose', deps.config) } : {}),
              detail: `return ${returnId} ${to.toLowerCase()}${request.body?.reason === undefined ? '' : `: ${request.body.reason}`}`,
              effects: async (trx, current) => {
                // this return, not whichever the order has requested now (refused meanwhile and another requested since)
                const moved = await RefundRepository.moveReturn(trx, current.order_id, [from], to, deps.clock(), actor, found.refundId);
                if (!moved) throw new IllegalTransition(current.status, action, actor);
              },
            },
          ]);
        } catch (error) {
          if (error instanceof DeadlineAhead) throw parcelStillAwaited(returnId, error);
          // the same review by another request (two staff at once, a client's retry) committed since this one read the
          // return: answered as a repeat after it is, 200 with the return as it stands; the other review still 409
          const now = error instanceof IllegalTransition || error instanceof StaleOrderVersion ? await refunds.find(returnId) : null;
          if (now && decided.has(now.status)) return now;
          throw error;
        }
        deps.metrics.returns.inc({ stage: to.toLowerCase() });
        return refunds.find(returnId);
      },
    );
  }
}

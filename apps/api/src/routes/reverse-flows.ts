import { CLOSED_BEFORE_SHIPPING, IllegalTransition, NothingShips, ParcelLeft, RefundExceedsLine, StaleOrderVersion, shipsParcels, stateMachineFor, storedAddress, type Actor, type Address, type OrderType, type TransitionRule } from '@orders/domain';
import { afterStaleOrderVersion, cancelRefundOf, couponUseOf, historyDetail, OrderRepository, ProcessRepository, refundIdFor, refundOpenedDetail, RefundRepository, retryTransaction, type OrderRow, type RefundView, type TransitionRequest, type TransitionResult } from '@orders/persistence';
import { enqueueRefundPayments } from '@orders/queues';
import { releaseRemembered } from '@orders/stock';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { refuseRepeatedKey } from '../idempotency-keys.js';
import { KeyedRefunds, idempotencyKeyHeaders, unitsKey } from '../keyed-refunds.js';
import type { Principal } from '../plugins/auth.js';
import { HttpProblem, forbidden, notFound } from '../problems.js';
import { MERCHANT_ALONE, ownOrder, queuedOrderFor } from '../queued-orders.js';
import { ULID_PATTERN, addressSchema, noFieldsBody, orderParamsSchema, problemRef } from '../schemas.js';
import { followUpAgain } from './order-engine-support.js';
import { closeOrderOnceRefunded, followUp } from '@orders/settlement';

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

/** The parts an order moves in: a split order's children, or the order itself. */
export async function orderParts(process: ProcessRepository, order: OrderRow): Promise<OrderRow[]> {
  const children = await process.children(order.order_id);
  return children.length > 0 ? children : [order];
}

/**
 * The requested lines grouped by the order part that holds their SKU, among `units` (the
 * parts the caller may move). A SKU none of them holds is refused before anything opens.
 */
export async function linesByOrderPart(process: ProcessRepository, units: readonly OrderRow[], items: RequestedLines): Promise<Array<{ unit: OrderRow; items: RequestedLines }>> {
  const parts: Array<{ unit: OrderRow; items: RequestedLines }> = [];
  for (const unit of units) {
    const skus = (await process.items(unit.order_id)).map((line) => line.sku_id);
    const mine = items.filter((item) => skus.includes(item.skuId));
    if (mine.length > 0) parts.push({ unit, items: mine });
  }
  const stranger = items.find((item) => !parts.some((part) => part.items.includes(item)));
  if (stranger) throw new RefundExceedsLine(`SKU ${stranger.skuId}`);
  return parts;
}

/**
 * Moves the parts of one request (an unsplit order, or children of a split one) in one
 * transaction, so a part refused (e.g. more units than it has left) rolls back every part:
 * a refused request changes nothing. After a concurrent change (StaleOrderVersion), or MySQL
 * refusing the transaction for now (a deadlock, a lock wait timeout: retryTransaction),
 * `moves` is asked again, so it decides from what it reads then. Given up: 409 CONFLICT, or
 * 503 DATABASE_BUSY.
 */
export async function moveParts(deps: AppDeps, moves: () => Promise<TransitionRequest[]>): Promise<TransitionResult[]> {
  const moved = await retryTransaction(
    async () => {
      const requests = await moves();
      return requests.length === 0 ? [] : deps.orders.applyTransitions(requests);
    },
    { alsoAfter: afterStaleOrderVersion },
  );
  for (const { order, fired } of moved) deps.metrics.transitions.inc({ type: order.type, from: fired.from, to: fired.to, action: fired.action });
  return moved;
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
        'A return: REQUESTED, then APPROVED or REFUSED; an approved one PENDING once the warehouse received it, or CLOSED when its parcel never came back. Every refund: PENDING (due; one with restockHeld waits for the warehouse to take its units out of the parcel before it is paid), SENT (accepted by the payment system), SUCCEEDED (confirmed by its signed callback, or its parts the payment system failed on settled by hand by an admin), or WITHDRAWN (the parcel left with its units before the warehouse took them out: nothing paid back).',
    },
    reason: { type: 'string' },
    amountCents: { type: 'integer' },
    items: {
      type: 'array',
      items: { type: 'object', properties: { lineNo: { type: 'integer' }, skuId: { type: 'string' }, qty: { type: 'integer' }, cents: { type: 'integer' } } },
    },
    restockHeld: {
      type: 'boolean',
      description:
        'true while its units wait in a parcel the warehouse holds, or may hold (a paid order it was asked to take, its answer not recorded yet: lost to a timeout, or on its way): they go back on sale, and its money is paid back, once the warehouse has taken them out, or said it never had the order (false then); a parcel that left with them first makes the refund WITHDRAWN (false too: nothing was paid back, and the units stay sold)',
    },
    parts: {
      type: 'array',
      description:
        "where the money goes back to: the order's successful payments, latest first (a presale: the balance, then the deposit), each giving back at most what it took. One refund per part at the payment system (the first under the refund's id, the next ones <refundId>-2, ...); the refund is SUCCEEDED once every part is confirmed. Empty until the money is due.",
      items: {
        type: 'object',
        properties: {
          partId: { type: 'string' },
          paymentId: { type: 'string' },
          amountCents: { type: 'integer' },
          status: {
            type: 'string',
            description:
              'PENDING, SENT, SUCCEEDED, FAILED (the payment system could not pay it back: still owed), SETTLED_BY_HAND (the shop paid it back another way: settle-by-hand), ASKED_AGAIN (FAILED, then asked for again under the part `askedAgainAs`, which owes it now: ask-again), or WITHDRAWN (its refund was withdrawn before anything was sent: owes nothing)',
          },
          settledReference: { type: 'string', description: 'a part SETTLED_BY_HAND: how the shop paid it back, as the admin said' },
          askedAgainAs: { type: 'string', description: 'a part ASKED_AGAIN: the part its money was asked for again under' },
          sentAt: {
            type: 'string',
            description:
              'when the payment system was first asked for it; absent before. A part still SENT REFUND_CONFIRMATION_GIVE_UP_MS (24 h) after it is asked about no more: an admin asks for it again (ask-again), under its own id',
          },
          paidAfterOwedElsewhereAt: {
            type: 'string',
            description: 'a part SETTLED_BY_HAND or ASKED_AGAIN the payment system reported paid after all: when (the buyer was paid back twice: order_refunds_total{outcome="succeeded_after_settled_by_hand" or "succeeded_after_asked_again"})',
          },
        },
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

/** A refund of an order, named by the order (a split order's own id for a refund of its child) and the refund. */
const refundParamsSchema = {
  type: 'object',
  properties: { orderId: { type: 'string', pattern: ULID_PATTERN }, refundId: { type: 'string', minLength: 1, maxLength: 64 } },
  required: ['orderId', 'refundId'],
} as const;

/** An admin's action on the parts of a refund still owed, sent for a refund with none (`owed`: which parts it takes; `done`: what it does to them). */
const refundNotFailed = (refundId: string, owed: string, done: string) => new HttpProblem(409, 'REFUND_NOT_FAILED', `Refund ${refundId} has no part ${owed}: only those are ${done}`);

/** Statuses in which a paid order has not left the warehouse: what a refund or a paid cancellation may touch. */
const UNSHIPPED = new Set(['PAID', 'IN_FULFILLMENT']);
/** Statuses of an order closed with its reservation given back: unpaid (cancelled, expired), or a presale's deposit forfeited. */
const RESERVATION_GIVEN_BACK = new Set(['CANCELLED', 'EXPIRED', 'DEPOSIT_FORFEITED']);

/**
 * Whether a refund of the order in its status gives its reservation back (the table's refund
 * releases the stock): its units were reserved and never sold (a presale called off after
 * its deposit), so none is restocked, and the money back is what the payments that paid
 * it took.
 */
function neverSold(order: OrderRow): boolean {
  return stateMachineFor(order.type as OrderType).rule(order.status, 'refund')?.effects?.includes('releaseStock') ?? false;
}

/** The id of `part` when it is a child of `order` rather than the order itself: what a refusal names. */
const childOf = (order: OrderRow, part: OrderRow): string | undefined => (part.order_id === order.order_id ? undefined : part.order_id);

/**
 * `action` on `order` refused for want of a part left to take it, every one of `parts` having
 * shipped or closed: a part that shipped is named before one closed before it shipped, as the
 * order's own status (its least advanced child's) does not say why.
 */
function noPartLeft(order: OrderRow, parts: readonly OrderRow[], action: string, actor: Actor): IllegalTransition {
  const part = parts.find((unit) => !CLOSED_BEFORE_SHIPPING.has(unit.status)) ?? parts[0]!;
  return new IllegalTransition(part.status, action, actor, childOf(order, part));
}

/**
 * The reverse flows before shipment (API.md): cancel (before payment: stock and coupon
 * released; after payment: a full refund through the payment system's breaker, the units
 * back on sale and the coupon use back), refund orders for some or all lines, and their list. A refund's
 * id is derived from the request (or its Idempotency-Key), so the same request twice opens one refund; every
 * refused request changes nothing.
 */
export async function reverseFlowRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const process = new ProcessRepository(deps.db);
  const refunds = new RefundRepository(deps.db);

  /** The refund `refundId` of the order, or of one of its children; 404 when it is another order's. */
  async function refundOfOrder(orderId: string, refundId: string): Promise<RefundView> {
    const found = await refunds.find(refundId);
    const ofOrder = found && (found.orderId === orderId || (await deps.orders.findOrderRow(found.orderId))?.parent_order_id === orderId);
    if (!found || !ofOrder) throw notFound('refund');
    return found;
  }

  /**
   * The parts of an order a principal may move: a merchant sees an order holding any of its
   * SKUs, but moves only parts holding its SKUs alone (a split order's own children), never
   * another merchant's lines; 403 when it has none.
   */
  async function partsFor(principal: Principal, parts: readonly OrderRow[]): Promise<OrderRow[]> {
    if (principal.role !== 'merchant') return [...parts];
    const own = await Promise.all(parts.map((unit) => deps.orders.orderOfMerchantAlone(unit.order_id, principal.sub)));
    const mine = parts.filter((_, i) => own[i]);
    if (mine.length === 0) throw forbidden(MERCHANT_ALONE);
    return mine;
  }

  /**
   * `act` on the order as the request read it; refused (IllegalTransition), `act` once more on the order as it
   * stands then, which decides again which parts it moves: the order may have moved on while the request ran (its
   * payment landed, or a worker split it, PAID still, its parts now its children), or one of its children alone
   * (refunded whole by another request, its parent's version unchanged: that child is left out now). Refused
   * again, the refusal stands.
   */
  async function asItStandsOnceMovedOn<T>(read: OrderRow, act: (order: OrderRow) => Promise<T>): Promise<T> {
    try {
      return await act(read);
    } catch (error) {
      const now = error instanceof IllegalTransition ? await deps.orders.findOrderRow(read.order_id) : undefined;
      if (!now) throw error;
      return act(now);
    }
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

  /**
   * The coupon whose use a release asked for again (a repeated cancel or refund of an order whose
   * reservation was given back) may still give back: none for an order closed so long ago that
   * Redis no longer remembers giving it back, as it would then be another order's.
   */
  function couponToReleaseAgain(order: OrderRow): string | null {
    return releaseRemembered(order.updated_at, deps.clock()) ? couponUseOf(order) : null;
  }

  /** Whether the ledger records the order's reservation as released (e.g. a presale refunded after its deposit): Redis must follow. */
  async function reservationReleased(order: OrderRow): Promise<boolean> {
    const row = await deps.db.selectFrom('stock_ledger').select('id').where('ref', '=', order.order_id).where('kind', '=', 'release').limit(1).executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Opens a refund order on each part (an unsplit order, or children of a split one), all
   * in one transaction (moveParts): 'refund' (the part goes to REFUNDING) when it gives
   * back every unit left, else 'refund_lines'. The ledger restocks the units in the
   * transaction and Redis right after it (once per refund id, the payment job again as a
   * backstop), or, for units in a parcel the warehouse holds, both once it has taken them out
   * (the fulfilment update's job); the job pays the money back. An order whose units were never sold (a
   * presale's deposit) is refunded what the payments that paid it took, and its
   * reservation is released instead, in the ledger and then in Redis. A part whose refund id was seen
   * before changes nothing. Under an Idempotency-Key (`keyed`) the key is taken in the
   * same transaction; with `couponOf`, the coupon use of that order goes back in it once no
   * part is left live (restoreCouponOnceNoneLeft), a cancellation's or a refund's alike. A
   * part that refuses (shipped, or not paid yet) refuses the whole request, naming it when it
   * is a child of `order`, the order the request was sent for.
   */
  async function openRefunds(
    order: OrderRow,
    parts: ReadonlyArray<{ unit: OrderRow; refundId: string; items: RequestedLines | 'rest' }>,
    request: { reason: string; restockReason: string; actor: Actor; couponOf?: string; keyed?: KeyedRefunds },
  ): Promise<{ refunds: RefundView[]; changed: boolean }> {
    const known = new Map<string, RefundView>();
    const opened = new Map<string, RefundView>();
    const { keyed, ...refundRequest } = request;
    const moved = await moveParts(deps, async () => {
      known.clear();
      opened.clear();
      // on every attempt: after a request racing with the same key took it, another body is refused here
      if (keyed) await keyed.refuseOtherBodies();
      const parcelsLeft = await refunds.partsWhoseParcelLeft(parts.map((part) => part.unit.order_id));
      const moves: TransitionRequest[] = [];
      for (const part of parts) {
        const seen = await refunds.find(part.refundId);
        if (seen) {
          known.set(part.refundId, seen);
          continue;
        }
        const current = (await deps.orders.findOrderRow(part.unit.order_id))!;
        const unsold = neverSold(current);
        const child = childOf(order, current);
        // its parcel left with the units of a refund withdrawn: it ships, whatever it reads until its SHIPPED comes, and a
        // refund of it would be withdrawn in its turn, nothing paid back
        if (parcelsLeft.has(current.order_id)) throw new ParcelLeft(current.status, 'refund', request.actor, child);
        if (!UNSHIPPED.has(current.status) && !unsold) throw new IllegalTransition(current.status, 'refund', request.actor, child);
        // no line of a deposit's worth: all of it goes back, or none
        if (unsold && part.items !== 'rest') throw new IllegalTransition(current.status, 'refund_lines', request.actor, child);
        if (!(await process.isPaid(current)) || (!unsold && !(await stockCommitted(current)))) throw new IllegalTransition(current.status, 'refund', request.actor, child);
        const left = new Map((await process.items(current.order_id)).map((line) => [line.sku_id, line.qty - line.refunded_qty]));
        const asked = (sku: string) => (part.items === 'rest' ? 0 : part.items.filter((i) => i.skuId === sku).reduce((s, i) => s + i.qty, 0));
        const whole = part.items === 'rest' || [...left].every(([sku, qty]) => qty === asked(sku));
        const first = moves.length === 0;
        moves.push({
          orderId: current.order_id,
          action: whole ? 'refund' : 'refund_lines',
          actor: request.actor,
          at: deps.clock(),
          detail: refundOpenedDetail(part.refundId, request.reason),
          effects: async (trx, order, fired) => {
            const { couponOf, ...refund } = refundRequest;
            // `unsold` was read before the transaction: a balance paid since (a presale now PAID) is a sold order, refunded
            // and restocked as one once the whole request is decided again from the order as it is now
            if (neverSold(order) !== unsold) throw new StaleOrderVersion(order.order_id);
            if (first && keyed) await keyed.take(trx, deps.clock());
            if (unsold) {
              opened.set(part.refundId, await RefundRepository.openPaymentRefund(trx, order, { ...refund, refundId: part.refundId, at: deps.clock() }));
            } else {
              opened.set(part.refundId, await RefundRepository.openRefund(trx, order, { ...refund, refundId: part.refundId, items: part.items, kind: 'refund', status: 'PENDING', at: deps.clock() }));
              // `whole` was read before the transaction: a refund committed since may have taken units, and the locked lines decide
              if ((await RefundRepository.everyUnitRefunded(trx, order.order_id)) !== (fired.action === 'refund')) throw new StaleOrderVersion(order.order_id);
            }
            if (fired.effects.includes('releaseStock')) await OrderRepository.releaseReservation(trx, order.order_id, refund.restockReason, deps.clock());
            if (couponOf !== undefined) await RefundRepository.restoreCouponOnceNoneLeft(trx, couponOf, deps.clock());
          },
        });
      }
      return moves;
    });
    // the jobs first: a Redis step below that times out, or this process dying, must not lose them
    for (const { order, fired } of moved) await followUp(deps, order, fired.effects);
    // Redis follows the ledger at once; the refund job does it again (once per refund id) should this process die here.
    // Units held in a parcel the warehouse holds go back once it took them out (the fulfilment update's job)
    for (const refund of opened.values()) if (!refund.restockHeld) await deps.inventory.restockStock(refund.orderId, refund.refundId, refund.items.filter((item) => item.qty > 0));
    for (const { order, fired } of moved) if (fired.effects.includes('releaseStock')) await deps.inventory.releaseStock(order.order_id, order.user_id, 'refunded', couponUseOf(order));
    // a repeat: the payment job (which also restocks Redis) is queued again, and a released reservation released
    // in Redis too, in case the first request died before; so is the warehouse's update (it sends nothing for an
    // order with no parcel left to change), or a parcel handed over would ship the units refunded
    for (const part of parts) {
      if (!known.has(part.refundId)) continue;
      if (await reservationReleased(part.unit)) await deps.inventory.releaseStock(part.unit.order_id, part.unit.user_id, 'refunded', couponToReleaseAgain(part.unit));
      await followUp(deps, part.unit, ['refundPayments', 'updateFulfilment']);
    }
    return { refunds: parts.map((part) => (opened.get(part.refundId) ?? known.get(part.refundId))!), changed: opened.size > 0 };
  }

  app.post<{ Params: { orderId: string }; Body: { reason: string } }>(
    '/v1/orders/:orderId/cancel',
    {
      onRequest: app.requireRole('buyer', 'merchant', 'admin'),
      schema: {
        tags: ['orders'],
        summary: 'Cancel an order: before payment its stock and coupon are released; after payment and before shipment it is refunded in full',
        description:
          'A buyer cancels their own order, a merchant one holding its SKUs alone (of a split order: its own children; 403 FORBIDDEN for an order holding another merchant’s lines too), an admin any. Unpaid: CANCELLED, the reserved stock and the coupon use go back. Paid and not shipped (on a split order: no child shipped; a child refunded in full already is left as it is): the order (each child) goes to REFUNDING with a refund of everything it paid, its units go back on sale (from a parcel the warehouse was handed, or of a paid order it was asked to take whose answer is not recorded yet, once it has taken them out or said it never had the order, and only then is the money paid back and the coupon use given back: should the parcel leave with them first, the refund is WITHDRAWN, nothing paid back, the coupon use kept, and the order ships after all), the coupon use goes back once no part of the order is left live and none shipped (on a split order the cancel that closes its last part gives it back, whoever sends it: each merchant cancelling its own child, or the buyer the rest; a child refunded whole before it shipped counts as closed, and a refund closing the last child whole after a cancel closed another gives it back alike; while a child is live it stays used, and once a child has shipped it stays used for good, the order being partly fulfilled; a repeat gives it back if the cancels before it did not; once only), and it becomes REFUNDED once the payment system has paid it back (through its circuit breaker: while the payment system is down the refund waits). A presale whose deposit is paid (DEPOSIT_PAID): the buyer’s cancel forfeits the deposit at once (DEPOSIT_FORFEITED, as when its balance deadline passes: the units back on sale, the coupon use back); a merchant’s or an admin’s refunds the deposit (REFUNDING with a refund of what the deposit took, REFUNDED once paid back; the units, reserved and never sold, are released rather than restocked; the deposit counts on the lines’ refundedCents by what each pays, so each merchant’s view says its share went back; one whose balance is paid meanwhile is refunded as the paid order it is then, its units restocked). An imported order (PAID) is CANCELLED at once and its warehouse is told through its circuit breaker to drop the parcel: its shipment reads ACCEPTED until the warehouse has been told, then CANCELLED. A cancel during which the order moved on (its payment landing as the cancel ran, or a worker splitting the paid order) cancels it as it stands then (paid: refunded in full; split: each child; a presale whose deposit landed as its buyer’s cancel ran: the deposit refunded, REFUNDING, never forfeited). Cancelling again changes nothing, except that it finishes giving the stock (and, within 90 days of the close, the coupon use) back when the first cancel failed halfway (a 5xx), and asks an imported order’s warehouse again to drop its parcel. 409 ILLEGAL_TRANSITION once shipped (on a split order: once any child has, that child named in its detail and in its `childOrderId` member; every child closed already: one of them named alike), and so once a refund of the order (or of a child) was withdrawn, a cancel’s or one of some lines alike, its parcel having left first (a cancel would be withdrawn in its turn), whatever it reads until its SHIPPED comes, and (with retry-after) while the order is still in the queue (ACCEPTED). A merchant’s cancel of an order holding another merchant’s lines too is 403 FORBIDDEN whatever its status, already cancelled or still in the queue alike.',
        params: orderParamsSchema,
        body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason } },
        response: { 200: { $ref: 'Order#' }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const read = await ownOrder(deps, request.user, request.params.orderId, 'cancel');
      return asItStandsOnceMovedOn(read, (order) => cancel(order, request.user, request.body.reason, read));
    },
  );

  /** A cancel of the order as it was read (API.md, and the route's description above); `decidedOn`, as the request first read it. */
  async function cancel(order: OrderRow, user: Principal, why: string, decidedOn: OrderRow) {
    const actor: Actor = user.role;
    // the deposit landed as the buyer's cancel ran, sent while the order awaited it: the buyer withdrew before
    // paying, so the deposit goes back, as when the shop calls the presale off, rather than being forfeited
    const depositOvertook = actor === 'buyer' && decidedOn.status === 'PENDING_DEPOSIT' && order.status === 'DEPOSIT_PAID';
    const machine = stateMachineFor(order.type as OrderType);
    // a merchant acts on parts holding its SKUs alone: checked first, so a repeat on a closed order is refused as any act is
    const merchantParts = user.role === 'merchant' ? await partsFor(user, await orderParts(process, order)) : undefined;
    if (RESERVATION_GIVEN_BACK.has(order.status)) {
      // the first cancel (or the expiry) may have failed between its MySQL commit and Redis: finish
      // giving the stock back, or the deadline job and a repair in between would give it back twice;
      // and its coupon use, which an order of a bucket holds apart from its record (the release
      // script may have run unanswered, leaving the use alone)
      await deps.inventory.releaseStock(order.order_id, order.user_id, order.status.toLowerCase(), couponToReleaseAgain(order));
      // where a cancel brings the order (a buyer's, of a presale whose deposit is paid: its deposit forfeited): cancelling again changes nothing
      // (an imported order's buyer, whom its table never lets cancel it, is refused as before its shop's cancel)
      const cancelledTo = machine.process.transitions.some((rule) => rule.action === 'cancel' && rule.to === order.status && rule.actors.includes(actor));
      if (cancelledTo) {
        // and what the first cancel asked for once committed (a warehouse told to drop a parcel), should it have died before asking
        await followUpAgain(deps, order.order_id);
        return deps.orders.findOrder(order.order_id);
      }
    }
    // the order type's table decides: unpaid orders (and e.g. imported ones, paid in their channel; a presale's
    // buyer after the deposit) cancel as it says
    const byTable = !depositOvertook && machine.can(order.status, 'cancel', actor) ? machine.rule(order.status, 'cancel') : undefined;
    if (byTable) {
      // paid in its channel (imported), or a presale's buyer walking away from the deposit, is no cancel before payment
      const stage = machine.process.paymentActions.length === 0 ? 'paid_in_channel' : byTable.to === 'DEPOSIT_FORFEITED' ? 'deposit_forfeited' : 'before_payment';
      if (await cancelByTable(order, actor, why, byTable)) deps.metrics.cancellations.inc({ stage });
    } else if (machine.process.paymentActions.length === 0) {
      // paid in its channel (an imported order): no refund of it is ours to make, the table's word is the answer
      throw new IllegalTransition(order.status, 'cancel', actor);
    } else {
      const units = merchantParts ?? (await orderParts(process, order));
      // a part whose parcel left with the units of a refund of it (withdrawn: its own cancel, or one of some lines) ships,
      // and a cancel of it would be withdrawn in its turn. A withdrawn cancel is no repeat to answer, and the order's
      // cancel is refused whole, naming that part, rather than refunding the other parts alone
      const parcelsLeft = await refunds.partsWhoseParcelLeft(units.map((unit) => unit.order_id));
      const left = units.find((unit) => parcelsLeft.has(unit.order_id));
      if (left) throw new ParcelLeft(left.status, 'cancel', actor, childOf(order, left));
      const open = await Promise.all(units.map(async (unit) => ({ unit, known: await refunds.find(cancelRefundOf(unit.order_id)) })));
      // a part closed by a refund of its own (a child refunded in full) is left as it is
      const parts = open.filter(({ unit, known }) => known || !CLOSED_BEFORE_SHIPPING.has(unit.status));
      if (parts.length === 0) throw noPartLeft(order, units, 'cancel', actor);
      // all or nothing: a cancellation refunds only when no part has shipped (or, a presale after its deposit, none was sold);
      // a child refusing it is named, as the order's own status (its least advanced child's) does not say why
      for (const { unit, known } of parts) if (!known && !UNSHIPPED.has(unit.status) && !neverSold(unit)) throw new IllegalTransition(unit.status, 'cancel', actor, childOf(order, unit));
      // the coupon use goes back with the refunds' commit once no part of the order is left live (this cancel
      // closed the last one, or all of them; or, after it, a refund closes the last part whole), and the refund
      // job makes Redis follow before it pays anything back
      const couponOf = order.coupon_code === null ? undefined : (order.parent_order_id ?? order.order_id);
      // a repeat opens nothing, yet gives the use back if the cancels before it left it used (an order closed part by
      // part before the last part's cancel gave it back); before its refund job is queued again, which makes Redis follow
      if (couponOf !== undefined && parts.every(({ known }) => known)) {
        // in a transaction of its own, under the order's lock as a cancellation's
        await retryTransaction(() =>
          deps.db.transaction().execute(async (trx) => {
            await trx.selectFrom('orders').select('order_id').where('order_id', '=', couponOf).forUpdate().execute();
            await RefundRepository.restoreCouponOnceNoneLeft(trx, couponOf, deps.clock());
          }),
        );
      }
      const { changed } = await openRefunds(
        order,
        parts.map(({ unit }) => ({ unit, refundId: cancelRefundOf(unit.order_id), items: 'rest' as const })),
        { reason: why, restockReason: 'cancel', actor: depositOvertook ? 'system' : actor, couponOf },
      );
      if (changed) deps.metrics.cancellations.inc({ stage: 'after_payment' });
    }
    return deps.orders.findOrder(order.order_id);
  }

  /** Fires the table's cancel; with `releaseStock` the reservation and the coupon use go back, in the ledger and then in Redis. */
  async function cancelByTable(order: OrderRow, actor: Actor, why: string, rule: TransitionRule): Promise<boolean> {
    const releaseStock = rule.effects?.includes('releaseStock') ?? false;
    try {
      const { order: closed, fired } = await retryTransaction(
        () =>
          deps.orders.applyTransition({
            orderId: order.order_id,
            action: 'cancel',
            actor,
            at: deps.clock(),
            detail: historyDetail(why),
            effects: async (trx, current, transition) => {
              // decided on the order as read: one that moved on since (a presale's deposit landing) is decided again as it stands
              if (current.status !== order.status) throw new IllegalTransition(current.status, 'cancel', actor);
              if (releaseStock) await OrderRepository.releaseReservation(trx, current.order_id, transition.action, deps.clock());
            },
          }),
        { alsoAfter: afterStaleOrderVersion },
      );
      deps.metrics.transitions.inc({ type: closed.type, from: fired.from, to: fired.to, action: fired.action });
      if (releaseStock) await deps.inventory.releaseStock(order.order_id, order.user_id, 'cancelled', couponUseOf(order));
      // an imported order's parcel waits at its warehouse, which is told to drop it
      await followUp(deps, closed, fired.effects);
      return true;
    } catch (error) {
      // a cancel racing this one won (or, for a deposit forfeited, the balance deadline): cancelling again changes nothing
      if (error instanceof IllegalTransition && (await deps.orders.findOrderRow(order.order_id))?.status === rule.to) return false;
      throw error;
    }
  }

  app.patch<{ Params: { orderId: string }; Body: { address: Address } }>(
    '/v1/orders/:orderId/address',
    {
      onRequest: app.requireRole('buyer', 'admin'),
      schema: {
        tags: ['orders'],
        summary: "Change the order's delivery address until it ships",
        description:
          "Each change is a step in the history (change_address). A warehouse that already has the order (or a split order's child) is told through its circuit breaker. The same address again changes nothing. On a split order, a child closed before it shipped (cancelled, or refunded whole: REFUNDED, or still REFUNDING while the payment system confirms it) keeps the address it had, and the others take the new one. 409 ILLEGAL_TRANSITION once the order has shipped or closed (on a split order: once any child has shipped, whatever it became since, or once every child is closed; that child named in its detail and in its `childOrderId` member), and so once a refund of the order (or of a child to take the address) was withdrawn, its parcel having left first with the address it had, whatever it reads until its SHIPPED comes, and for an order that ships nothing (virtual), with or without an address.",
        params: orderParamsSchema,
        body: { type: 'object', additionalProperties: false, required: ['address'], properties: { address: addressSchema } },
        response: { 200: { $ref: 'Order#' }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const order = await ownOrder(deps, request.user, request.params.orderId, 'change_address');
      // not a matter of its status: no status of its type takes an address
      if (!shipsParcels(order.type as OrderType)) throw new NothingShips(order.type);
      const actor: Actor = request.user.role;
      const address = storedAddress(request.body.address);
      const detail = historyDetail(`${request.body.address.line1}, ${request.body.address.postalCode} ${request.body.address.city}`);
      /**
       * The parts the address goes to, read again on every attempt: a child closed before it shipped (cancelled,
       * refunded whole, its refund confirmed or not) has no parcel left to send anywhere; one that shipped, whatever
       * it became since (delivered, completed, returned), sent it to the address it had, and refuses. A split order
       * takes the address as its children do (its own status is theirs).
       */
      const partsToMove = async () => {
        const current = (await deps.orders.findOrderRow(order.order_id)) ?? order;
        const children = await process.children(order.order_id);
        const toShip = children.filter((child) => !CLOSED_BEFORE_SHIPPING.has(child.status));
        if (children.length > 0 && toShip.length === 0) throw noPartLeft(current, children, 'change_address', actor);
        const parts = [...toShip, current];
        // a part whose parcel left with the units of a refund withdrawn went to the address it had, whatever it reads until its SHIPPED comes
        const parcelsLeft = await refunds.partsWhoseParcelLeft(parts.map((part) => part.order_id));
        for (const part of parts) {
          const facts = { split: part === current && children.length > 0, child: part.parent_order_id !== null };
          if (part.address === address) continue;
          if (parcelsLeft.has(part.order_id)) throw new ParcelLeft(part.status, 'change_address', actor, childOf(current, part));
          if (!stateMachineFor(part.type as OrderType).can(part.status, 'change_address', actor, facts)) throw new IllegalTransition(part.status, 'change_address', actor, childOf(current, part));
        }
        return { parts, split: children.length > 0 };
      };
      // all or nothing, in one transaction: a parcel that ships (or a split that makes the children) while the
      // change is being made refuses it whole or takes it whole, never leaves some parts with the old address
      let partsRead: OrderRow[] = [];
      const move = () =>
        moveParts(deps, async () => {
          const { parts, split } = await partsToMove();
          partsRead = parts;
          return parts
            .filter((part) => part.address !== address)
            .map((part) => ({
              orderId: part.order_id,
              action: 'change_address',
              actor,
              at: deps.clock(),
              detail,
              effects: async (trx, now) => {
                // the same change, committed since the parts were read (change_address keeps the status, so both fire): read
                // again, the part has the address, and the change is answered as made, one step in its history
                if (now.address === address) throw new StaleOrderVersion(part.order_id);
                // an order split since its parts were read has children with the address it had: the parts are read again
                if (part.order_id === order.order_id && !split) {
                  const children = await trx.selectFrom('orders').select('order_id').where('parent_order_id', '=', part.order_id).limit(1).execute();
                  if (children.length > 0) throw new StaleOrderVersion(part.order_id);
                }
                await trx.updateTable('orders').set({ address, updated_at: deps.clock() }).where('order_id', '=', part.order_id).execute();
              },
            }));
        });
      let moved: TransitionResult[];
      try {
        moved = await move();
      } catch (error) {
        if (!(error instanceof IllegalTransition)) throw error;
        // a part moved on between the read and the transaction: a parcel that shipped is refused naming it, as the
        // read would have; a child closed meanwhile (refunded whole) keeps its address, and the others take the new one
        await partsToMove();
        moved = await move();
      }
      for (const { order: part, fired } of moved) await followUp(deps, part, fired.effects);
      // the parts that had the address already: a change sent again after its answer was lost, perhaps with the
      // warehouse's update; enqueued again (it sends nothing for a part with no parcel left to change)
      for (const part of partsRead.filter((part) => part.address === address)) await followUp(deps, part, ['updateFulfilment']);
      return deps.orders.findOrder(order.order_id);
    },
  );

  app.post<{ Params: { orderId: string }; Body: { reason: string; items?: Array<{ skuId: string; qty: number }> }; Headers: { 'idempotency-key'?: string } }>(
    '/v1/orders/:orderId/refunds',
    {
      onRequest: app.requireRole('buyer', 'merchant', 'admin'),
      schema: {
        tags: ['after-sales'],
        summary: 'Refund some or all lines of a paid order that has not shipped (202: the payment system pays it back)',
        description:
          "A buyer refunds their own order, a merchant one holding its SKUs alone (of a split order: its own children, another merchant’s SKU refused like one the order does not hold; 403 FORBIDDEN for an order holding another merchant’s lines too), an admin any. Opens a refund order (its own id and status) per order part the units belong to (a split order's child), every one or none; a refund during which a worker split the paid order is carried out on the order as it stands then (on its children), not refused. Each line refunds its allocated payable by units, never more; a parcel's shipping (its warehouse's fee, on the lines a split makes one child of) is refunded with the request that brings every unit of that parcel back, before the split or after it alike. A child whose every unit was refunded before the split starts REFUNDED (REFUNDING while that refund is still owed, REFUNDED once it is paid back): nothing of it is sent to its warehouse, cancelled or refunded again. The units go back on sale and the money back: at once, or, out of a parcel the warehouse was handed (IN_FULFILLMENT) or may hold (PAID, the warehouse asked to take the order and its answer not recorded yet: lost to a timeout, or on its way), once the warehouse has taken them out of it or said it never had the order (`restockHeld` until then). Should the parcel leave with them first (the warehouse refuses the change as too late, or reports the parcel shipped), the refund is WITHDRAWN: nothing is paid back, the units stay sold and no longer count as refunded, and an order refunded whole ships after all (REFUNDING, then IN_FULFILLMENT and on); the buyer may return them once delivered. With an Idempotency-Key header (the caller's own on this order: another caller's same key is another key) the refund belongs to the key: the same key with the same body answers the same refund and changes nothing, even sent twice at once, the same key with another body 422 IDEMPOTENCY_CONFLICT, a new key opens a new refund (e.g. one more unit with the same reason). Without the header the id derives from the reason and the units: the same request again answers the same refund and changes nothing. `replayed` is true when the answer is a refund opened before. Without items: every unit not refunded yet (again: the refunds the first such request opened). 409 ILLEGAL_TRANSITION once shipped or before the payment settled (on a split order, the child refusing named in its detail and in its `childOrderId` member; without items and no child left to refund, one that shipped, else one closed), and so once a refund of the order (of a child the request refunds) was withdrawn, its parcel having left first, whatever it reads until its SHIPPED comes: a further refund would be withdrawn in its turn, while a repeat of a refund opened before is answered as it stands, WITHDRAWN or not; 422 REFUND_EXCEEDS_ORDER for more units than are left. The coupon use stays used, except on a split order a cancel closed a child of: the refund that closes its last live child whole (none shipped) gives it back, as that cancel would have, had it come last. A presale whose deposit is paid (DEPOSIT_PAID) is refunded whole by a merchant or an admin, as their cancel does (the deposit back, its units released): without items only, and not by the buyer (409 ILLEGAL_TRANSITION; the buyer cancels, forfeiting the deposit).",
        params: orderParamsSchema,
        headers: idempotencyKeyHeaders,
        body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason, items: refundItems } },
        response: {
          202: {
            type: 'object',
            properties: {
              refundId: { type: 'string' },
              status: { type: 'string' },
              refunds: { type: 'array', items: refundSchema, description: 'one refund per order part (child) touched' },
              replayed: { type: 'boolean', description: 'true when nothing was opened: the refunds are the ones this request (its key, or its reason and units) opened before' },
            },
            required: ['refundId', 'status'],
          },
          '4xx': problemRef,
          '5xx': problemRef,
        },
      },
    },
    async (request, reply) => {
      const read = await ownOrder(deps, request.user, request.params.orderId, 'refund');
      const { reason: why, items } = request.body;
      refuseRepeatedKey(request);
      const idempotencyKey = request.headers['idempotency-key'];
      const keyed =
        idempotencyKey === undefined ? undefined : new KeyedRefunds(deps.db, { orderId: read.order_id, kind: 'refund', caller: request.user, key: idempotencyKey }, { reason: why, items: items ?? 'rest' });
      if (keyed) await keyed.refuseOtherBodies();
      const { refunds: opened, changed } = await asItStandsOnceMovedOn(read, (order) => refund(order, request.user, { why, items, keyed }));
      return reply.code(202).send({ refundId: opened[0]!.refundId, status: opened[0]!.status, refunds: opened, replayed: !changed });
    },
  );

  /** A refund of the order as it was read (the route's description above): its parts, then their refunds, all or none. */
  async function refund(order: OrderRow, user: Principal, { why, items, keyed }: { why: string; items: RequestedLines | undefined; keyed: KeyedRefunds | undefined }) {
    const actor: Actor = user.role;
    // unkeyed, the whole request's units name each part's refund: by the part's share alone, a later
    // request repeating that share (the second of two lamps) found the first's refund and opened none
    const key = (unit: OrderRow) => (keyed ? keyed.idFor(unit.order_id) : refundIdFor(unit.order_id, ['refund', why, unitsKey(items ?? 'rest')]));
    let parts: Array<{ unit: OrderRow; items: RequestedLines | 'rest' }>;
    const units = await partsFor(user, await orderParts(process, order));
    if (items !== undefined) {
      // a repeat of a refund opened before the order split (its answer lost): the order's own, answered as it is,
      // not opened again on the children; by a caller who could have opened it, not a merchant of some of its lines
      // (another's refund in the same words, read whole)
      const openedBeforeSplit =
        units[0] !== order && (user.role !== 'merchant' || (await deps.orders.orderOfMerchantAlone(order.order_id, user.sub))) && (await refunds.find(key(order))) !== null;
      parts = openedBeforeSplit ? [{ unit: order, items }] : await linesByOrderPart(process, units, items);
    } else {
      // a repeat answers the refunds it opened, though their parts are REFUNDING now (looked up after
      // the parts' statuses were read: a request that opened them meanwhile is found too)
      const before = (await Promise.all(units.map(async (unit) => ((await refunds.find(key(unit))) ? unit : null)))).filter((unit) => unit !== null);
      // and every unit not refunded yet, of every part that has not shipped: a request in the same words from a
      // caller who reaches more children (the buyer, after one merchant refunded its own) opens the others' too
      const rest = units[0] === order ? [order] : units.filter((child) => UNSHIPPED.has(child.status));
      parts = units.filter((unit) => before.includes(unit) || rest.includes(unit)).map((unit) => ({ unit, items: 'rest' as const }));
      if (parts.length === 0) throw noPartLeft(order, units, 'refund', actor);
    }
    // the refund that closes the last live part of an order a cancellation closed parts of gives the coupon use back, as
    // that cancellation would have had it come last (restoreCouponOnceNoneLeft)
    const couponOf = order.coupon_code === null ? undefined : (order.parent_order_id ?? order.order_id);
    return openRefunds(
      order,
      parts.map((part) => ({ ...part, refundId: key(part.unit) })),
      { reason: why, restockReason: 'refund', actor, couponOf, keyed },
    );
  }

  app.get<{ Params: { orderId: string } }>(
    '/v1/orders/:orderId/refunds',
    {
      onRequest: app.requireRole('buyer', 'merchant', 'admin'),
      schema: {
        tags: ['after-sales'],
        summary: "The order's refunds and returns (its children's too), oldest first",
        description:
          "A buyer sees their own order's, an admin any order's, all of them. A merchant sees an order holding its SKUs, and of it only what is its own: the refunds and returns of its own children of a split order (and of an order holding its lines alone), none of another merchant's child. A refund of an order holding another merchant's lines too (one refunded before it split) shows it its own lines alone, `amountCents` their cents summed and `parts` empty; one naming none of its lines (another merchant's, or a whole payment given back: a presale's deposit, a late payment) is not listed.",
        params: orderParamsSchema,
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: refundSchema } }, required: ['items'] }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const { orderId } = request.params;
      if (!ULID.test(orderId)) throw notFound('order');
      const order = await deps.orders.findOrderRow(orderId);
      const principal = request.user;
      // still in the queue: no refund yet, told only to those who may see the order
      if (!order && (await queuedOrderFor(deps, principal, orderId))) return { items: [] };
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

  app.post<{ Params: { orderId: string; refundId: string }; Body: { reference: string } }>(
    '/v1/orders/:orderId/refunds/:refundId/settle-by-hand',
    {
      onRequest: app.requireRole('admin'),
      schema: {
        tags: ['after-sales'],
        summary: 'Records that the shop paid a refund back another way, where the payment system could not (admin)',
        description:
          "A refund part the payment system answered FAILED is still owed, and its order stays REFUNDING. Once the shop has paid the buyer back another way (a bank transfer, store credit), an admin records it with `reference` (how: the transfer's reference, say): every FAILED part of the refund becomes SETTLED_BY_HAND with that reference, the refund SUCCEEDED once every part is paid back (its history says `admin`), and the order REFUNDED once no refund of it is left unsettled. 200 with the refund. Sent again once settled, it answers the same and changes nothing; a refund with no FAILED part is 409 REFUND_NOT_FAILED (the payment system may still pay it: wait for its callback). A payment system that pays such a part after all is logged at error and counted (`order_refunds_total{outcome=\"succeeded_after_settled_by_hand\"}`): the buyer was paid twice.",
        params: refundParamsSchema,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['reference'],
          properties: { reference: { type: 'string', minLength: 1, maxLength: 128, pattern: '\\S', description: 'how the shop paid the buyer back (a bank transfer reference, a voucher number)' } },
        },
        response: { 200: refundSchema, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const { orderId, refundId } = request.params;
      const reference = request.body.reference.trim();
      const found = await refundOfOrder(orderId, refundId);
      const settlement = await retryTransaction(() => refunds.settleFailedPartsByHand(refundId, reference, deps.clock()));
      if (!settlement) throw notFound('refund');
      if (settlement.settled.length === 0 && !settlement.byHandBefore) {
        throw refundNotFailed(refundId, 'the payment system failed to pay back (FAILED)', 'settled by hand');
      }
      if (settlement.settled.length > 0) {
        deps.metrics.refundedCents.inc({ kind: found.kind }, settlement.settled.reduce((sum, part) => sum + part.amountCents, 0));
        if (settlement.refundSettled) deps.metrics.refunds.inc({ kind: found.kind, outcome: 'settled_by_hand' });
        request.log.warn(
          { orderId: found.orderId, refundId, parts: settlement.settled.map((part) => part.partId), reference, admin: request.user.sub },
          'an admin settled refund parts the payment system could not pay back: paid back another way',
        );
      }
      await closeOrderOnceRefunded(deps, found.orderId, `refund ${refundId}`);
      return refunds.find(refundId);
    },
  );

  app.post<{ Params: { orderId: string; refundId: string }; Body: Record<string, never> | null }>(
    '/v1/orders/:orderId/refunds/:refundId/ask-again',
    {
      onRequest: app.requireRole('admin'),
      schema: {
        tags: ['after-sales'],
        summary: 'Asks the payment system again for a refund it could not pay back, or never confirmed (admin)',
        description:
          "A refund part the payment system answered FAILED is still owed. Once its cause is gone (the buyer's card unblocked, the provider's decline fixed), an admin asks for the money again: the payment system knows a refund by its id for good, so every FAILED part is asked for under a new part (PENDING, the same payment and amount; sent through its circuit breaker by the payment job), and the old one becomes ASKED_AGAIN, naming it (`askedAgainAs`). A part the payment system accepted (SENT) and never confirmed by its callback, first sent longer than REFUND_CONFIRMATION_GIVE_UP_MS ago (24 h; nothing asks for it any more, RefundsUnconfirmedGivenUp), is due again under its own id (PENDING): the payment system pays nothing twice under one id, and confirms one it paid by its callback again; sent again, it is asked about for REFUND_CONFIRMATION_GIVE_UP_MS more. The refund is due again (PENDING, its history says `admin`), SUCCEEDED once its parts are confirmed, and the order REFUNDED as after any refund. A new part that fails too is FAILED again: asked again, or settled by hand. 200 with the refund. Sent again before any part failed or was given up again, it answers the refund as it is and changes nothing; a refund with no FAILED part, none given up, and none an admin made due before is 409 REFUND_NOT_FAILED (a part SENT more recently is still asked about: wait for its callback). A payment system that pays the declined part after all is logged at error and counted (`order_refunds_total{outcome=\"succeeded_after_asked_again\"}`, RefundPaidTwice).",
        params: refundParamsSchema,
        body: noFieldsBody,
        response: { 200: refundSchema, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const { orderId, refundId } = request.params;
      const found = await refundOfOrder(orderId, refundId);
      const asked = await retryTransaction(() => refunds.askFailedPartsAgain(refundId, deps.clock(), deps.config.REFUND_CONFIRMATION_GIVE_UP_MS));
      if (!asked) throw notFound('refund');
      if (asked.askedAgain.length === 0 && asked.sentAgain.length === 0 && !asked.askedBefore) {
        throw refundNotFailed(refundId, 'the payment system failed to pay back (FAILED), nor one it never confirmed within REFUND_CONFIRMATION_GIVE_UP_MS (SENT, given up)', 'asked for again');
      }
      if (asked.askedAgain.length > 0) {
        deps.metrics.refunds.inc({ kind: found.kind, outcome: 'asked_again' });
        request.log.warn({ orderId: found.orderId, refundId, parts: asked.askedAgain.map((part) => part.partId), admin: request.user.sub }, 'an admin asked the payment system again for refund parts it could not pay back');
      }
      if (asked.sentAgain.length > 0) {
        deps.metrics.refunds.inc({ kind: found.kind, outcome: 'sent_again' });
        request.log.warn({ orderId: found.orderId, refundId, parts: asked.sentAgain.map((part) => part.partId), admin: request.user.sub }, 'an admin asked the payment system again for refund parts it never confirmed');
      }
      // again on a repeat: a job lost after the first commit would leave the new parts unsent until the sweep of waiting refunds
      await enqueueRefundPayments(deps.queues, found.orderId);
      return refunds.find(refundId);
    },
  );
}

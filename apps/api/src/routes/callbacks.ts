import { createHmac, timingSafeEqual } from 'node:crypto';
import { IllegalTransition, StaleOrderVersion, stateMachineFor, type OrderType } from '@orders/domain';
import { afterStaleOrderVersion, ProcessRepository, REFUNDED_WHOLE, RefundRepository, SHIPMENT_STEPS, UNSHIPPED_PARCEL, retryTransaction, type LineUnits, type OrderRow, type RefundView, type TransitionResult } from '@orders/persistence';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { AlreadyApplied, followUp, payBalanceOfNothing, refundIfNotApplied, settleRefundPart, settleReportedPayment } from '@orders/settlement';
import { HttpProblem, notFound, unauthorized, validationFailed } from '../problems.js';
import { problemRef } from '../schemas.js';
import { instant } from '../time-window.js';
import { holdsLoneSurrogate, loneSurrogate, notUtf8, utf8TextOf } from '../utf8-body.js';
import { followUpAgain } from './order-engine-support.js';

type CallbackSystem = 'payment' | 'warehouse';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** whose shared secret signs this route's bodies */
    callbackSystem?: CallbackSystem;
  }
}

interface PaymentCallback {
  orderId: string;
  paymentId: string;
  /** present when the callback confirms a refund of the payment rather than the payment */
  refundId?: string;
  transactionId: string;
  status: 'SUCCEEDED' | 'FAILED';
  amountCents: number;
  at: string;
}

interface WarehouseCallback {
  orderId: string;
  event: 'PICKED' | 'PACKED' | 'SHIPPED' | 'DELIVERED' | 'RETURN_RECEIVED';
  /** RETURN_RECEIVED: the return whose parcel came back (its id is on the parcel's label) */
  returnId?: string;
  /** RETURN_RECEIVED: the units the parcel held, per SKU, when the warehouse counted them (unitsReceived) */
  items?: Array<{ skuId: string; qty: number }>;
  trackingNo?: string;
  at: string;
}

const id = { type: 'string', minLength: 1, maxLength: 64 } as const;
const answerSchema = { type: 'object', properties: { changed: { type: 'boolean' }, status: { type: 'string' } }, required: ['changed'] } as const;

/** Each warehouse event: the action it fires and how it moves the shipment (SHIPMENT_STEPS; a returned parcel's, none). */
const WAREHOUSE_EVENTS: Record<WarehouseCallback['event'], { action: string; shipment: { from: readonly string[]; to: string } | null }> = {
  PICKED: { action: 'pick', shipment: SHIPMENT_STEPS.pick },
  PACKED: { action: 'pack', shipment: SHIPMENT_STEPS.pack },
  SHIPPED: { action: 'ship', shipment: SHIPMENT_STEPS.ship },
  DELIVERED: { action: 'deliver', shipment: SHIPMENT_STEPS.deliver },
  RETURN_RECEIVED: { action: 'receive_return', shipment: null },
};

/**
 * The units of each line of `returned` that a parcel holding `items` (per SKU; a SKU of the return
 * not listed: none) brought back, a SKU's lines filled in their order; undefined when it held every
 * unit the return named. Refused (400) for a SKU the return does not name, more units of one than
 * it names, or no unit at all: an empty parcel brings nothing back, and the return is closed instead.
 */
function unitsReceived(returned: RefundView, items: ReadonlyArray<{ skuId: string; qty: number }>): LineUnits[] | undefined {
  const held = new Map<string, number>();
  for (const { skuId, qty } of items) held.set(skuId, (held.get(skuId) ?? 0) + qty);
  const lines = returned.items.filter((item) => item.qty > 0);
  for (const [skuId, qty] of held) {
    const named = lines.filter((line) => line.skuId === skuId).reduce((sum, line) => sum + line.qty, 0);
    if (named === 0) throw validationFailed(`return ${returned.refundId} has no unit of SKU ${skuId}`);
    if (qty > named) throw validationFailed(`return ${returned.refundId} names ${named} unit(s) of SKU ${skuId}, not ${qty}`);
  }
  if ([...held.values()].every((qty) => qty === 0)) {
    throw validationFailed(`an empty parcel brings nothing back: close return ${returned.refundId} (POST /v1/orders/${returned.orderId}/returns/${returned.refundId}/close)`);
  }
  const units = lines.map((line) => {
    const qty = Math.min(line.qty, held.get(line.skuId) ?? 0);
    held.set(line.skuId, (held.get(line.skuId) ?? 0) - qty);
    return { lineNo: line.lineNo, qty };
  });
  return units.some((unit, i) => unit.qty < lines[i]!.qty) ? units : undefined;
}

const unitsOf = (lines: readonly LineUnits[]) => lines.reduce((sum, line) => sum + line.qty, 0);

/** A return that ended with no parcel expected: closed as never sent, or refused. One received after is staff's to settle (returnedAfterClose). */
const ENDED_WITHOUT_PARCEL: ReadonlySet<string> = new Set(['CLOSED', 'REFUSED']);

/** The x-signature header against the body's HMAC, in constant time; its hex in either case, as hex is. */
function signatureMatches(secret: string, body: Buffer, header: unknown): boolean {
  if (typeof header !== 'string') return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const received = Buffer.from(header.toLowerCase());
  return expected.length === received.length && timingSafeEqual(expected, received);
}

/**
 * The signed callbacks of the payment and warehouse systems (API.md). The signature is
 * an HMAC-SHA256 of the raw body, so this plugin parses JSON itself and checks the
 * signature before anything reads the body: a wrong or missing signature is 401 whatever
 * the body holds. Callbacks are idempotent: a repeat answers 200 and changes nothing.
 * Each transaction a callback writes in is run again when MySQL refuses it for now
 * (retryTransaction); past its attempts the sender is told 503 DATABASE_BUSY, and retries.
 */
export async function callbackRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const secrets: Record<CallbackSystem, string> = { payment: deps.config.PAYMENT_CALLBACK_SECRET, warehouse: deps.config.WAREHOUSE_CALLBACK_SECRET };
  const verified = new WeakSet<FastifyRequest>();
  const process = new ProcessRepository(deps.db);
  const refunds = new RefundRepository(deps.db);

  /**
   * The parcel of a return closed because it never came (its merchant, an admin, or the system
   * RETURN_PARCEL_WINDOW_MS after the approval) reached the warehouse after all, or was reported
   * late, or the parcel of a return refused, which its buyer sent all the same: the units are back
   * and nothing is paid back. Nothing changes by itself (the order has moved on, and may have
   * completed) but the return's history, which records the receipt (a step of the warehouse's) so
   * that its repeats are known; logged with the units and counted once (ReturnParcelsAfterClose) for staff to settle: the
   * buyer asks for the return again (its window opened anew at the close or refusal), staff approve
   * it and report the parcel received naming the new return, or send the units back to the buyer.
   */
  async function returnedAfterClose(order: OrderRow, closed: RefundView, callback: WarehouseCallback, log: FastifyBaseLogger): Promise<void> {
    // once a parcel: the warehouse sends its receipt again (our answer lost, its retries)
    if (!(await refunds.recordParcelAfterClose(closed.refundId, new Date(callback.at)))) return;
    deps.metrics.returnParcelsAfterClose.inc();
    log.error(
      { orderId: order.order_id, status: order.status, returnId: closed.refundId, receivedAt: callback.at, closedAt: closed.updatedAt, items: closed.items.map((item) => ({ skuId: item.skuId, qty: item.qty })) },
      'the parcel of a return closed as never sent (or refused) reached the warehouse: its units are back and nothing was paid back; settle with the buyer',
    );
  }

  /**
   * The warehouse shipped the parcel of an order refunded whole (or, imported, cancelled) before it shipped: the update
   * dropping it came too late (the warehouse had not read it, or its breaker held it), or the
   * warehouse shipped it though it took the drop (the shipment reads CANCELLED). Its DELIVERED
   * stands for it when the SHIPPED was lost. Recorded on the shipment, so that update leaves it
   * SHIPPED (or DELIVERED) rather than CANCELLED, logged with the units and counted once
   * (ParcelsShippedAfterRefund): the buyer has the money back and the goods on their way, for
   * the shop to stop the parcel or settle. Units refunded while the warehouse held the parcel
   * stay sold until it takes them out (never, now); units restocked before (the refund came
   * before the hand-over, or the warehouse took the drop and shipped anyway) are on sale again
   * though they left, and the log says to set their stock.
   */
  async function shippedAfterRefund(order: OrderRow, callback: WarehouseCallback & { event: 'SHIPPED' | 'DELIVERED' }, at: Date, log: FastifyBaseLogger): Promise<{ changed: boolean; status: string }> {
    const from = [...UNSHIPPED_PARCEL, 'CANCELLED'];
    const change = { trackingNo: callback.trackingNo ?? null, at };
    // refunded while still PAID, its hand-over never recorded though the warehouse took it: the parcel's event opens its shipment
    const items = await process.items(order.order_id);
    const warehouseId = items[0]?.warehouse_id ?? null;
    const shipped = await retryTransaction(() =>
      deps.db.transaction().execute(async (trx) => {
        if (await ProcessRepository.advanceShipment(trx, order.order_id, from, callback.event, change)) return true;
        return warehouseId !== null && ProcessRepository.openShipmentAt(trx, order, warehouseId, callback.event, change);
      }),
    );
    if (shipped) {
      deps.metrics.parcelsShippedAfterRefund.inc();
      const stayedSold = (await refunds.restockHeldFor(order.order_id)).length > 0;
      log.error(
        { orderId: order.order_id, status: order.status, event: callback.event, trackingNo: callback.trackingNo, items: items.map((item) => ({ skuId: item.sku_id, qty: item.qty })), unitsStayedSold: stayedSold },
        stayedSold
          ? 'the warehouse shipped a parcel of an order refunded before it shipped: stop the parcel or settle with the buyer; its units stayed sold'
          : 'the warehouse shipped a parcel of an order refunded before it shipped: stop the parcel or settle with the buyer, and set the stock of its units',
      );
    }
    return { changed: shipped, status: order.status };
  }

  /**
   * The parcel of an order refunded whole left (its SHIPPED, or its DELIVERED when that was lost)
   * with the units of refunds that wait for the warehouse to take them out, unpaid: the warehouse
   * never applied the drop. The refund that emptied the order (and any after it) is withdrawn,
   * nothing is paid back, and the order ships after all (RefundRepository.withdrawHeld), its event
   * then applied as to any order in fulfilment; the update job decides the earlier ones. Counted and logged for staff: the buyer asked for the
   * money back and gets the goods, and may return them once delivered.
   */
  async function withdrawnByEvent(order: OrderRow, event: 'SHIPPED' | 'DELIVERED', held: readonly RefundView[], log: FastifyBaseLogger): Promise<void> {
    const why = `the warehouse reported the parcel ${event.toLowerCase()} before it took out the units refunded`;
    // the refund that emptied the order (opened with its step into REFUNDING) and any after it; one of some units before
    // it is the update job's to decide, which asks the warehouse whether it took them out first (heldWhenParcelLeft)
    const emptiedAt = await process.lastEntryInto(order.order_id, 'REFUNDING');
    const openedAt = await refunds.openedAtVersions(order.order_id, held.map((refund) => refund.refundId));
    const emptying = new Set(held.filter((refund) => emptiedAt === null || (openedAt.get(refund.refundId) ?? emptiedAt) >= emptiedAt).map((refund) => refund.refundId));
    const { withdrawn, transition } = await retryTransaction(() => refunds.withdrawHeld(deps.orders, order.order_id, deps.clock(), why, emptying), { alsoAfter: afterStaleOrderVersion });
    if (transition) deps.metrics.transitions.inc({ type: transition.order.type, from: transition.fired.from, to: transition.fired.to, action: transition.fired.action });
    if (withdrawn.length === 0) return;
    deps.metrics.refunds.inc({ kind: 'refund', outcome: 'withdrawn' }, withdrawn.length);
    log.warn(
      { orderId: order.order_id, event, refunds: withdrawn.map((refund) => ({ refundId: refund.refundId, amountCents: refund.amountCents, items: refund.items.map((item) => ({ skuId: item.skuId, qty: item.qty })) })) },
      'refunds withdrawn, nothing paid back: the parcel left with their units before the warehouse took them out; the buyer may return them once delivered',
    );
  }

  /**
   * A signed callback naming an order, a payment or a refund part MySQL has no record of: money the
   * payment system moved that this system does not know (MySQL restored from a backup, a replica
   * promoted behind, or another environment sharing the secret). Answered 404, which the payment
   * system takes as final: said loudly and counted (PaymentCallbacksUnknown), or nobody would learn of it.
   */
  function unknownToThisShop(about: 'order' | 'payment' | 'refund', callback: PaymentCallback, log: FastifyBaseLogger): Error {
    deps.metrics.paymentCallbacksUnknown.inc({ about });
    log.error(
      { about, orderId: callback.orderId, paymentId: callback.paymentId, refundId: callback.refundId, transactionId: callback.transactionId, status: callback.status, amountCents: callback.amountCents },
      `a payment callback signed with this shop's secret names ${about === 'order' ? 'an order' : `a ${about}`} MySQL has no record of: answered 404, the money it reports is unknown here`,
    );
    return notFound(about);
  }

  /**
   * One part of a refund reported by the payment system (the callback's refundId is the part's:
   * a refund drawn from several payments has one per payment), settled once shown to be that
   * order's (settleRefundPart). A repeat changes nothing.
   */
  async function confirmRefund(callback: PaymentCallback & { refundId: string }, log: FastifyBaseLogger): Promise<{ changed: boolean; status: string }> {
    const part = await refunds.findPart(callback.refundId);
    const refund = part && (await refunds.find(part.refundId));
    const order = refund && (await deps.orders.findOrderRow(refund.orderId));
    if (!part || !refund || !order) throw unknownToThisShop('refund', callback, log);
    if (part.paymentId !== callback.paymentId || (order.order_id !== callback.orderId && order.parent_order_id !== callback.orderId)) throw notFound('refund');
    if (part.amountCents !== callback.amountCents) {
      throw new HttpProblem(422, 'AMOUNT_MISMATCH', `Refund ${part.partId} is for ${part.amountCents} cents, not ${callback.amountCents}`);
    }
    return settleRefundPart(deps, refund, part, callback.status, log);
  }

  /**
   * The return a RETURN_RECEIVED is for: the one it names (404 unless it is a return of this
   * order), or else the order's open return, unless the event happened no later than a receipt
   * the warehouse reported of the order before: then it is that receipt delivered again (the
   * warehouse's retries keep their `at`), for no return. Both times are the warehouse's clock's;
   * a return's creation is the api host's, minutes ahead of it or behind, and judged by it a
   * receipt sent again was taken as a later return's parcel, or that parcel's own was dropped. A
   * parcel received before its return was approved is still that return's: refused 409 for now,
   * its retry with the same `at` goes through. An order with an open return and a closed one (its
   * parcel never came, until perhaps now) cannot tell whose parcel this is: refused 400, to be sent
   * again naming the return on its label. With no open return, a new parcel is the last closed return's.
   */
  async function returnReceived(callback: WarehouseCallback, orderId: string, log: FastifyBaseLogger): Promise<RefundView | null> {
    if (callback.returnId !== undefined) {
      const named = await refunds.find(callback.returnId);
      if (!named || named.kind !== 'return' || named.orderId !== orderId) throw notFound('return');
      return named;
    }
    const at = new Date(callback.at).getTime();
    const open = await refunds.openReturn(orderId);
    const returns = (await refunds.ofOrders([orderId])).filter((record) => record.kind === 'return');
    const receivedAt = returns.flatMap((record) => record.history.filter((step) => step.actor === 'warehouse' && step.to === 'PENDING').map((step) => Date.parse(step.at)));
    if (receivedAt.some((received) => at <= received)) return null;
    const closed = returns.filter((record) => ENDED_WITHOUT_PARCEL.has(record.status));
    if (!open) return closed.at(-1) ?? null;
    // a sender that gives up on a 4xx leaves the parcel unreceived: counted and logged, as a closed return's parcel, for staff to
    // report it; once a parcel (recorded on the last closed return), the warehouse retrying its refused receipt
    if (closed.length > 0) {
      if (await refunds.recordParcelAfterClose(closed.at(-1)!.refundId, new Date(callback.at))) {
        deps.metrics.returnParcelsAfterClose.inc();
        log.error(
          { orderId, openReturnId: open.refundId, closedReturnIds: closed.map((record) => record.refundId), receivedAt: callback.at },
          "the parcel of a return closed as never sent (or refused) reached the warehouse, or the open return's did: the receipt named no return and was refused; report it again naming the return on its label",
        );
      }
      throw validationFailed(`order ${orderId} has an open return (${open.refundId}) and a closed or refused one whose parcel was not expected (${closed.map((record) => record.refundId).join(', ')}): send RETURN_RECEIVED with the returnId on the parcel's label`);
    }
    return open;
  }

  /**
   * A parcel event for an order still PAID: the warehouse has the order, so the hand-over it
   * accepted is recorded now (IN_FULFILLMENT, its shipment opened), and the event is applied
   * after it. Its own step was not recorded yet: its worker died after the warehouse answered, or
   * the breaker holds its job. Refused 409 until then, the warehouse's retries could run out
   * first, and the order would never leave IN_FULFILLMENT: no shipment, no timers.
   */
  async function handedOverByEvent(order: OrderRow, event: string, log: FastifyBaseLogger): Promise<void> {
    if (!stateMachineFor(order.type as OrderType).rule('PAID', 'fulfil')?.actors.includes('system')) return;
    const warehouseId = (await process.items(order.order_id))[0]?.warehouse_id;
    if (!warehouseId) return;
    try {
      const { order: moved, fired } = await retryTransaction(() =>
        deps.orders.applyTransition({
          orderId: order.order_id,
          action: 'fulfil',
          actor: 'system',
          at: deps.clock(),
          detail: `accepted by warehouse ${warehouseId}, as its ${event} showed before the hand-over was recorded`,
          effects: async (trx, current) => ProcessRepository.openShipment(trx, current, warehouseId, deps.clock()),
        }),
        { alsoAfter: afterStaleOrderVersion },
      );
      deps.metrics.transitions.inc({ type: moved.type, from: fired.from, to: fired.to, action: fired.action });
      log.warn({ orderId: order.order_id, warehouseId, event }, "recorded an order's hand-over from its warehouse's event, which came before the hand-over's own step");
      // the warehouse holds what the hand-over's first attempt sent, maybe before a change made while the order was PAID
      // (units refunded, a new address) that nothing sent it then: it is told what the order holds now, before its parcel leaves
      await followUp(deps, moved, [...fired.effects, 'updateFulfilment']);
    } catch (error) {
      // handed over meanwhile by its job, or moved on otherwise (refunded): the event is applied, or refused, as the order stands
      if (!(error instanceof IllegalTransition)) throw error;
    }
  }

  // encapsulated: only these routes read raw bodies (in place of the app's parser)
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const system = request.routeOptions.config.callbackSystem;
    if (!system || !signatureMatches(secrets[system], body as Buffer, request.headers['x-signature'])) {
      done(unauthorized('x-signature must be sha256=<hex HMAC-SHA256 of the raw body> with the shared secret'), undefined);
      return;
    }
    verified.add(request);
    const text = utf8TextOf(body as Buffer);
    if (text === undefined) {
      done(notUtf8(), undefined);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      done(new HttpProblem(400, 'VALIDATION_FAILED', 'The body is not valid JSON'), undefined);
      return;
    }
    done(holdsLoneSurrogate(text, parsed) ? loneSurrogate() : null, parsed);
  });
  app.addHook('preValidation', async (request) => {
    if (!verified.has(request)) throw unauthorized('A signed JSON body is required');
  });
  // `at` is when it happened (kept as the payment's paidAt, the parcel's shipped_at), not when it
  // was sent: one delivered late (after an outage of ours, reported again) is applied whatever
  // its age, and a repeat changes nothing, each callback being idempotent. Only a time ahead of
  // ours by more than CALLBACK_REPLAY_WINDOW_MS is refused, not to be kept; the sender's retry,
  // with the same `at`, goes through once our clock has caught up.
  app.addHook('preHandler', async (request) => {
    const at = instant((request.body as { at: string }).at, 'at');
    const ahead = at.getTime() - deps.clock().getTime();
    if (ahead > deps.config.CALLBACK_REPLAY_WINDOW_MS) {
      throw validationFailed(`at ${at.toISOString()} is ${ahead} ms ahead of the order system's clock, more than the ${deps.config.CALLBACK_REPLAY_WINDOW_MS} ms allowed`);
    }
  });

  app.post<{ Body: PaymentCallback }>(
    '/v1/callbacks/payment',
    {
      config: { callbackSystem: 'payment' },
      schema: {
        tags: ['callbacks'],
        // signed with the payment system's secret (x-signature), no bearer token
        security: [],
        summary: 'The payment system reports a payment outcome, or confirms a refund (with refundId) (signed; idempotent)',
        description:
          'A payment reported SUCCEEDED for another amount than it asked for does not pay its order: it is recorded as taken for the amount named and given back whole (200, changed=true), and the order stays payable (the next pay is a new attempt). A FAILED one reported for another amount is recorded as declined all the same (nothing was taken; the next pay is a new attempt). A payment already settled reported for another amount is answered 422 AMOUNT_MISMATCH.',
        headers: { type: 'object', properties: { 'x-signature': { type: 'string', description: 'sha256=<hex HMAC-SHA256 of the raw body>' } } },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['orderId', 'paymentId', 'transactionId', 'status', 'amountCents', 'at'],
          properties: {
            orderId: id,
            paymentId: id,
            refundId: { ...id, description: 'set when the callback confirms a refund of the payment' },
            transactionId: { type: 'string', minLength: 1, maxLength: 128 },
            status: { type: 'string', enum: ['SUCCEEDED', 'FAILED'] },
            // past 2^53 JSON's numbers round: no amount could be compared, or kept, as sent
            amountCents: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
            at: { type: 'string', format: 'date-time' },
          },
        },
        response: { 200: answerSchema, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const callback = request.body;
      if (callback.refundId !== undefined) return confirmRefund({ ...callback, refundId: callback.refundId }, request.log);
      const { order, payment } = await process.orderAndPayment(callback.orderId, callback.paymentId);
      if (!order) throw unknownToThisShop('order', callback, request.log);
      if (!payment) throw unknownToThisShop('payment', callback, request.log);
      if (payment.status === 'SUCCEEDED' && Number(payment.amount_cents) !== callback.amountCents) {
        // a payment already settled reported for another amount: nothing to record
        deps.metrics.paymentAmountMismatches.inc({ outcome: 'refused' });
        throw new HttpProblem(422, 'AMOUNT_MISMATCH', `Payment ${payment.payment_id} is for ${payment.amount_cents} cents, not ${callback.amountCents}`);
      }
      if (payment.status === 'SUCCEEDED' && callback.status === 'SUCCEEDED') {
        await followUpAgain(deps, order.order_id, ProcessRepository.paymentActionOf(payment.purpose));
        await refundIfNotApplied(deps, order.order_id, payment.payment_id);
        const balanced = await payBalanceOfNothing(deps, order, payment, request.log);
        return balanced ?? { changed: false, status: order.status };
      }
      // a decline takes nothing, whatever amount it names: refused, it left the payment pending for good (the payment
      // system's retries refused alike), and every pay of the buyer answered it
      return settleReportedPayment(deps, order, payment, { ...callback, at: new Date(callback.at) }, request.log);
    },
  );

  app.post<{ Body: WarehouseCallback }>(
    '/v1/callbacks/warehouse',
    {
      config: { callbackSystem: 'warehouse' },
      schema: {
        tags: ['callbacks'],
        security: [],
        summary: 'The warehouse reports progress of a (child) order (signed; idempotent)',
        description:
          "200 with changed=false for an event the order already passed; 409 ILLEGAL_TRANSITION for one it has not reached yet (the warehouse retries). A parcel event for an order still PAID records its hand-over first (the warehouse has it), then the event. RETURN_RECEIVED receives the return `returnId` names (404 NOT_FOUND when the order has no such return; 200 with changed=false when that return was received, refused, closed or paid back already); without `returnId` it is for the order's open return, and one whose `at` is older than that return's request is an earlier return's receipt repeated: 200 with changed=false; 400 VALIDATION_FAILED when the order also has a closed return (whose parcel this may be): send it again with `returnId`.",
        headers: { type: 'object', properties: { 'x-signature': { type: 'string' } } },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['orderId', 'event', 'at'],
          properties: {
            orderId: id,
            event: { type: 'string', enum: Object.keys(WAREHOUSE_EVENTS) },
            returnId: { ...id, description: 'RETURN_RECEIVED only: the return whose parcel the warehouse received (the returnId of POST /v1/orders/{orderId}/returns)' },
            items: {
              type: 'array',
              minItems: 1,
              maxItems: 100,
              description:
                'RETURN_RECEIVED only: the units the parcel held, per SKU, as the warehouse counted them (a SKU of the return not listed: none). Without it the parcel held every unit the return named. A parcel short of units makes the return one of the units that came back: only those are paid back (their share of the line, the shipping only with the parcel\'s last unit) and put back on sale, and the order goes back to the buyer (DELIVERED) with the rest. 400 VALIDATION_FAILED for a SKU the return does not name, more units than it names, or none at all (an empty parcel brought nothing back: the return is closed as one whose parcel never came, by staff or RETURN_PARCEL_WINDOW_MS after its approval).',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['skuId', 'qty'],
                properties: { skuId: id, qty: { type: 'integer', minimum: 0, maximum: 1_000_000 } },
              },
            },
            trackingNo: { type: 'string', maxLength: 128 },
            at: { type: 'string', format: 'date-time' },
          },
        },
        response: { 200: answerSchema, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const callback = request.body;
      if ((callback.returnId !== undefined || callback.items !== undefined) && callback.event !== 'RETURN_RECEIVED') throw validationFailed('returnId and items go with RETURN_RECEIVED only');
      const order = await deps.orders.findOrderRow(callback.orderId);
      if (!order) throw notFound('order');
      // the warehouse was sent a split order's children, never the order: an event naming it would be answered as passed, and lost
      const children = await process.children(order.order_id);
      if (children.length > 0) throw validationFailed(`order ${order.order_id} is split: send the event for the child order the warehouse was sent (${children.map((child) => child.order_id).join(', ')})`);
      const event = WAREHOUSE_EVENTS[callback.event];
      const returned = event.action === 'receive_return' ? await returnReceived(callback, order.order_id, request.log) : null;
      if (event.action === 'receive_return' && returned && ENDED_WITHOUT_PARCEL.has(returned.status)) await returnedAfterClose(order, returned, callback, request.log);
      // a receipt for no return, or for one received, refused, closed or paid back already, changes nothing (never another return)
      if (event.action === 'receive_return' && (returned === null || !['REQUESTED', 'APPROVED'].includes(returned.status))) {
        await followUpAgain(deps, order.order_id);
        return { changed: false, status: order.status };
      }
      if (order.status === 'PAID' && event.shipment !== null) await handedOverByEvent(order, callback.event, request.log);
      const parcelLeft = callback.event === 'SHIPPED' || callback.event === 'DELIVERED' ? callback.event : null;
      const held = parcelLeft === null ? [] : await refunds.heldUnpaid(order.order_id);
      const heldAtEvent = held.length > 0;
      // refunded whole, the order ships only once its refunds are withdrawn (a drop the warehouse had applied would not have
      // left). Refunds of some units are left to the update job, which asks the warehouse whether it took them out before
      // the parcel went: its answer to the change may have been lost (a timeout, a worker killed), or the job be waiting
      if (parcelLeft && heldAtEvent && REFUNDED_WHOLE.has((await deps.orders.findOrderRow(order.order_id))?.status ?? order.status)) await withdrawnByEvent(order, parcelLeft, held, request.log);
      // a parcel short of units is a return of those that came back
      const short = returned && callback.items ? unitsReceived(returned, callback.items) : undefined;
      if (short) request.log.warn({ orderId: order.order_id, returnId: returned!.refundId, named: returned!.items, received: short }, 'a return parcel held fewer units than its return named: only those are paid back and put back on sale');
      // a return of some of the units leaves the order with the buyer (DELIVERED) instead of closing it
      const step = returned && !(await refunds.returnIsWhole(short ? { orderId: returned.orderId, items: short } : returned)) ? { ...event, action: 'receive_partial_return' } : event;
      const at = new Date(callback.at);
      const machine = stateMachineFor(order.type as OrderType);
      const warehouseMayStepFrom = (status: string) => machine.rule(status, step.action)?.actors.includes('warehouse') ?? false;
      // set inside the transition's effects, which TypeScript's narrowing does not follow
      let received = null as RefundView | null;
      const applyEvent = () =>
        retryTransaction(
          () =>
            deps.orders.applyTransition({
              orderId: order.order_id,
              action: step.action,
              actor: 'warehouse',
              at: deps.clock(),
              detail: callback.trackingNo ? `${callback.event}, tracking ${callback.trackingNo}` : short ? `${callback.event}, ${unitsOf(short)} of ${unitsOf(returned!.items)} unit(s) back` : callback.event,
              effects: async (trx, current) => {
                // the approved return's units are back: their amounts become due and the ledger restocks them
                if (returned) {
                  received = await RefundRepository.receiveReturn(trx, current, returned.refundId, at, short);
                  // received meanwhile (by this event sent again), and the order is under review for a later return
                  if (!received) throw new AlreadyApplied();
                }
                if (step.shipment === null) return;
                const advanced = await ProcessRepository.advanceShipment(trx, order.order_id, step.shipment.from, step.shipment.to, { trackingNo: callback.trackingNo ?? null, at });
                if (!advanced) throw new AlreadyApplied();
              },
            }),
          {
            // refused, yet the order reached the event's step since our read (its hand-over to the warehouse committed): apply it now
            alsoAfter: async (error) => error instanceof StaleOrderVersion || (error instanceof IllegalTransition && warehouseMayStepFrom((await deps.orders.findOrderRow(order.order_id))!.status)),
          },
        );
      let transition: TransitionResult;
      try {
        transition = await applyEvent().catch(async (error: unknown) => {
          // refunded whole since its held refunds were read (the buyer's cancel committed before the parcel's step): they are
          // withdrawn as they would have been then, and the event applied again; paid or released meanwhile, the parcel left
          // with the money given back (shippedAfterRefund)
          if (!(error instanceof IllegalTransition) || parcelLeft === null || !REFUNDED_WHOLE.has((await deps.orders.findOrderRow(order.order_id))!.status)) throw error;
          const heldSince = await refunds.heldUnpaid(order.order_id);
          if (heldSince.length === 0) throw error;
          await withdrawnByEvent(order, parcelLeft, heldSince, request.log);
          return applyEvent();
        });
      } catch (error) {
        // read before the order: an approval committing between the two reads then shows in the
        // order's status (a step the warehouse may take), where read after it the approval was in
        // neither, and the parcel was answered as a repeat and dropped (seen in a test run)
        const awaitingReview = event.action === 'receive_return' && error instanceof IllegalTransition && (await refunds.returnAwaitingReview(order.order_id));
        const current = (await deps.orders.findOrderRow(order.order_id))!;
        // the return closed as never sent (by its merchant, or its timer) while its receipt was recorded: answered as
        // passed, its parcel is counted and logged for staff to settle (a receipt refused is, once the warehouse sends it again)
        const returnNow = returned && (await refunds.find(returned.refundId));
        const closedMeanwhile = returnNow && ENDED_WITHOUT_PARCEL.has(returnNow.status) ? returnNow : null;
        if (error instanceof AlreadyApplied) {
          if (closedMeanwhile) await returnedAfterClose(current, closedMeanwhile, callback, request.log);
          await followUpAgain(deps, order.order_id);
          return { changed: false, status: current.status };
        }
        // an imported order cancelled (its money the channel's to give back) whose parcel left is as one refunded whole
        const calledOff = REFUNDED_WHOLE.has(current.status) || (current.type === 'imported' && current.status === 'CANCELLED');
        if (error instanceof IllegalTransition && (callback.event === 'SHIPPED' || callback.event === 'DELIVERED') && calledOff) {
          return shippedAfterRefund(current, { ...callback, event: callback.event }, at, request.log);
        }
        // an illegal step the order has reached by now was refused through every attempt: the warehouse retries
        if (!(error instanceof IllegalTransition) || warehouseMayStepFrom(current.status)) throw error;
        // a parcel the buyer sent back before the merchant approved its return: not a repeat but
        // early (answered 200 it would be dropped, the order left in RETURNING for ever); the warehouse retries
        if (awaitingReview) throw error;
        const rule = machine.process.transitions.find((r) => r.action === event.action);
        const reached = machine.progress(current.status);
        // not reached yet (the event overtook our own step): the warehouse retries later
        if (rule && reached >= 0 && reached < machine.progress(rule.to)) throw error;
        // the order went past the delivery by the buyer's word (a receipt confirmed, by them or their timer): the
        // carrier's delivery is still the parcel's, kept on its shipment (delivered_at) where it was left SHIPPED
        const delivery = callback.event === 'DELIVERED' && event.shipment;
        const parcelDelivered =
          delivery && (await retryTransaction(() => deps.db.transaction().execute((trx) => ProcessRepository.advanceShipment(trx, order.order_id, delivery.from, delivery.to, { trackingNo: callback.trackingNo ?? null, at }))));
        // a SHIPPED overtaken by its DELIVERED (the warehouse's retries reorder them): its tracking number and ship time are still the parcel's
        const shippedLate = callback.event === 'SHIPPED' && (await retryTransaction(() => deps.db.transaction().execute((trx) => ProcessRepository.noteShippedLate(trx, order.order_id, { trackingNo: callback.trackingNo ?? null, at }))));
        if (closedMeanwhile) await returnedAfterClose(current, closedMeanwhile, callback, request.log);
        await followUpAgain(deps, order.order_id);
        return { changed: parcelDelivered === true || shippedLate, status: current.status };
      }
      const { order: moved, fired } = transition;
      deps.metrics.transitions.inc({ type: moved.type, from: fired.from, to: fired.to, action: fired.action });
      // the received units are on sale again at once; the refund job does it again (once per return id) should this process die here
      if (received) {
        deps.metrics.returns.inc({ stage: 'received' });
        await deps.inventory.restockStock(received.orderId, received.refundId, received.items.filter((item) => item.qty > 0));
      }
      await followUp(deps, moved, heldAtEvent ? [...fired.effects, 'updateFulfilment'] : fired.effects);
      return { changed: true, status: moved.status };
    },
  );
}

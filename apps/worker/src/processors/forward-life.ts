import { ExternalRefused, ExternalUnavailable, PaymentClient, WarehouseClient, breakerSettings, urlUnder, type FulfilmentChange } from '@orders/clients';
import type { Config } from '@orders/config';
import { IllegalTransition, StaleOrderVersion, needsSplit, planSplit, shipsParcels, stateMachineFor, type Actor, type Effect, type OrderType, type TimerEffect } from '@orders/domain';
import type { OrderMetrics } from '@orders/metrics';
import {
  DeadlineAhead,
  OrderRepository,
  PaymentAwaited,
  PricingRepository,
  ProcessRepository,
  REFUNDED_WHOLE,
  RefundRepository,
  UNSHIPPED_PARCEL,
  addressOf,
  afterStaleOrderVersion,
  couponUseOf,
  historyDetail,
  latePaymentRefundId,
  refundsOwedIn,
  retryTransaction,
  longestWaitOf,
  timerDeadlineOf,
  type OrderDb,
  type OrderItemRow,
  type OrderRow,
  type PaymentRow,
  type RefundOwed,
  type RefundView,
  type TransitionRequest,
} from '@orders/persistence';
import {
  JOB,
  enqueueEffects,
  enqueueLatePaymentRefund,
  enqueueLostHandOver,
  enqueueSendToWarehouse,
  type OrderEffectsJob,
  type OrderQueues,
  type OrderTimerJob,
  type RequestPaymentJob,
  type SendToWarehouseJob,
} from '@orders/queues';
import { closeOrderOnceRefunded, settleRefundPart, settleReportedPayment } from '@orders/settlement';
import { releaseRemembered, type CommitOutcome, type Inventory } from '@orders/stock';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { childOrderId } from './child-order-id.js';
import { waitForDeadline } from './expire-order.js';
import { callExternal } from './external-retry.js';

export interface ForwardLifeDeps {
  config: Config;
  db: OrderDb;
  queues: OrderQueues;
  inventory: Inventory;
  orders: OrderRepository;
  metrics: OrderMetrics;
  clock: () => Date;
  log: Logger;
}

/** How often a payment or balance deadline passed while a payment asked for in time is under way looks at that payment again. */
export const PAYMENT_LOOKED_AT_EVERY_MS = 60_000;

/**
 * What a timer's transition did: `changed`, or nothing yet with `dueInMs` until it looks again (its
 * deadline by MySQL's clock, or the timer's whole time while a step of its order may start it again).
 */
export interface TimerOutcome {
  changed: boolean;
  dueInMs?: number;
  /** a completion held while the buyer is still owed these refunds of the order (completeAfterWindow) */
  refundsOwed?: readonly RefundOwed[];
}

/** Thrown inside the split's transaction (rolling it back) when the order changed since its lines were read. */
class SplitPlanStale extends Error {
  constructor() {
    super('the order changed since its split was planned');
    this.name = 'SplitPlanStale';
  }
}

/** Thrown inside a completion's transaction (rolling it back) while the buyer is still owed a refund of the order. */
class RefundStillOwed extends Error {
  constructor(readonly refunds: readonly RefundOwed[]) {
    super(`the buyer is still owed ${refunds.length} refund(s) of the order`);
    this.name = 'RefundStillOwed';
  }
}

/** What the warehouse ships for an order: the units not refunded, to the order's address. */
function fulfilmentOf(order: OrderRow, items: readonly OrderItemRow[]): { items: Array<{ skuId: string; qty: number }>; address: Record<string, string> } {
  const address = addressOf(order);
  // only an order that ships nothing (virtual) is placed without one, and no warehouse hears of it
  if (!address) throw new Error(`order ${order.order_id} has no delivery address to ship to`);
  return {
    items: items.filter((line) => line.qty > line.refunded_qty).map((line) => ({ skuId: line.sku_id, qty: line.qty - line.refunded_qty })),
    address: { ...address },
  };
}

/**
 * The worker side of an order's forward life after checkout: collecting payments,
 * settling a paid order (stock, split, warehouse), refunds, and the timers. Every step
 * is idempotent (at-least-once jobs): it reads the order's status first and does only
 * what is still to do, and transitions check the version.
 */
export class ForwardLife {
  readonly paymentClient: PaymentClient;
  readonly warehouseClient: WarehouseClient;
  private readonly process: ProcessRepository;
  private readonly refunds: RefundRepository;
  private readonly pricing: PricingRepository;

  constructor(private readonly deps: ForwardLifeDeps) {
    this.paymentClient = new PaymentClient(deps.config.PAYMENT_URL, breakerSettings(deps.config, 'payment'), deps.metrics);
    this.warehouseClient = new WarehouseClient(deps.config.WAREHOUSE_URL, breakerSettings(deps.config, 'warehouse'), deps.metrics);
    this.process = new ProcessRepository(deps.db);
    this.refunds = new RefundRepository(deps.db);
    this.pricing = new PricingRepository(deps.db);
  }

  close(): void {
    this.paymentClient.shutdown();
    this.warehouseClient.breaker.shutdown();
  }

  /** payments queue */
  async paymentsJob(job: Job, token: string | undefined): Promise<void> {
    if (job.name === JOB.requestPayment) return this.requestPayment(job as Job<RequestPaymentJob>, token);
    if (job.name === JOB.refundPayments) return this.refundPayments(job as Job<OrderEffectsJob>, token);
    throw new Error(`payments queue: unknown job ${job.name}`);
  }

  /** fulfillment queue */
  async fulfillmentJob(job: Job, token: string | undefined): Promise<void> {
    if (job.name === JOB.settlePayment) return this.settlePayment((job as Job<OrderEffectsJob>).data);
    if (job.name === JOB.sendToWarehouse) return this.sendToWarehouse(job as Job<SendToWarehouseJob>, token);
    if (job.name === JOB.updateFulfilment) return this.updateFulfilment(job as Job<SendToWarehouseJob>, token);
    throw new Error(`fulfillment queue: unknown job ${job.name}`);
  }

  /**
   * timers queue, except the payment deadline (expire-order): a timer that ran before its
   * deadline by MySQL's clock changes nothing and waits for it (waitForDeadline)
   */
  async timerJob(job: Job<OrderTimerJob>, token: string | undefined): Promise<void> {
    const { dueInMs, refundsOwed } = await this.fireTimer(job.name, job.data.orderId);
    // said by the order's own timer, each time it looks: the backstop sweep finds such orders every interval, and says nothing
    if (refundsOwed) this.deps.log.info({ orderId: job.data.orderId, refunds: refundsOwed, lookedAtAgainInMs: dueInMs }, 'after-sales window closed, completion held: the buyer is still owed a refund');
    if (dueInMs !== undefined) await waitForDeadline(job, token, dueInMs, this.deps.log);
  }

  private async fireTimer(name: string, orderId: string): Promise<TimerOutcome> {
    if (name === JOB.autoConfirm) return this.autoConfirm(orderId);
    if (name === JOB.completeOrder) return this.completeAfterWindow(orderId);
    if (name === JOB.expireBalance) return this.forfeitDeposit(orderId);
    if (name === JOB.closeReturn) return this.closeUnreturned(orderId);
    if (name === JOB.reviewReturn) return this.approveUnreviewed(orderId);
    throw new Error(`timers queue: unknown job ${name}`);
  }

  /** A shipped order the buyer did not confirm in time (AUTO_CONFIRM_MS since it shipped, by MySQL's clock) is confirmed by the system. */
  async autoConfirm(orderId: string): Promise<TimerOutcome> {
    return this.fireWhenDue({ orderId, action: 'auto_confirm', actor: 'system', detail: 'buyer did not confirm in time', timer: 'scheduleAutoConfirm' });
  }

  /**
   * Completes an order once its after-sales window has closed by MySQL's clock: the buyer may
   * ask for a return until then. The window runs from the order's last delivery, and a refused
   * or partial return delivers it again: the timer set by an earlier delivery (the later one's
   * was not added while it was there, running or waiting: one job id per order) waits on until
   * the window that runs now has closed, and through the return itself (fireWhenDue).
   * An order still owing the buyer a refund (one under way, or one the payment system declined
   * and nobody has settled; a split order's child, also one of its order's from before the split)
   * is not done: it completes once paid back, looked at again every REFUND_CONFIRMATION_WAIT_MS,
   * as often as an unconfirmed refund is asked after.
   */
  async completeAfterWindow(orderId: string): Promise<TimerOutcome> {
    try {
      return await this.fireWhenDue({
        orderId,
        action: 'complete',
        actor: 'system',
        detail: 'after-sales window closed',
        timer: 'scheduleCompletion',
        effects: async (trx, current) => {
          // a child's move holds its order's lock too (applyTransition)
          const owed = await refundsOwedIn(trx, [current.order_id, ...(current.parent_order_id === null ? [] : [current.parent_order_id])]);
          if (owed.length > 0) throw new RefundStillOwed(owed);
        },
      });
    } catch (error) {
      if (!(error instanceof RefundStillOwed)) throw error;
      return { changed: false, dueInMs: this.deps.config.REFUND_CONFIRMATION_WAIT_MS, refundsOwed: error.refunds };
    }
  }

  /**
   * Closes an approved return whose parcel has not reached the warehouse RETURN_PARCEL_WINDOW_MS
   * after its approval, by MySQL's clock: the order is DELIVERED again, with what was left of its
   * after-sales window (afterSalesWindowEnd), and nothing is paid back; a parcel turning up after changes nothing (callbacks).
   */
  async closeUnreturned(orderId: string): Promise<TimerOutcome> {
    return this.decideReturn(orderId, { action: 'close_return', timer: 'scheduleReturnClose', from: 'APPROVED', to: 'CLOSED', why: 'closed: its parcel did not reach the warehouse in time', stage: 'closed' });
  }

  /**
   * Approves a return request the shop has not reviewed RETURN_REVIEW_WINDOW_MS after the buyer
   * asked, by MySQL's clock: the buyer sends the units back (RETURNING), as after a merchant's
   * approval, and the parcel's own window starts. A return refused or approved meanwhile is left as it is.
   */
  async approveUnreviewed(orderId: string): Promise<TimerOutcome> {
    return this.decideReturn(orderId, { action: 'approve_return', timer: 'scheduleReturnReview', from: 'REQUESTED', to: 'APPROVED', why: 'approved: the shop did not review it in time', stage: 'approved' });
  }

  /** A return timer's decision, as `system`, on the order's open return while it is still `from`. */
  private async decideReturn(
    orderId: string,
    step: { action: 'close_return' | 'approve_return'; timer: TimerEffect; from: 'APPROVED' | 'REQUESTED'; to: 'CLOSED' | 'APPROVED'; why: string; stage: 'closed' | 'approved' },
  ): Promise<TimerOutcome> {
    const open = await this.refunds.openReturn(orderId);
    const returnId = open?.status === step.from ? open.refundId : undefined;
    const outcome = await this.fireWhenDue({
      orderId,
      action: step.action,
      actor: 'system',
      detail: `return ${returnId ?? '(none)'} ${step.why}`,
      timer: step.timer,
      effects: async (trx, current) => {
        const moved = returnId && (await RefundRepository.moveReturn(trx, current.order_id, [step.from], step.to, this.deps.clock(), 'system', returnId));
        if (!moved) throw new IllegalTransition(current.status, step.action, 'system');
      },
    });
    if (outcome.changed) this.deps.metrics.returns.inc({ stage: step.stage });
    return outcome;
  }

  /**
   * A timer's transition (tryTransition), which fires only once the timer's deadline has passed by
   * MySQL's clock: before it, `dueInMs` says how long until it. An order past the timer's status
   * ends the timer, unless a step out of where it is starts the timer again (a return under way,
   * refused or received in part): that step's add finds this job, running or waiting, and adds
   * nothing (one job id per order), so the job ending would leave the order to the backstop sweep.
   * It looks again once the timer's whole time has run from when it looked, the soonest a deadline
   * that step sets can come.
   */
  private async fireWhenDue(request: Omit<TransitionRequest, 'at' | 'dueAfter'> & { actor: Actor; timer: TimerEffect }): Promise<TimerOutcome> {
    const { timer, ...transition } = request;
    const dueAfter = timerDeadlineOf(timer, this.deps.config);
    const lookedAt = Date.now();
    let refused: IllegalTransition | null;
    try {
      refused = await this.transition({ ...transition, dueAfter });
    } catch (error) {
      if (error instanceof DeadlineAhead || error instanceof PaymentAwaited) return { changed: false, dueInMs: error.dueInMs };
      throw error;
    }
    if (refused === null) return { changed: true };
    // a deadline an order column holds is set once, by the step that starts its timer
    if (typeof dueAfter === 'string') return { changed: false };
    const order = await this.deps.orders.findOrderRow(request.orderId);
    if (!order || !stateMachineFor(order.type as OrderType).startsTimerFrom(refused.status, timer)) return { changed: false };
    return { changed: false, dueInMs: Math.max(0, longestWaitOf(dueAfter) - (Date.now() - lookedAt)) };
  }

  /**
   * Asks the payment system to collect a payment, unless the order stopped owing what it
   * pays meanwhile: it closed, or another attempt paid it (a presale's deposit paid by an
   * attempt first reported failed: this one's deposit is no longer due, its balance is).
   * Such a payment never becomes due again (an order only moves on). Never sent, it fails
   * without a transaction, so the order's payments do not show it pending for ever. Sent
   * before (marked before each request goes: its answer may be lost though the payment system
   * took the money; a request that certainly did nothing there, the breaker open or an outage's
   * 503, leaves the mark as it was), it is not asked for again, which would charge the buyer
   * for a closed order should no request have reached the payment system: what the payment
   * system has of it decides (settleAsThePaymentSystemHasIt). A request the payment system
   * refuses outright (4xx) fails the payment too: asking again would be refused again, and the
   * buyer's next pay opens a new attempt (a payment left PENDING would hand them this one back
   * until the order expired). A payment still due that was sent before is asked for again
   * under its id: the payment system charges nothing twice and reports its outcome again by its
   * callback. One left unreported PAYMENT_CONFIRMATION_WAIT_MS since it was last sent (the
   * overdue sweep enqueues this job for it) is counted, and settled now by what the payment
   * system has of it, as its callback would (settleReportedPayment): its callbacks may be lost
   * for good (a wrong CALLBACK_BASE_URL or secret), and waiting for one, a payment taken in time
   * let its order expire and a declined one held off the buyer's next attempt.
   */
  private async requestPayment(job: Job<RequestPaymentJob>, token: string | undefined): Promise<void> {
    // the job names the payment's own order
    const { order, payment } = await this.process.orderAndPayment(job.data.orderId, job.data.paymentId);
    if (!payment || payment.status !== 'PENDING') return;
    const due = order && stateMachineFor(order.type as OrderType).paymentActionFor(order.status);
    const stillDue = due === ProcessRepository.paymentActionOf(payment.purpose);
    const sentBefore = payment.requested_at !== null;
    if (!stillDue && !sentBefore) {
      this.deps.log.info({ orderId: payment.order_id, paymentId: payment.payment_id, purpose: payment.purpose, status: order?.status }, 'payment no longer due: not requested, failed');
      await this.process.failPayment(payment.payment_id, null, this.deps.clock());
      return;
    }
    const unconfirmed = sentBefore && (await this.process.paymentsUnconfirmed(this.deps.config.PAYMENT_CONFIRMATION_WAIT_MS, { offset: 0, limit: 1 }, [payment.payment_id])).length > 0;
    if (!stillDue) return this.settleAsThePaymentSystemHasIt(job, token, payment, order?.status, unconfirmed);
    // before it goes: its outcome is due from now, and asked again, the payment waits its PAYMENT_CONFIRMATION_WAIT_MS anew
    await this.process.notePaymentRequested(payment.payment_id);
    let answer: { status: string };
    try {
      answer = await callExternal(job, token, () =>
        this.paymentClient
          .requestPayment({
            paymentId: payment.payment_id,
            orderId: payment.order_id,
            amountCents: Number(payment.amount_cents),
            method: payment.method,
            notifyUrl: urlUnder(this.deps.config.CALLBACK_BASE_URL, '/v1/callbacks/payment'),
          })
          .catch(async (error: unknown) => {
            // one that certainly did nothing there (the breaker open, an outage's 503) sent nothing: a payment only ever
            // asked for so is not asked about once its order closes, it fails unasked
            if (error instanceof ExternalUnavailable && !error.mayHaveActed) await this.process.notePaymentRequestVoid(payment.payment_id, payment.requested_at);
            throw error;
          }),
      );
    } catch (error) {
      if (!(error instanceof ExternalRefused)) throw error;
      this.deps.log.warn({ orderId: payment.order_id, paymentId: payment.payment_id, status: error.status, answer: error.body.slice(0, 200) }, 'payment request refused by the payment system: payment failed');
      await this.process.failPayment(payment.payment_id, null, this.deps.clock());
      return;
    }
    if (!unconfirmed || !order) return;
    this.countAskedAgain(payment, order.status, answer.status);
    const found = await callExternal(job, token, () => this.paymentClient.paymentStatus(payment.payment_id));
    if (found?.status === 'SUCCEEDED' || found?.status === 'FAILED') {
      await settleReportedPayment(this.deps, order, payment, { status: found.status, transactionId: found.transactionId, amountCents: found.amountCents, at: new Date(found.at) }, this.deps.log);
    }
  }

  /**
   * A payment its order no longer owes, sent to the payment system before: asked what it has of
   * it (which charges nothing), it settles as its callback would. Taken, it is recorded and given
   * back whole, as any payment that came after its order could take it (a late payment, for the
   * amount taken); declined, it fails. One the payment system never received fails too, but only
   * once it was last sent PAYMENT_CONFIRMATION_WAIT_MS ago: a request still on its way there, or
   * being worked on, may yet take the money, so until then it is looked at again that much later.
   * One it has not decided yet (PROCESSING, or a status we do not know) may still be taken or
   * declined: it stays PENDING and is looked at again as long, until PAYMENT_CONFIRMATION_GIVE_UP_MS
   * after it was first sent, when it is left to an operator (payments_unconfirmed_given_up). Its
   * callback is not lost, the payment system has none to send yet: it is not counted asked again
   * (PaymentConfirmationsLost), but undecided (payments_undecided_at_payment_system).
   */
  private async settleAsThePaymentSystemHasIt(job: Job<RequestPaymentJob>, token: string | undefined, payment: PaymentRow, orderStatus: string | undefined, waited: boolean): Promise<void> {
    const found = await callExternal(job, token, () => this.paymentClient.paymentStatus(payment.payment_id));
    if (found === null && !waited) {
      await job.moveToDelayed(Date.now() + this.deps.config.PAYMENT_CONFIRMATION_WAIT_MS, token);
      throw new DelayedError(`payment ${payment.payment_id} unknown to the payment system yet: looked at again in ${this.deps.config.PAYMENT_CONFIRMATION_WAIT_MS} ms`);
    }
    const where = { orderId: payment.order_id, paymentId: payment.payment_id, purpose: payment.purpose, orderStatus };
    if (found !== null && found.status !== 'SUCCEEDED' && found.status !== 'FAILED') return this.lookAgainWhileUndecided(job, token, payment, { ...where, atPaymentSystem: found.status });
    if (waited) this.countAskedAgain(payment, orderStatus, found?.status ?? 'UNKNOWN');
    const otherAmount = found !== null && found.amountCents !== Number(payment.amount_cents);
    if (found === null || found.status === 'FAILED') {
      this.deps.log.info({ ...where, atPaymentSystem: found?.status ?? 'never received' }, 'payment no longer due, not taken by the payment system: failed');
      const failed = await this.process.failPayment(payment.payment_id, found?.transactionId ?? null, this.deps.clock());
      // counted as the callback's decline naming another amount is, once
      if (failed && otherAmount) this.deps.metrics.paymentAmountMismatches.inc({ outcome: 'declined' });
      return;
    }
    const recorded = await retryTransaction(() =>
      this.deps.db.transaction().execute((trx) =>
        ProcessRepository.settlePayment(trx, payment.payment_id, { status: 'SUCCEEDED', transactionId: found.transactionId, at: new Date(found.at), amountCents: found.amountCents, refundDue: found.amountCents > 0 }),
      ),
    );
    if (recorded && otherAmount) {
      // as the callback's (givePaymentBackWhole): PaymentAmountMismatch takes it to the payment provider
      this.deps.metrics.paymentAmountMismatches.inc({ outcome: 'given_back' });
      this.deps.log.error({ ...where, askedCents: Number(payment.amount_cents), takenCents: found.amountCents }, 'the payment system took another amount than the payment asked for: given back whole');
    } else if (recorded) this.deps.log.warn({ ...where, askedCents: Number(payment.amount_cents), takenCents: found.amountCents }, 'payment taken after its order could take it, its answer and callback lost: giving it back');
    // recorded by its callback meanwhile, which may die before asking for the refund; or it paid the order, which closed since
    if (found.amountCents > 0 && !(await this.process.paymentApplied(payment.order_id, payment.payment_id))) {
      await enqueueLatePaymentRefund(this.deps.queues, { orderId: payment.order_id, paymentId: payment.payment_id });
    }
  }

  /**
   * A payment the payment system has not decided yet: looked at again PAYMENT_CONFIRMATION_WAIT_MS
   * later, its job delayed (the overdue sweep leaves it to it), until PAYMENT_CONFIRMATION_GIVE_UP_MS
   * after it was first sent: asked about for ever, one the payment system never decides would hold
   * its job, and hide from an operator, a buyer's money it may yet take.
   */
  private async lookAgainWhileUndecided(job: Job<RequestPaymentJob>, token: string | undefined, payment: PaymentRow, where: Record<string, unknown>): Promise<void> {
    await this.process.notePaymentUndecided(payment.payment_id);
    const giveUpMs = this.deps.config.PAYMENT_CONFIRMATION_GIVE_UP_MS;
    if ((await this.process.paymentsGivenUp(giveUpMs, [payment.payment_id])) > 0) {
      this.deps.log.error(where, 'payment undecided at the payment system PAYMENT_CONFIRMATION_GIVE_UP_MS after it was first sent: no longer asked about, left PENDING for an operator');
      return;
    }
    const waitMs = this.deps.config.PAYMENT_CONFIRMATION_WAIT_MS;
    this.deps.log.info(where, 'payment no longer due, undecided at the payment system: left PENDING, looked at again later');
    await job.moveToDelayed(Date.now() + waitMs, token);
    throw new DelayedError(`payment ${payment.payment_id} undecided at the payment system: looked at again in ${waitMs} ms`);
  }

  /** A payment sent and left unreported PAYMENT_CONFIRMATION_WAIT_MS, asked about again, not found undecided there: its callback was lost. */
  private countAskedAgain(payment: PaymentRow, orderStatus: string | undefined, answer: string): void {
    this.deps.metrics.paymentConfirmationsAskedAgain.inc();
    this.deps.log.warn(
      { orderId: payment.order_id, paymentId: payment.payment_id, purpose: payment.purpose, amountCents: Number(payment.amount_cents), orderStatus, answer },
      'asked the payment system again about a payment sent to it and never reported on',
    );
  }

  /**
   * After payment: commit the stock (re-verifying payment-time SKUs), split the order
   * per (channel, merchant, warehouse), and hand each part to its warehouse. If a
   * payment-time SKU sold out meanwhile, the order is refunded and closed instead; run
   * again after that refund committed (the worker died, or lost MySQL's answer, before
   * finishing it), the job finishes it.
   */
  private async settlePayment(data: OrderEffectsJob): Promise<void> {
    const effects = data.effects as Effect[];
    let read = await this.process.orderWithLines(data.orderId);
    if (!read) throw new Error(`settle-payment: no order ${data.orderId}`);
    const { order, items } = read;
    if (effects.includes('commitStock') && order.status === 'PAID') {
      const committed = await this.commitStock(order, items);
      if (!committed) return;
    } else if (effects.includes('commitStock')) {
      // refunded as sold out, and this job died (or Redis failed it) before the release: finished now, the refund
      // under way still or (its job runs at once, this one after a backoff) closed since, which nothing else releases
      if ((await this.process.lastStep(order.order_id, { action: 'refund' }))?.actor === 'system') {
        if (order.status === 'REFUNDING') return this.refundSoldOut(order, 'sold out before the payment');
        await this.deps.inventory.releaseStock(order.order_id, order.user_id, 'refunded', this.couponUseToReleaseAgain(order));
        return;
      }
    }
    if (effects.includes('deliverDigital')) {
      await this.tryTransition({ orderId: order.order_id, action: 'deliver', actor: 'system', detail: 'delivered with the payment' });
      read = (await this.process.orderWithLines(data.orderId))!;
    }
    if (effects.includes('split') || effects.includes('requestFulfilment')) {
      // a step committed since the read (a refund) is caught by the split's version check, or by the hand-over's own read
      if (read.order.status !== 'PAID') return;
      const children = (await this.split(read.order, read.items)) ? await this.process.children(order.order_id) : [];
      const units = children.length > 0 ? children : [read.order];
      await Promise.all(units.filter((unit) => unit.status === 'PAID').map((unit) => enqueueSendToWarehouse(this.deps.queues, unit.order_id)));
    }
  }

  /** Returns false when the stock was gone and the order is being refunded instead. */
  private async commitStock(order: OrderRow, items: readonly OrderItemRow[]): Promise<boolean> {
    let outcome = await this.deps.inventory.commitStock(order.order_id);
    if (outcome.status === 'missing') outcome = await this.commitLostReservation(order);
    if (outcome.status === 'gone') {
      this.deps.log.warn({ orderId: order.order_id, skuId: outcome.skuId }, 'payment-time stock gone at payment: refunding');
      await this.refundSoldOut(order, `SKU ${outcome.skuId} sold out before the payment`);
      return false;
    }
    if (outcome.status === 'committed' || outcome.status === 'already') {
      await this.process.recordStockCommitted(order.order_id, items);
    } else {
      this.deps.log.error({ orderId: order.order_id, outcome: outcome.status }, 'paid order has no live reservation in Redis; stock not committed');
    }
    return true;
  }

  /**
   * A paid order whose reservation Redis lost (a restart without its AOF, a failover to a
   * replica that was behind) gets it back from MySQL and committed: its payment-time units
   * come off the counters the stock repair rebuilt from the ledger, or are found sold and
   * the order refunded, and the ledger records the sale. Left as it was, the order shipped
   * while the ledger, and every repair after, still had those units on sale. A reservation
   * the ledger has closed is not put back: committed, its record expired since (a settle
   * job replayed from the dead letters).
   */
  private async commitLostReservation(order: OrderRow): Promise<CommitOutcome> {
    const closed = await this.process.reservationClosedAs(order.order_id);
    if (closed === 'commit') return { status: 'already' };
    if (closed === 'release') return { status: 'released' };
    const restored = await this.deps.inventory.restoreReservation(await this.deps.orders.reservationOf(order));
    if (restored) this.deps.log.warn({ orderId: order.order_id }, 'paid order had lost its reservation in Redis: put back from MySQL to commit its stock');
    return this.deps.inventory.commitStock(order.order_id);
  }

  /**
   * Refunds and closes a paid order whose payment-time stock sold out before the payment:
   * its placement units and its coupon go back. Run again (the job retried after the refund
   * committed, the order still REFUNDING), it enqueues the refund again (tryTransition) and finishes the release.
   */
  private async refundSoldOut(order: OrderRow, detail: string): Promise<void> {
    await this.tryTransition(
      {
        orderId: order.order_id,
        action: 'refund',
        actor: 'system',
        detail,
        // the placement units and the coupon go back, as the Redis release below gives them back
        effects: async (trx, current) => OrderRepository.releaseReservation(trx, current.order_id, 'refund', this.deps.clock()),
      },
      'sold out at payment',
    );
    await this.deps.inventory.releaseStock(order.order_id, order.user_id, 'refunded', couponUseOf(order));
  }

  /**
   * Splits a paid order into its children, which copy its lines as read (units refunded
   * already included). A refund of the order committed after that read moves its version: the
   * plan is then read again, so no child starts with those units unrefunded. Whether the order's
   * lines go to more than one place, so that it has children to hand over (an unsplit one has none).
   */
  private async split(paid: OrderRow, items: readonly OrderItemRow[]): Promise<boolean> {
    let read = { order: paid, items };
    for (let round = 1; ; round++) {
      try {
        return await this.splitAsRead(read.order, read.items);
      } catch (error) {
        if (!(error instanceof SplitPlanStale) || round >= 5) throw error;
        const now = await this.process.orderWithLines(paid.order_id);
        if (now?.order.status !== 'PAID') return true;
        read = now;
      }
    }
  }

  private async splitAsRead(order: OrderRow, items: readonly OrderItemRow[]): Promise<boolean> {
    const lines = items.map((row) => ({
      row,
      lineNo: row.line_no,
      channel: row.channel,
      merchantId: row.merchant_id,
      warehouseId: row.warehouse_id,
      qty: row.qty,
      unitPriceCents: Number(row.unit_price_cents),
      discountCents: Number(row.discount_cents),
      shippingCents: Number(row.shipping_cents),
      payableCents: Number(row.payable_cents),
    }));
    if (!needsSplit(lines)) return false;
    const plans = planSplit(
      { subtotalCents: Number(order.subtotal_cents), discountCents: Number(order.discount_cents), shippingCents: Number(order.shipping_cents), payableCents: Number(order.payable_cents) },
      lines,
    );
    const children = plans.map((plan) => ({ orderId: childOrderId(order.order_id, `${plan.key.channel}/${plan.key.merchantId}/${plan.key.warehouseId}`), plan }));
    // the children named while their ids fit the step's detail; past that (18 and more) their count alone: a list cut
    // short would name some merchants' children and not others', and a merchant's view hides a step naming others' alone
    const named = `split into ${children.length} child orders: ${children.map((c) => c.orderId).join(', ')}`;
    await this.tryTransition({
      orderId: order.order_id,
      action: 'split',
      actor: 'system',
      detail: historyDetail(named) === named ? named : `split into ${children.length} child orders`,
      effects: async (trx, current, fired) => {
        if (current.version !== order.version) throw new SplitPlanStale();
        await ProcessRepository.insertChildren(trx, { ...current, status: fired.to }, children, this.deps.clock());
      },
    });
    return true;
  }

  /**
   * Hands one order (or child) to its warehouse, the units not refunded and where;
   * IN_FULFILLMENT once the warehouse accepted it. The warehouse is asked before the
   * transition commits, so a refund or a new address can commit while it is being asked:
   * the warehouse is then told what changed (or, for an order refunded whole, to drop it),
   * never left shipping goods the buyer got their money back for. The warehouse keeps the
   * first request it got for an order: after an earlier attempt (its answer lost to a
   * timeout, or the worker died after the hand-over committed) it is always told what the
   * order holds now, as that attempt may have sent what it held before a change; so it is when
   * it answers that it holds an older version (an attempt whose job was lost, the sweep's).
   */
  private async sendToWarehouse(job: Job<SendToWarehouseJob>, token: string | undefined): Promise<void> {
    const askedBefore = job.attemptsStarted > 1;
    const found = await this.process.orderAndWhetherSplit(job.data.orderId);
    if (!found) return;
    const read = found.order;
    if (read.status === 'IN_FULFILLMENT' && askedBefore) return this.enqueueFulfilmentUpdate(read);
    if (read.status !== 'PAID') return this.withdrawIfRefunded(job, token, read);
    // a hand-over the sweep enqueued for an order read before its split would ship every line again from one warehouse
    if (found.splitParent) return;
    // from here the warehouse may hold the parcel before its answer is recorded: a refund from now on waits for it (applyRefund)
    const askedAt = await this.process.noteHandOverAsked(read.order_id, this.deps.clock());
    // read once asked: a refund committed before the ask is not in what it sends, one after it waits for the warehouse;
    // the version sent with them is the one they are of: a refund read as opened later is not in them
    const asked = await this.process.orderAndLinesOfOneVersion(read.order_id);
    if (!asked) return;
    const { order, items } = asked;
    if (order.status !== 'PAID') return this.withdrawIfRefunded(job, token, order);
    const warehouseId = items[0]?.warehouse_id;
    if (!warehouseId) throw new Error(`order ${order.order_id} has no lines to fulfil`);
    const sent = fulfilmentOf(order, items);
    const accepted = await callExternal(job, token, async () => {
      try {
        return await this.warehouseClient.requestFulfilment({
          orderId: order.order_id,
          warehouseId,
          ...sent,
          version: order.version,
          notifyUrl: urlUnder(this.deps.config.CALLBACK_BASE_URL, '/v1/callbacks/warehouse'),
        });
      } catch (error) {
        // this ask, the first left standing, certainly did not reach the warehouse (refused, or never sent): refunds need not wait for it
        const reached = error instanceof ExternalUnavailable ? error.mayHaveActed : !(error instanceof ExternalRefused);
        if (askedAt && !reached) await this.process.forgetHandOverAsked(order.order_id, askedAt);
        throw error;
      }
    });
    const handedOver = await this.tryTransition({
      orderId: order.order_id,
      action: 'fulfil',
      actor: 'system',
      detail: `accepted by warehouse ${warehouseId}`,
      effects: async (trx, current) => ProcessRepository.openShipment(trx, current, warehouseId, this.deps.clock()),
    });
    const after = await this.process.orderWithLines(order.order_id);
    if (!after) return;
    const now = after.order;
    // the warehouse's first event may have recorded the hand-over meanwhile (callbacks.ts): as handed over here
    const handedOverByEvent = !handedOver && !REFUNDED_WHOLE.has(now.status) && (await this.process.shipment(now.order_id)) !== null;
    if (!handedOver && !handedOverByEvent) return this.withdrawIfRefunded(job, token, now);
    // the warehouse holds an older hand-over of the order (an attempt whose job was lost, before a change while it was paid): it is told what this one sent
    const heldOlder = typeof accepted.version === 'number' && accepted.version < order.version;
    if (askedBefore || heldOlder || JSON.stringify(fulfilmentOf(now, after.items)) !== JSON.stringify(sent)) await this.enqueueFulfilmentUpdate(now);
  }

  /**
   * A paid order still waiting for its warehouse, or a virtual one for its delivery (the overdue
   * sweep's): its settlement or its hand-over enqueued again when no job holds it
   * (enqueueLostHandOver). A split order's child is handed over alone; an unsplit order settles
   * the step that paid it again; a split order, PAID while its children are, has nothing of its own to hand over.
   */
  async handOverAgainIfLost(orderId: string): Promise<boolean> {
    const order = await this.deps.orders.findOrderRow(orderId);
    if (order?.status !== 'PAID') return false;
    // split since the sweep read it: its children are the ones handed over, by their own jobs
    if (await this.process.isSplitParent(order)) return false;
    const paid = order.parent_order_id === null ? await this.process.lastStep(orderId, { action: 'pay' }) : null;
    // an order that ships nothing has no hand-over to fall back on
    if (!paid && !shipsParcels(order.type as OrderType)) return false;
    return enqueueLostHandOver(this.deps.queues, orderId, paid?.effects ?? []);
  }

  private async enqueueFulfilmentUpdate(order: OrderRow): Promise<void> {
    await this.followUp(order, ['updateFulfilment']);
  }

  /**
   * An order refunded whole before it reached IN_FULFILLMENT has no shipment, so no
   * update tells its warehouse: if a hand-over reached the warehouse (its answer lost to a
   * timeout, or the refund committed while it was being asked), the warehouse is told to
   * drop it. A warehouse that never had it answers 404: nothing to drop.
   */
  private async withdrawIfRefunded(job: Job<SendToWarehouseJob>, token: string | undefined, order: OrderRow): Promise<void> {
    if (!REFUNDED_WHOLE.has(order.status) || (await this.process.shipment(order.order_id))) return;
    try {
      if (await this.changeReachedWarehouse(job, token, order, { ...fulfilmentOf(order, []), version: order.version })) {
        this.deps.log.warn({ orderId: order.order_id, status: order.status }, 'order refunded during its hand-over: withdrawn from the warehouse');
      }
    } catch (error) {
      if (!(error instanceof ExternalRefused && error.status === 404)) throw error;
      await this.dropFoundNothing(job, token, order);
    }
  }

  /**
   * The warehouse answered a drop of the order 404: it has no such order. A hand-over of it asked and
   * unanswered (lost to a timeout) may still land there after the drop, and its parcel ship with units
   * refunded: while one was asked, the drop is sent again every EXTERNAL_RETRY_DELAY_MS until the
   * warehouse has answered 404 for ten times WAREHOUSE_BREAKER_TIMEOUT_MS (the hand-over's own
   * timeout), long past any such request; a hand-over landed meanwhile is dropped by the next.
   */
  private async dropFoundNothing(job: Job<SendToWarehouseJob>, token: string | undefined, order: OrderRow): Promise<void> {
    if (order.handover_asked_at === null) return;
    const since = job.data.dropNotFoundSince ?? Date.now();
    if (Date.now() - since >= 10 * this.deps.config.WAREHOUSE_BREAKER_TIMEOUT_MS) return;
    if (job.data.dropNotFoundSince === undefined) await job.updateData({ ...job.data, dropNotFoundSince: since });
    await job.moveToDelayed(Date.now() + this.deps.config.EXTERNAL_RETRY_DELAY_MS, token);
    throw new DelayedError(`order ${order.order_id} unknown to its warehouse while a hand-over of it may still land there: its drop is sent again`);
  }

  /**
   * Sends the warehouse a change of the order's parcel; false when the warehouse refused it as
   * too late (409: the parcel left), logged, and counted once per parcel (FulfilmentChangesTooLate;
   * the job may send the same change again, and later changes are refused alike). The parcel is
   * then left as the warehouse has it: its SHIPPED callback moves it on, where marking it
   * CANCELLED would have hidden it.
   */
  private async changeReachedWarehouse(job: Job<SendToWarehouseJob>, token: string | undefined, order: OrderRow, change: FulfilmentChange): Promise<boolean> {
    try {
      await callExternal(job, token, () => this.warehouseClient.updateFulfilment(order.order_id, change));
      return true;
    } catch (error) {
      if (!(error instanceof ExternalRefused && error.status === 409)) throw error;
      const first = await this.process.noteChangeRefused(order.order_id, this.deps.clock());
      if (first) this.deps.metrics.fulfilmentChangesTooLate.inc();
      this.deps.log[first ? 'error' : 'warn'](
        { orderId: order.order_id, status: order.status, version: order.version, items: change.items, answer: error.body.slice(0, 200) },
        'the warehouse refused a change of a parcel that had left: it goes to the address and with the units it was handed over with (refunds of units in it are withdrawn, nothing paid back, the units sold); stop it with the carrier or settle with the buyer',
      );
      return false;
    }
  }

  /**
   * Tells the warehouse that has the order (a split parent has none: its children do)
   * what it ships now, the units not refunded, and where; once the parcel has left, it
   * is too late and nothing is sent. A parcel every unit of which was refunded, or of an
   * order closed without shipping (an imported order cancelled), is dropped by the
   * warehouse: its shipment is CANCELLED then, so it no longer reads as going out.
   * The units refunded while the warehouse held them go back on sale once it has taken them
   * out, and only then is their money paid back (the refund job, enqueued here), and a
   * cancellation's coupon use given back. Refused as too late, they left with the parcel:
   * their refunds are withdrawn, nothing paid back, and the order ships (withdrawHeld).
   */
  private async updateFulfilment(job: Job<SendToWarehouseJob>, token: string | undefined): Promise<void> {
    // read before the order's lines: a refund committed after them is not in this change, and waits for its own
    const held = await this.refunds.restockHeldFor(job.data.orderId);
    const read = await this.process.orderAndLinesOfOneVersion(job.data.orderId);
    if (!read) return;
    const { order } = read;
    const shipment = await this.process.shipment(order.order_id);
    if (!shipment) return this.heldBeforeHandOver(job, token, order, held);
    // dropped by an earlier change (which took out every unit, those of a refund committed after its job read the
    // refunds held too), or left: the units still held were taken out with it, or left with it
    if (shipment.status === 'CANCELLED') return this.takenOut(order, held);
    if (!UNSHIPPED_PARCEL.has(shipment.status)) {
      await this.addressChangeMissed(job, token, read);
      return this.heldWhenParcelLeft(job, token, read, held);
    }
    const closed = stateMachineFor(order.type as OrderType).isFinal(order.status);
    // the order's version with it: a change sent before, whose answer timed out and which reaches the warehouse late, is older and ignored there
    const change = { ...fulfilmentOf(order, closed ? [] : read.items), version: order.version };
    try {
      // refused as too late: an earlier change, its answer lost, may have taken some held refunds' units out first
      if (!(await this.changeReachedWarehouse(job, token, order, change))) return this.heldWhenParcelLeft(job, token, read, held, change.version);
    } catch (error) {
      // a parcel to drop that the warehouse never had (an imported order's channel handed it over under
      // its own reference, or withdrew it) answers 404: nothing to drop, and no retry would change that
      if (!(change.items.length === 0 && error instanceof ExternalRefused && error.status === 404)) throw error;
      this.deps.log.warn({ orderId: order.order_id, status: order.status }, 'the warehouse does not know the parcel it was told to drop: marked cancelled here');
    }
    await this.takenOut(order, held);
    if (change.items.length > 0) return;
    const at = this.deps.clock();
    await this.deps.db.transaction().execute((trx) => ProcessRepository.cancelUnshippedParcel(trx, order.order_id, at));
  }

  /**
   * The parcel left before the warehouse applied the order's last address change (its update waiting
   * out a retry delay, the warehouse away): the parcel goes to the address it had, and staff hear of
   * it as of a change the warehouse refused. Asked at that change's version, a warehouse that applied
   * it (or a later one) answers 200, even once the parcel left, and 409 when it had not.
   */
  private async addressChangeMissed(job: Job<SendToWarehouseJob>, token: string | undefined, { order, items }: { order: OrderRow; items: readonly OrderItemRow[] }): Promise<void> {
    const changed = await this.process.lastStepVersion(order.order_id, 'change_address');
    if (changed === null) return;
    try {
      await this.changeReachedWarehouse(job, token, order, { ...fulfilmentOf(order, items), version: changed });
    } catch (error) {
      // a warehouse that cannot say (one that does not know the parcel: an imported order's channel ships it) changes nothing here
      if (!(error instanceof ExternalRefused)) throw error;
    }
  }

  /**
   * The parcel left while refunds of units in it waited for the warehouse (reported shipped, or
   * the change refused as too late at `refusedAt`): it may have taken them out first, its answer
   * to an earlier change lost (a timeout, this worker killed before it recorded it) or the
   * change's job waiting out a retry delay. The warehouse is asked again, at the versions the
   * changes were read at: the last change's (the order's last step into IN_FULFILLMENT, unless
   * refused just now), then the step that opened each held refund, newest first. A warehouse answers 200 to a change at or
   * below the version it applied, even once the parcel left, and 409 to a newer one: the first
   * version it says it applied took out the units of the refunds opened at or before it
   * (restocked, paid back); the refunds opened after it left with the parcel (withdrawn). Not a
   * change of the parcel, so none is counted as refused (FulfilmentChangesTooLate).
   */
  private async heldWhenParcelLeft(
    job: Job<SendToWarehouseJob>,
    token: string | undefined,
    { order, items }: { order: OrderRow; items: readonly OrderItemRow[] },
    held: readonly RefundView[],
    refusedAt?: number,
  ): Promise<void> {
    const leftWith = 'the parcel left with the units refunded before the warehouse took them out';
    // the last change: the one refused just now, or, the parcel reported gone, one read at the order's last step while at the warehouse
    const last = held.length === 0 ? null : (refusedAt ?? (await this.process.lastEntryInto(order.order_id, 'IN_FULFILLMENT')));
    if (last === null) return this.withdrawHeldRefunds(order.order_id, leftWith);
    const openedAt = await this.refunds.openedAtVersions(order.order_id, held.map((refund) => refund.refundId));
    // a refund whose opening step is not found counts as opened at the last change
    const opened = (refund: RefundView) => openedAt.get(refund.refundId) ?? last;
    let applied: number | null = null;
    for (const version of [...new Set([last, ...held.map(opened)])].sort((a, b) => b - a)) {
      if (version === refusedAt) continue;
      if (await this.warehouseApplied(job, token, order.order_id, { ...fulfilmentOf(order, items), version })) {
        applied = version;
        break;
      }
    }
    const taken = applied === null ? [] : held.filter((refund) => opened(refund) <= applied);
    const left = held.filter((refund) => !taken.includes(refund));
    if (left.length > 0) await this.withdrawHeldRefunds(order.order_id, leftWith, new Set(left.map((refund) => refund.refundId)));
    if (taken.length === 0) return;
    this.deps.log.warn({ orderId: order.order_id, version: applied, refunds: taken.map((refund) => refund.refundId) }, 'the warehouse took out the units refunded before the parcel left, its answer recorded late: they are back on sale and paid back');
    await this.takenOut(order, taken);
  }

  /** Whether the warehouse applied this change of the parcel (or a later one); refused (409 too late, or a warehouse that cannot say, one that does not know the parcel): false. */
  private async warehouseApplied(job: Job<SendToWarehouseJob>, token: string | undefined, orderId: string, change: FulfilmentChange): Promise<boolean> {
    return callExternal(job, token, () => this.warehouseClient.updateFulfilment(orderId, change)).then(
      () => true,
      (error: unknown) => {
        if (error instanceof ExternalRefused) return false;
        throw error;
      },
    );
  }

  /**
   * Refunds held for a warehouse asked to take the order before its hand-over was recorded
   * (applyRefund): while the order is PAID the hand-over is under way, and this job looks again
   * later (once recorded, the change goes to the parcel it opened). Refunded whole, the warehouse
   * is told to drop the order: it took the units out, or never had them (404), and the refunds
   * are paid; it refused as too late (the parcel left with them): they are withdrawn, and the
   * order ships after all.
   */
  private async heldBeforeHandOver(job: Job<SendToWarehouseJob>, token: string | undefined, order: OrderRow, held: readonly RefundView[]): Promise<void> {
    if (held.length === 0) return;
    if (order.status === 'PAID') {
      await job.moveToDelayed(Date.now() + this.deps.config.EXTERNAL_RETRY_DELAY_MS, token);
      throw new DelayedError('refunds wait for the hand-over under way to be recorded');
    }
    if (!REFUNDED_WHOLE.has(order.status)) return;
    try {
      if (!(await this.changeReachedWarehouse(job, token, order, { ...fulfilmentOf(order, []), version: order.version }))) {
        await this.withdrawHeldRefunds(order.order_id, 'the warehouse refused to drop the order as too late: the parcel left with the units refunded');
        return;
      }
    } catch (error) {
      if (!(error instanceof ExternalRefused && error.status === 404)) throw error;
      await this.dropFoundNothing(job, token, order);
    }
    await this.takenOut(order, held);
  }

  /**
   * The warehouse took out the units of the order's `held` refunds: they go back on sale, a
   * cancellation that closed the order's last part gives its coupon use back now
   * (restoreCouponOnceNoneLeft kept it while the parcel might leave), and the refund job pays
   * them back (and makes Redis follow the coupon).
   */
  private async takenOut(order: OrderRow, held: readonly RefundView[]): Promise<void> {
    if (held.length === 0) return;
    for (const refund of held) {
      // withdrawn meanwhile (its parcel reported shipped: the warehouse shipped it though it took the change): its units left
      if ((await this.refunds.find(refund.refundId))?.status === 'WITHDRAWN') continue;
      // the ledger first, which says whether the restock gives a flash-sale unit back to its buyer's limit; Redis follows
      // (a restock the ledger has and Redis lacks, this worker dying between the two, is finished by the stock check)
      await this.refunds.releaseHeldRestock(refund);
      await this.deps.inventory.restockStock(refund.orderId, refund.refundId, refund.items.filter((item) => item.qty > 0));
    }
    if (order.coupon_code !== null) await this.restoreCouponOnceNoneLeft(order.parent_order_id ?? order.order_id);
    await this.followUp(order, ['refundPayments']);
  }

  /** RefundRepository.restoreCouponOnceNoneLeft in a transaction of its own, under the order's lock as a cancellation's. */
  private restoreCouponOnceNoneLeft(rootOrderId: string): Promise<void> {
    return retryTransaction(
      () =>
        this.deps.db.transaction().execute(async (trx) => {
          await trx.selectFrom('orders').select('order_id').where('order_id', '=', rootOrderId).forUpdate().execute();
          await RefundRepository.restoreCouponOnceNoneLeft(trx, rootOrderId, this.deps.clock());
        }),
      { alsoAfter: afterStaleOrderVersion },
    );
  }

  /**
   * The parcel left with the units of the order's held refunds (`only`: of those alone;
   * RefundRepository.withdrawHeld): they are withdrawn, unpaid, and an order refunded whole ships after all. Counted and logged
   * for staff: the buyer asked for their money back and gets the goods, and may return them once delivered.
   */
  private async withdrawHeldRefunds(orderId: string, why: string, only?: ReadonlySet<string>): Promise<void> {
    const { withdrawn, transition } = await retryTransaction(() => this.refunds.withdrawHeld(this.deps.orders, orderId, this.deps.clock(), why, only), { alsoAfter: afterStaleOrderVersion });
    if (transition) this.deps.metrics.transitions.inc({ type: transition.order.type, from: transition.fired.from, to: transition.fired.to, action: transition.fired.action });
    if (withdrawn.length === 0) return;
    this.deps.metrics.refunds.inc({ kind: 'refund', outcome: 'withdrawn' }, withdrawn.length);
    this.deps.log.warn(
      { orderId, refunds: withdrawn.map((refund) => ({ refundId: refund.refundId, amountCents: refund.amountCents, items: refund.items.map((item) => ({ skuId: item.skuId, qty: item.qty })) })) },
      'refunds withdrawn, nothing paid back: the parcel left with their units before the warehouse took them out; the buyer may return them once delivered',
    );
  }

  /**
   * Carries out an order's refunds. A payment that came after its order could take it
   * (the job names it) is given back whole, and nothing else. An order with refund orders
   * (cancelled after payment, lines refunded or returned) has each pending one paid back
   * through the payment system's breaker: while it is unavailable the job waits, and the
   * refund completes when it recovers. An order without (payment-time stock gone) has
   * every successful payment given back whole. The payment system is idempotent by refund
   * id; an order in REFUNDING closes once nothing is pending.
   */
  private async refundPayments(job: Job<OrderEffectsJob>, token: string | undefined): Promise<void> {
    const { orderId, paymentId: latePayment } = job.data;
    if (latePayment === undefined && (await this.refunds.hasRefundOrders(orderId))) return this.payRefundOrders(job, token);
    // a split order's money goes back through its children's refund orders: giving its payments back whole would pay the shipped children too
    if (latePayment === undefined && (await this.process.children(orderId)).length > 0) {
      throw new UnrecoverableError(`order ${orderId} is split: its payments are not given back whole (a child's refund order gives back its share)`);
    }
    // a payment of nothing (no-charge) has nothing to give back, and a payment system refuses a refund of nothing
    const paid = (await this.process.payments(orderId)).filter((p) => p.status === 'SUCCEEDED' && Number(p.amount_cents) > 0 && (latePayment === undefined || p.payment_id === latePayment));
    // a late payment (taken after its order could take it: named by the job, or due back still) never paid the order's lines
    const refunds = paid.map((payment) => ({ refundId: latePaymentRefundId(payment.payment_id), paymentId: payment.payment_id, amountCents: Number(payment.amount_cents), late: latePayment !== undefined || payment.refund_due_at !== null }));
    for (const refund of refunds) {
      const answer = await callExternal(job, token, () => this.paymentClient.refund(refund));
      // asked without a notifyUrl, its answer is the outcome: only money given back is recorded as given back
      if (answer.status !== 'SUCCEEDED') throw new Error(`the payment system answered ${answer.status} to refund ${refund.refundId} of ${refund.amountCents} cents: nothing is recorded; the refund is asked for again`);
    }
    const at = this.deps.clock();
    const reason = job.data.reason ?? 'refund';
    // what the committing transaction recorded (a repeat records nothing), for the metrics
    let recorded = { refunds: 0, cents: 0 };
    const record: TransitionRequest['effects'] = async (trx, current) => {
      let refundedCents = 0;
      let paidTheLines = 0;
      let count = 0;
      for (const refund of refunds) {
        await ProcessRepository.clearRefundDue(trx, refund.paymentId);
        const inserted = await trx
          .insertInto('refunds')
          .values({ refund_id: refund.refundId, order_id: orderId, kind: 'refund', status: 'SUCCEEDED', version: 1, reason, amount_cents: refund.amountCents, items: '[]', created_at: at, updated_at: at })
          .ignore()
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) {
          // drawn in full: a later refund of the order draws from its other payments (drawParts)
          await trx
            .insertInto('refund_parts')
            .values({ part_id: refund.refundId, refund_id: refund.refundId, payment_id: refund.paymentId, amount_cents: refund.amountCents, status: 'SUCCEEDED', created_at: at, updated_at: at })
            .execute();
          refundedCents += refund.amountCents;
          if (!refund.late) paidTheLines += refund.amountCents;
          count += 1;
        }
      }
      // added where it stands: a cancel or refund of the order may commit between this job's read and this write
      const lateCents = refundedCents - paidTheLines;
      if (lateCents > 0) await trx.updateTable('orders').set((eb) => ({ refunded_cents: eb('refunded_cents', '+', lateCents) })).where('order_id', '=', orderId).execute();
      if (paidTheLines > 0) await RefundRepository.countPaymentsGivenBack(trx, current, paidTheLines);
      recorded = { refunds: count, cents: refundedCents };
    };
    const order = await this.deps.orders.findOrderRow(orderId);
    // a late payment's refund leaves the order as it is: it was never part of its life
    if (order?.status === 'REFUNDING' && latePayment === undefined) {
      await this.tryTransition({ orderId, action: 'refund_succeeded', actor: 'payment', detail: refunds.map((r) => r.refundId).join(', '), effects: record });
    } else if (order) {
      await this.deps.db.transaction().execute(async (trx) => {
        // the split order's lock first, as a child's step takes it before it locks the payments due back (deriveParentStatus): not the other way round
        await trx.selectFrom('orders').select('order_id').where('order_id', '=', order.parent_order_id ?? order.order_id).forUpdate().execute();
        await record(trx, order, { from: order.status, action: 'refund', to: order.status, actor: 'system', effects: [] });
      });
      // a payment due back holds a split order whose children are all closed open (REFUNDING) until it went back
      if (latePayment !== undefined) await this.closeSplitOrderOnceRefunded(order, `refund ${refunds.map((r) => r.refundId).join(', ')}`);
    }
    if (recorded.refunds > 0) {
      this.deps.metrics.refunds.inc({ kind: 'payment', outcome: 'succeeded' }, recorded.refunds);
      this.deps.metrics.refundedCents.inc({ kind: 'payment' }, recorded.cents);
    }
  }

  private async payRefundOrders(job: Job<OrderEffectsJob>, token: string | undefined): Promise<void> {
    const orderId = job.data.orderId;
    // the warehouse's update, enqueued beside this job by the refund: again, since the overdue sweep
    // restores a lost refund job alone, and a parcel handed over would ship the units refunded (the
    // update sends nothing for an order with no parcel left to change)
    const unit = await this.deps.orders.findOrderRow(orderId);
    if (unit) {
      await this.enqueueFulfilmentUpdate(unit);
      await this.followRestoredCoupon(unit);
    }
    const notifyUrl = urlUnder(this.deps.config.CALLBACK_BASE_URL, '/v1/callbacks/payment');
    // a refund opened while this job ran is picked up by the next round; one whose units wait in a parcel the warehouse
    // holds is paid once it has taken them out (updateFulfilment enqueues this job again), never while they may still leave
    const due = async () => (await this.refunds.pending(orderId)).filter((refund) => !refund.restockHeld);
    for (let pending = await due(); pending.length > 0; pending = await due()) {
      for (const refund of pending) {
        // the units go back on sale before the money goes back: an outage of the payment system must not hold stock.
        // Not for a refund older than Redis remembers its restock (one declined and asked again months later): its
        // first round restocked it, and again its units would go on sale twice (one never restocked, the stock check finds)
        if (Date.parse(refund.createdAt) > this.deps.inventory.restocksKeptSince(this.deps.clock()).getTime()) {
          await this.deps.inventory.restockStock(refund.orderId, refund.refundId, refund.items.filter((item) => item.qty > 0));
        }
        if (refund.amountCents === 0) {
          // nothing to pay back (a unit whose share was discounted to nothing): settled as it stands
          if (await this.refunds.markSucceeded(refund.refundId, this.deps.clock())) this.deps.metrics.refunds.inc({ kind: refund.kind, outcome: 'succeeded' });
          continue;
        }
        // one refund per payment drawn, under the part's own id: a retried job is paid back once per part
        for (const part of refund.parts.filter((p) => p.status === 'PENDING')) {
          await callExternal(job, token, () => this.paymentClient.refund({ refundId: part.partId, paymentId: part.paymentId, amountCents: part.amountCents, notifyUrl }));
          await this.refunds.markPartSent(part.partId, this.deps.clock());
        }
        await this.refunds.markSent(refund.refundId, this.deps.clock());
      }
    }
    // again once paid: a refund whose units the warehouse took out after the first look (it held them then) was paid
    // just now, and the job that took the warehouse's answer may have failed before giving the coupon use back
    if (unit) await this.followRestoredCoupon(unit);
    // parts accepted long ago and never confirmed (their callback lost for good): the payment system, asked
    // for one again under its id, pays nothing twice and answers what became of it, settled as its callback
    // would be (a callback lost for good, a wrong CALLBACK_BASE_URL, would never come); none first
    // sent REFUND_CONFIRMATION_GIVE_UP_MS ago, whatever enqueued this job: an operator's (refunds_unconfirmed_given_up)
    for (const part of await this.refunds.partsUnconfirmed(orderId, this.deps.config.REFUND_CONFIRMATION_WAIT_MS, this.deps.config.REFUND_CONFIRMATION_GIVE_UP_MS)) {
      const answer = await callExternal(job, token, () => this.paymentClient.refund({ refundId: part.partId, paymentId: part.paymentId, amountCents: part.amountCents, notifyUrl }));
      await this.refunds.markPartAskedAgain(part.partId, this.deps.clock());
      this.deps.metrics.refundConfirmationsAskedAgain.inc();
      this.deps.log.warn({ orderId, partId: part.partId, paymentId: part.paymentId, amountCents: part.amountCents, answer: answer.status }, 'asked the payment system again for a refund it accepted and never confirmed');
      if (answer.status === 'SUCCEEDED' || answer.status === 'FAILED') await settleRefundPart(this.deps, part.refund, part, answer.status, this.deps.log);
    }
    // the signed callbacks close the order (the last part of the last refund); this covers refunds that needed none
    await closeOrderOnceRefunded(this.deps, orderId, 'every refund paid back');
  }

  /**
   * The coupon use of an order closed a while ago, for its release to be finished: only while Redis
   * still remembers whether it went back (releaseRemembered), else it could go back twice.
   */
  private couponUseToReleaseAgain(order: OrderRow) {
    return releaseRemembered(order.updated_at, this.deps.clock()) ? couponUseOf(order) : null;
  }

  /** A split order the order is, or is part of, held open while its buyer was owed money (refundsOwedIn): closed as its children give it once nothing is. */
  private async closeSplitOrderOnceRefunded(order: OrderRow, detail: string): Promise<void> {
    const childrenClosed = await this.deps.orders.closeSplitOrderOnceRefunded(order, { at: this.deps.clock(), detail });
    for (const { order: child, fired } of childrenClosed) this.deps.metrics.transitions.inc({ type: child.type, from: fired.from, to: fired.to, action: fired.action });
  }

  /**
   * A cancellation gives the coupon use back in MySQL with its first refund, or once the
   * warehouse took the units of the last part out (takenOut); this job (which every refund, and a
   * repeated cancel, enqueues, and the overdue sweep enqueues again while a refund is due) gives it
   * back there too, should the job that took the warehouse's answer have failed after its restock
   * committed (retried, it finds nothing held), and makes Redis follow, so the buyer's next
   * checkout can take it. Once only: the reservation record says whether the order still
   * holds the use, and its given-back marker whether it went back; neither is kept past
   * RELEASES_REMEMBERED_MS, so a refund job of a cancel sent again later gives nothing back (the
   * use given back then may be another order's now).
   */
  private async followRestoredCoupon(unit: OrderRow): Promise<void> {
    const root = unit.parent_order_id ? await this.deps.orders.findOrderRow(unit.parent_order_id) : unit;
    if (!root?.coupon_code) return;
    const restoredOf = async () => (await this.pricing.redemptions(root.order_id)).find((r) => r.status === 'restored');
    // given back already (read without a lock: once restored it stays so), or now, under the order's lock
    let restored = await restoredOf();
    if (!restored) {
      await this.restoreCouponOnceNoneLeft(root.order_id);
      restored = await restoredOf();
    }
    if (restored && releaseRemembered(restored.at, this.deps.clock())) await this.deps.inventory.releaseCoupon({ orderId: root.order_id, userId: root.user_id, couponCode: root.coupon_code });
  }

  /**
   * Closes a presale whose balance was not paid by its deadline: the deposit is kept, the stock
   * goes back. Not changed when it was not owing its balance, or when its balance deadline has
   * not passed by MySQL's clock (until then the buyer may pay it), or while a balance payment the
   * buyer asked for before it is still unanswered: then `dueInMs` says when to look again.
   */
  async forfeitDeposit(orderId: string): Promise<TimerOutcome> {
    // a balance the buyer asked to pay in time and the payment system has not answered (it is away, its callback
    // slow) decides the order when it does: a minute at a time, up to PAYMENT_TIMEOUT_MS past the deadline
    const paying = (await this.process.paymentsAskedInTimeFor('balance', [orderId], this.deps.config.PAYMENT_TIMEOUT_MS)).get(orderId);
    if (paying !== undefined) return { changed: false, dueInMs: Math.min(paying, PAYMENT_LOOKED_AT_EVERY_MS) };
    const forfeited = await this.fireWhenDue({
      orderId,
      action: 'expire_balance',
      actor: 'system',
      detail: 'balance not paid by its deadline; deposit kept',
      timer: 'scheduleBalanceDeadline',
      effects: async (trx, current) => {
        await ProcessRepository.refuseWhilePaymentAwaited(trx, current.order_id, 'balance', this.deps.config.PAYMENT_TIMEOUT_MS, PAYMENT_LOOKED_AT_EVERY_MS);
        await OrderRepository.releaseReservation(trx, current.order_id, 'expire_balance', this.deps.clock());
      },
    });
    if (forfeited.dueInMs !== undefined) return forfeited;
    const order = await this.deps.orders.findOrderRow(orderId);
    if (order?.status === 'DEPOSIT_FORFEITED') await this.deps.inventory.releaseStock(order.order_id, order.user_id, 'forfeited', this.couponUseToReleaseAgain(order));
    return forfeited;
  }

  /**
   * Applies a transition and enqueues its follow-up effects. An action the order has
   * already passed (a retried job) changes nothing; when it was the order's last step,
   * its follow-ups are enqueued again, since the job may be retried because it died (or
   * lost MySQL's answer) between the commit and the enqueue. A concurrent change is retried.
   */
  async tryTransition(request: Omit<TransitionRequest, 'at'> & { actor: Actor }, reason?: string): Promise<boolean> {
    return (await this.transition(request, reason)) === null;
  }

  /** tryTransition, answering why the order refused the action (the status it was in), or null when it fired. */
  private async transition(request: Omit<TransitionRequest, 'at'> & { actor: Actor }, reason?: string): Promise<IllegalTransition | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { order, fired } = await this.deps.orders.applyTransition({ ...request, at: this.deps.clock() });
        this.deps.metrics.transitions.inc({ type: order.type, from: fired.from, to: fired.to, action: fired.action });
        await this.followUp(order, fired.effects, reason);
        return null;
      } catch (error) {
        if (error instanceof IllegalTransition) {
          const last = await this.process.lastStep(request.orderId);
          if (last?.action === request.action && last.actor === request.actor) {
            await this.followUp(last.order, last.effects, reason);
          }
          return error;
        }
        if (error instanceof StaleOrderVersion && attempt < 5) continue;
        throw error;
      }
    }
  }

  /**
   * Enqueues the follow-up jobs of a transition, just committed or committed before (enqueued
   * again): a timer's job falls due at the order's deadline as MySQL holds it (timersDue), so
   * one enqueued again waits only what is left, whatever this worker's clock says.
   */
  private followUp(order: OrderRow, effects: readonly Effect[], reason?: string): Promise<void> {
    return enqueueEffects(this.deps.queues, { orderId: order.order_id, userId: order.user_id }, effects, () => this.deps.orders.timersDue(order.order_id, effects, this.deps.config), reason);
  }
}

import { IllegalTransition } from '@orders/domain';
import type { OrderMetrics } from '@orders/metrics';
import { afterStaleOrderVersion, ProcessRepository, paymentDetail, retryTransaction, type OrderDb, type OrderRow, type PaymentRow } from '@orders/persistence';
import { enqueueLatePaymentRefund } from '@orders/queues';
import { AlreadyApplied, followUp, type FollowUpDeps } from './follow-ups.js';

/**
 * What settling a payment takes, in the api (a callback, a payment of nothing) and in the workers
 * (a payment looked up at the payment system, its callbacks lost).
 */
export interface SettlementDeps extends FollowUpDeps {
  db: OrderDb;
  metrics: OrderMetrics;
  clock: () => Date;
  config: FollowUpDeps['config'] & { PRESALE_BALANCE_TIMEOUT_MS: number };
}

/** Where a settlement says what it did: the request's log, or the worker's. */
export interface SettlementLog {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** The transaction id a payment of nothing is recorded under: no payment system saw it. */
export const noChargeTransactionId = (paymentId: string) => `no-charge-${paymentId}`;

/** What the payment system (or nobody, for nothing to pay) says of a payment that went through. */
export interface PaymentTaken {
  transactionId: string;
  paidAt: Date;
}

/**
 * Records a payment that went through and fires what it pays (pay, pay_deposit) in one
 * transaction. Money taken for an order that can no longer take it (expired, cancelled,
 * paid by another attempt, deposit forfeited) is recorded and this payment alone is given
 * back. A payment already recorded changes nothing.
 */
export async function applyPaymentTaken(deps: SettlementDeps, order: OrderRow, payment: PaymentRow, taken: PaymentTaken, log: SettlementLog): Promise<{ changed: boolean; status: string }> {
  const payments = new ProcessRepository(deps.db);
  const action = ProcessRepository.paymentActionOf(payment.purpose);
  const outcome = { status: 'SUCCEEDED', transactionId: taken.transactionId, at: taken.paidAt } as const;
  try {
    const { order: paid, fired } = await retryTransaction(
      () =>
        deps.orders.applyTransition({
          orderId: order.order_id,
          action,
          actor: 'payment',
          at: deps.clock(),
          detail: paymentDetail(payment.payment_id, taken.transactionId),
          effects: async (trx, _current, transition) => {
            const settled = await ProcessRepository.settlePayment(trx, payment.payment_id, outcome);
            if (!settled) throw new AlreadyApplied();
            if (transition.effects.includes('scheduleBalanceDeadline')) {
              await ProcessRepository.setBalanceDeadline(trx, order.order_id, deps.config.PRESALE_BALANCE_TIMEOUT_MS);
            }
          },
        }),
      { alsoAfter: afterStaleOrderVersion },
    );
    deps.metrics.transitions.inc({ type: paid.type, from: fired.from, to: fired.to, action: fired.action });
    await followUp(deps, paid, fired.effects);
    return (await payBalanceOfNothing(deps, paid, payment, log)) ?? { changed: true, status: paid.status };
  } catch (error) {
    if (error instanceof AlreadyApplied) return { changed: false, status: (await deps.orders.findOrderRow(order.order_id))?.status ?? order.status };
    if (!(error instanceof IllegalTransition)) throw error;
    const now = await payments.findPayment(payment.payment_id);
    const current = await deps.orders.findOrderRow(order.order_id);
    if (now?.status === 'SUCCEEDED') {
      // recorded by a callback that ran alongside this one, which may die before asking for the refund
      await refundIfNotApplied(deps, order.order_id, payment.payment_id);
      return { changed: false, status: current?.status ?? order.status };
    }
    log.warn({ orderId: order.order_id, paymentId: payment.payment_id, status: current?.status }, 'payment for an order that can no longer be paid: refunding');
    // due from its recording: a refund job lost before or after its add is enqueued again by the overdue sweep (a payment of nothing has nothing to give back)
    await retryTransaction(() => deps.db.transaction().execute((trx) => ProcessRepository.settlePayment(trx, payment.payment_id, { ...outcome, refundDue: Number(payment.amount_cents) > 0 })));
    await enqueueLatePaymentRefund(deps.queues, { orderId: order.order_id, paymentId: payment.payment_id });
    return { changed: false, status: current?.status ?? order.status };
  }
}

/** What the payment system reports of a payment it decided: by its signed callback, or looked up under the payment's id. */
export interface PaymentReport {
  status: 'SUCCEEDED' | 'FAILED';
  transactionId: string;
  /** what it took (SUCCEEDED), which may not be what the payment asked for, or what its decline names */
  amountCents: number;
  at: Date;
}

/**
 * Settles a payment not settled yet as the payment system reports it: taken for its amount, it
 * pays its order (applyPaymentTaken: given back, should the order no longer take it); taken for
 * another amount, it is given back whole (givePaymentBackWhole); declined, it fails, whatever
 * amount the decline names (nothing was taken), and the buyer's next pay opens a new attempt.
 */
export async function settleReportedPayment(deps: SettlementDeps, order: OrderRow, payment: PaymentRow, report: PaymentReport, log: SettlementLog): Promise<{ changed: boolean; status: string }> {
  const otherAmount = Number(payment.amount_cents) !== report.amountCents;
  if (report.status === 'FAILED') {
    const changed = await retryTransaction(() => new ProcessRepository(deps.db).failPayment(payment.payment_id, report.transactionId, deps.clock()));
    // counted once, not per repeat
    if (changed && otherAmount) {
      log.warn({ orderId: order.order_id, paymentId: payment.payment_id, askedCents: Number(payment.amount_cents), namedCents: report.amountCents }, 'the payment system declined a payment naming another amount than the payment asked for');
      deps.metrics.paymentAmountMismatches.inc({ outcome: 'declined' });
    }
    return { changed, status: order.status };
  }
  if (otherAmount) return givePaymentBackWhole(deps, order, payment, { transactionId: report.transactionId, paidAt: report.at, amountCents: report.amountCents }, log);
  return applyPaymentTaken(deps, order, payment, { transactionId: report.transactionId, paidAt: report.at }, log);
}

/**
 * A deposit that took the whole payable (one of 0 or 1 cent) leaves a balance of nothing: paid with it, or
 * the buyer, with nothing left to pay and no reason to pay again, would lose the goods at the balance deadline.
 * Run again by the deposit's callback sent again, for a deposit recorded by one that failed before this.
 */
export async function payBalanceOfNothing(deps: SettlementDeps, order: OrderRow, deposit: PaymentRow, log: SettlementLog): Promise<{ changed: boolean; status: string } | null> {
  if (deposit.purpose !== 'deposit' || order.status !== 'DEPOSIT_PAID' || Number(order.payable_cents) !== Number(deposit.amount_cents)) return null;
  const { payment: balance } = await new ProcessRepository(deps.db).openPayment({ orderId: order.order_id, purpose: 'balance', method: deposit.method, amountCents: 0, at: deps.clock() });
  if (balance.status !== 'PENDING') return null;
  return applyPaymentTaken(deps, order, balance, { transactionId: noChargeTransactionId(balance.payment_id), paidAt: deps.clock() }, log);
}

/**
 * A payment recorded as taken that its order did not take (it could no longer) is given back:
 * asked again, since whoever recorded it may have died before asking (the refund job is
 * deduplicated, the refund idempotent by its id).
 */
export async function refundIfNotApplied(deps: SettlementDeps, orderId: string, paymentId: string): Promise<void> {
  if (!(await new ProcessRepository(deps.db).paymentApplied(orderId, paymentId))) await enqueueLatePaymentRefund(deps.queues, { orderId, paymentId });
}

/**
 * A payment the payment system reports taken for another amount than the payment asked for:
 * it does not pay its order (which stays payable: the buyer's next pay is a new attempt). It is
 * recorded as taken for the amount named and given back whole, as a late payment is; kept
 * unrecorded, that money would stay with the shop. Returns whether this callback recorded it (a
 * repeat finds it recorded, and asks for its refund again: deduplicated, idempotent).
 */
export async function givePaymentBackWhole(deps: SettlementDeps, order: OrderRow, payment: PaymentRow, taken: PaymentTaken & { amountCents: number }, log: SettlementLog): Promise<{ changed: boolean; status: string }> {
  const outcome = { status: 'SUCCEEDED', transactionId: taken.transactionId, at: taken.paidAt, amountCents: taken.amountCents, refundDue: taken.amountCents > 0 } as const;
  const recorded = await retryTransaction(() => deps.db.transaction().execute((trx) => ProcessRepository.settlePayment(trx, payment.payment_id, outcome)));
  if (recorded) {
    deps.metrics.paymentAmountMismatches.inc({ outcome: 'given_back' });
    log.error({ orderId: order.order_id, paymentId: payment.payment_id, askedCents: Number(payment.amount_cents), takenCents: taken.amountCents }, 'the payment system took another amount than the payment asked for: given back whole, the order stays payable');
  }
  if (taken.amountCents > 0) await refundIfNotApplied(deps, order.order_id, payment.payment_id);
  return { changed: recorded, status: order.status };
}

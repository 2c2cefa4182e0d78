import { IllegalTransition, OutOfStock, presaleDepositCents, stateMachineFor, type OrderType } from '@orders/domain';
import { ProcessRepository, type PaymentPurpose, type PaymentRow } from '@orders/persistence';
import { enqueuePaymentRequest, jobId } from '@orders/queues';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { applyPaymentTaken, noChargeTransactionId } from '@orders/settlement';
import { HttpProblem, notFound } from '../problems.js';
import { ownOrder } from '../queued-orders.js';
import { noFieldsBody, orderParamsSchema, problemRef } from '../schemas.js';
import { followUpAgain } from './order-engine-support.js';

/** The payment an order in a state that takes `action` is paying: a presale's deposit, then balance; any other order's in full. Null when nothing is payable. */
function purposeDue(type: string, action: string | null): PaymentPurpose | null {
  if (action === null) return null;
  if (type !== 'presale') return 'full';
  return action === 'pay_deposit' ? 'deposit' : 'balance';
}

/**
 * Refuses a payment whose stock commit would find a payment-time line's units gone, before the
 * buyer is charged (OutOfStock naming the SKU): charged, they would only be refunded as sold out.
 * Advisory: units may go between this read and the commit, which stays the verdict (and refunds).
 */
async function paymentTimeStockCovered(deps: AppDeps, orderId: string): Promise<void> {
  const skuId = await deps.inventory.paymentTimeSkuGone(orderId);
  if (skuId !== null) throw new OutOfStock(skuId);
}

const paymentAnswer = (payment: PaymentRow) => ({
  paymentId: payment.payment_id,
  orderId: payment.order_id,
  purpose: payment.purpose,
  amountCents: Number(payment.amount_cents),
  method: payment.method,
  status: payment.status,
});

export const paymentAnswerSchema = {
  type: 'object',
  properties: {
    paymentId: { type: 'string' },
    orderId: { type: 'string' },
    purpose: { type: 'string', enum: ['full', 'deposit', 'balance'] },
    amountCents: { type: 'integer' },
    method: { type: 'string' },
    status: { type: 'string', enum: ['PENDING', 'SUCCEEDED', 'FAILED'] },
  },
  required: ['paymentId', 'orderId', 'purpose', 'amountCents', 'status'],
} as const;

const paymentParamsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { orderId: { type: 'string' }, paymentId: { type: 'string', minLength: 1, maxLength: 64 } },
  required: ['orderId', 'paymentId'],
} as const;

/** An admin's ask-again of a payment nothing asks about any more, sent for another (`why`: what it is instead, and what to do). */
const paymentNotGivenUp = (paymentId: string, why: string) =>
  new HttpProblem(409, 'PAYMENT_NOT_GIVEN_UP', `Payment ${paymentId} is not one the payment system never reported on within PAYMENT_CONFIRMATION_GIVE_UP_MS: ${why}`);

/**
 * POST /v1/orders/:orderId/pay: opens a payment for what the order owes now (the whole
 * amount; a presale's deposit, then its balance) and queues the request to the payment
 * system, which answers by the signed payment callback. Asking again while a payment is
 * pending returns that payment: the buyer is never charged twice. A new payment whose order's
 * payment-time units are gone is refused before anything is charged (409 OUT_OF_STOCK).
 */
export async function paymentRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const payments = new ProcessRepository(deps.db);

  app.post<{ Params: { orderId: string }; Body: { method: 'card' | 'wallet' | 'bank_transfer'; purpose?: PaymentPurpose } }>(
    '/v1/orders/:orderId/pay',
    {
      onRequest: app.requireRole('buyer'),
      schema: {
        tags: ['orders'],
        summary: 'Pay an order (202: the payment system confirms by callback)',
        description:
          'Collects payableCents (a presale: its deposit, then its balance) through the payment system behind a circuit breaker; an amount of 0 (everything discounted) goes through at once without it (status SUCCEEDED, transaction id no-charge-<paymentId>). While the payment system is unavailable the request waits in the payments queue; the order never fails because of it: a payment asked for before paymentDeadline (a presale’s balance: before its balanceDeadline) that the payment system has not answered by then is waited for, up to PAYMENT_TIMEOUT_MS past the deadline, and the order expires only once it was declined or that wait is over. Asking again while a payment is in progress charges once: the answer is that payment, with the method it was asked with (another method is taken once it has failed). 409 OUT_OF_STOCK, naming the SKU, when a line of a SKU deducted at payment no longer has its units on sale: no payment is opened and nothing is charged, and the order stays PENDING_PAYMENT until its paymentDeadline (its placement units and coupon held, as for any unpaid order), payable once units come back (a restock, a cancel of a paid order) or cancelled by its buyer; this check reads the stock before charging, and a payment charged while the last units went elsewhere meanwhile is still refunded in full as sold out. 409 ILLEGAL_TRANSITION when nothing is payable now; for an order still in the queue (ACCEPTED) with retry-after, since it becomes payable once persisted, with its whole payment window from then (paymentDeadline).',
        params: orderParamsSchema,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['method'],
          properties: {
            method: { type: 'string', enum: ['card', 'wallet', 'bank_transfer'] },
            purpose: {
              type: 'string',
              enum: ['full', 'deposit', 'balance'],
              description:
                "optional: the payment this request is for. Sent again once that payment went through (its answer lost, a double click), it answers that payment, where without it a presale's next payment due (its balance) would be charged; 409 ILLEGAL_TRANSITION when that payment was never made and is not due",
            },
          },
        },
        response: { 202: paymentAnswerSchema, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request, reply) => {
      const { orderId } = request.params;
      const order = await ownOrder(deps, request.user, orderId, 'pay');
      const machine = stateMachineFor(order.type as OrderType);
      const action = machine.paymentActionFor(order.status);
      const asked = request.body.purpose;
      if (asked !== undefined && order.parent_order_id === null && asked !== purposeDue(order.type, action)) {
        // the payment it was sent for went through already: that payment again, never the next one due
        const made = (await payments.paymentsApplied(orderId)).filter((p) => p.purpose === asked).at(-1);
        if (!made) throw new IllegalTransition(order.status, `pay (${asked})`, 'buyer');
        return reply.code(202).send(paymentAnswer(made));
      }
      if (action === null || order.parent_order_id !== null) {
        // a payment of nothing has no payment system to repeat its callback: the buyer's pay sent again (its answer
        // lost, perhaps with the follow-ups of its commit) enqueues them again, as a repeated callback does
        // the latest: a presale whose deposit and balance were both nothing repeats its balance's pay
        const paidWithNothing = order.parent_order_id === null ? (await payments.paymentsApplied(orderId)).filter((p) => p.transaction_id === noChargeTransactionId(p.payment_id)).at(-1) : undefined;
        if (paidWithNothing) await followUpAgain(deps, orderId, ProcessRepository.paymentActionOf(paidWithNothing.purpose));
        throw new IllegalTransition(order.status, 'pay', 'buyer');
      }
      const payable = Number(order.payable_cents);
      const purpose = purposeDue(order.type, action)!;
      let amountCents = payable;
      if (order.type === 'presale') {
        const deposit = presaleDepositCents(payable, deps.config.PRESALE_DEPOSIT_PERCENT);
        if (purpose === 'deposit') amountCents = deposit;
        else {
          // what the deposit that paid the order took: another attempt that took the money too went back as a late payment
          const paidDeposit = (await payments.paymentsApplied(orderId)).find((p) => p.purpose === 'deposit');
          if (!paidDeposit) throw new Error(`presale ${orderId} is ${order.status} but no deposit payment paid it`);
          amountCents = payable - Number(paidDeposit.amount_cents);
        }
      }
      // the payment that takes the stock checks it first; a deposit takes none
      const takesStock = machine.rule(order.status, action)?.effects?.includes('commitStock') === true;
      const opened = await payments.openPayment({ orderId, purpose, method: request.body.method, amountCents, at: deps.clock() }, takesStock ? () => paymentTimeStockCovered(deps, orderId) : undefined);
      let payment = opened.payment;
      if (payment.status === 'PENDING' && Number(payment.amount_cents) === 0) {
        // nothing to collect (a coupon or a member price covering everything): a payment system refuses
        // a charge of nothing, so the payment goes through here, under a transaction id of our own
        await applyPaymentTaken(deps, order, payment, { transactionId: noChargeTransactionId(payment.payment_id), paidAt: deps.clock() }, request.log);
        payment = (await payments.findPayment(payment.payment_id)) ?? payment;
      } else if (payment.status === 'PENDING') {
        await enqueuePaymentRequest(deps.queues, { orderId, paymentId: payment.payment_id });
      }
      return reply.code(202).send(paymentAnswer(payment));
    },
  );

  app.post<{ Params: { orderId: string; paymentId: string }; Body: Record<string, never> | null }>(
    '/v1/orders/:orderId/payments/:paymentId/ask-again',
    {
      onRequest: app.requireRole('admin'),
      schema: {
        tags: ['orders'],
        summary: 'Asks the payment system again about a payment it never reported on, given up on (admin)',
        description:
          "A payment sent to the payment system and never reported on (no signed callback; looked up, not decided there: PROCESSING) is asked about until PAYMENT_CONFIRMATION_GIVE_UP_MS (24 h) after it was first sent, then left PENDING for an operator (PaymentsUnconfirmedGivenUp): the money may have been taken, or may yet be, and is neither applied nor given back. Once the payment provider has it and can decide it (or cannot tell), an admin asks about it again: it counts as first sent now, and its request job asks the payment system at once, under its own id, as the overdue sweep would have (a payment its order still owes is asked for again, which charges nothing twice; one whose order closed is looked up, which charges nothing: taken, it goes back whole as a late payment; declined or never received, it fails), then for PAYMENT_CONFIRMATION_GIVE_UP_MS more. 200 with the payment (PENDING). 409 PAYMENT_NOT_GIVEN_UP for any other payment: decided (SUCCEEDED, FAILED), never sent, first sent less than PAYMENT_CONFIRMATION_GIVE_UP_MS ago (still asked about, an ask-again's included: wait for it), or one whose request job failed for good (replay its dead letter, which asks again). 404 NOT_FOUND for a payment the order does not hold.",
        params: paymentParamsSchema,
        body: noFieldsBody,
        response: { 200: paymentAnswerSchema, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const { orderId, paymentId } = request.params;
      const payment = await payments.findPayment(paymentId);
      if (!payment || payment.order_id !== orderId) throw notFound('payment');
      // a job failed for good keeps its id: a new one under it would never run, and replaying its dead letter asks again
      const job = await deps.queues.payments.getJob(jobId.requestPayment(paymentId));
      if (job && (await job.isFailed())) throw paymentNotGivenUp(paymentId, 'its request job failed for good; replay its dead letter, which asks again');
      if (!(await payments.askAboutGivenUpPaymentAgain(paymentId, deps.config.PAYMENT_CONFIRMATION_GIVE_UP_MS))) {
        throw paymentNotGivenUp(paymentId, payment.status !== 'PENDING' ? `it is ${payment.status}` : payment.requested_at === null ? 'it was never sent' : 'it is still asked about');
      }
      request.log.warn({ orderId, paymentId, admin: request.user.sub }, 'an admin asked the payment system again about a payment it never reported on, given up on');
      // a job still queued (delayed while undecided there, or waiting for the breaker) asks by itself
      if (!job) await enqueuePaymentRequest(deps.queues, { orderId, paymentId });
      return paymentAnswer(payment);
    },
  );
}

import { startsATimer, type Effect, type TimerEffect, type TimersDue } from '@orders/domain';
import { delayedUntil, type OrderQueues } from './order-queues.js';
import { JOB, jobId, type OrderEffectsJob } from './queue-names.js';

/** The job on the timers queue each timer effect schedules. */
const TIMER_JOBS: Record<TimerEffect, { name: string; id: (orderId: string) => string }> = {
  scheduleAutoConfirm: { name: JOB.autoConfirm, id: jobId.autoConfirm },
  scheduleCompletion: { name: JOB.completeOrder, id: jobId.completeOrder },
  scheduleBalanceDeadline: { name: JOB.expireBalance, id: jobId.expireBalance },
  scheduleReturnClose: { name: JOB.closeReturn, id: jobId.closeReturn },
  scheduleReturnReview: { name: JOB.reviewReturn, id: jobId.reviewReturn },
};

/** Effects carried out by a job after the transition committed; the others run inside it. */
const SETTLEMENT_EFFECTS: readonly Effect[] = ['commitStock', 'split', 'requestFulfilment', 'deliverDigital'];

/**
 * Enqueues the jobs that carry out a committed transition's effects. Every job id (the
 * refund and warehouse update jobs' deduplication ids) is derived from the order, so
 * enqueuing again (a repeated callback, a retried job) while the job waits adds nothing,
 * and each processor is idempotent for when it does.
 *
 * A timer's job falls due at its order's deadline, read with MySQL's time by `timersDue` (only
 * when the effects start one): enqueued again long after the step that started it, it waits
 * only what is left, and the enqueuing host's clock does not move it (delayedUntil).
 */
export async function enqueueEffects(
  queues: Pick<OrderQueues, 'timers' | 'payments' | 'fulfillment'>,
  order: { orderId: string; userId: string },
  effects: readonly Effect[],
  timersDue: () => Promise<TimersDue>,
  reason?: string,
): Promise<void> {
  const { orderId, userId } = order;
  const timers = effects.filter(startsATimer);
  const due = timers.length > 0 ? await timersDue() : null;
  const adds: Promise<unknown>[] = [];
  const settlement = effects.filter((effect) => SETTLEMENT_EFFECTS.includes(effect));
  if (settlement.length > 0) adds.push(enqueueSettlement(queues, orderId, settlement));
  if (due) {
    for (const effect of timers) {
      const { name, id } = TIMER_JOBS[effect];
      // an order without the deadline has its job run now, to find nothing to do
      adds.push(queues.timers.add(name, { orderId, userId }, { jobId: id(orderId), ...delayedUntil(due.dueAt[effect]?.getTime() ?? due.now.getTime(), due.now) }));
    }
  }
  for (const effect of effects) {
    if (effect === 'scheduleCompletion') {
      // delivered: the auto-confirm timer has nothing left to do and would sit in Redis for the rest of its days (a locked
      // one, firing now, is left to find the order delivered); nothing starts it again. A return's review and close timers
      // are left to fire and find nothing to do: a return asked for (approved) since, whose add under the same job id this
      // one's still waiting job made a no-op, counts on it (firing early, it waits on to the new deadline)
      adds.push(queues.timers.remove(jobId.autoConfirm(orderId)));
    } else if (effect === 'updateFulfilment') {
      adds.push(enqueueFulfilmentUpdate(queues, orderId));
    } else if (effect === 'refundPayments') {
      adds.push(enqueueRefundPayments(queues, orderId, reason));
    }
  }
  await Promise.all(adds);
}

/**
 * The deduplication of the jobs that run one at a time per order (per payment, a late payment's
 * refund) rather than under a job id of their own: what enqueuing them passes, and what putting
 * one back from its dead letter passes too (deduplicationOf), or the job put back runs beside the
 * order's own.
 */
const ONE_AT_A_TIME = {
  updateFulfilment: (orderId: string) => ({ id: jobId.updateFulfilment(orderId), keepLastIfActive: true }),
  refundPayments: (orderId: string) => ({ id: jobId.refundPayments(orderId), keepLastIfActive: true }),
  refundLatePayment: (paymentId: string) => ({ id: jobId.refundLatePayment(paymentId) }),
} satisfies Record<string, (id: string) => { id: string; keepLastIfActive?: boolean }>;

/** How a job of this name and data is deduplicated when enqueued (one at a time per order), or undefined for a job that has an id of its own. */
export function deduplicationOf(name: string, data: unknown): { id: string; keepLastIfActive?: boolean } | undefined {
  const { orderId, paymentId } = (data ?? {}) as Partial<OrderEffectsJob>;
  if (typeof orderId !== 'string') return undefined;
  if (name === JOB.updateFulfilment) return ONE_AT_A_TIME.updateFulfilment(orderId);
  if (name !== JOB.refundPayments) return undefined;
  return typeof paymentId === 'string' ? ONE_AT_A_TIME.refundLatePayment(paymentId) : ONE_AT_A_TIME.refundPayments(orderId);
}

/**
 * The job that tells the warehouse what an order ships now and where: one at a time per order,
 * deduplicated by the order rather than named by it (as the refund job is, and for its reasons).
 * It sends the order as it is when it runs, so two running at once could land in either order:
 * the first change's update, overtaking the second's, left the warehouse shipping to the old
 * address. A change while the job waits adds nothing (the job reads it when it runs); a change
 * while it runs is kept and runs after it (keepLastIfActive).
 */
export function enqueueFulfilmentUpdate(queues: Pick<OrderQueues, 'fulfillment'>, orderId: string) {
  return queues.fulfillment.add(JOB.updateFulfilment, { orderId }, { deduplication: ONE_AT_A_TIME.updateFulfilment(orderId) });
}

/**
 * The refund job of an order: one at a time per order, deduplicated by the order rather
 * than named by it. A job id per order would block every later refund of the order once
 * a job of that id failed for good (BullMQ keeps failed jobs and ignores an add with
 * their id), and would drop a refund opened while the job ran past its last look.
 * Deduplication ends when the job completes or fails for good, so the next refund gets a
 * job of its own; an add while it runs is kept and runs after it (keepLastIfActive).
 * Each job id is BullMQ's own, so each failure gets its own dead letter to replay.
 */
export function enqueueRefundPayments(queues: Pick<OrderQueues, 'payments'>, orderId: string, reason?: string) {
  return queues.payments.add(
    JOB.refundPayments,
    { orderId, effects: ['refundPayments'], ...(reason ? { reason } : {}) },
    { deduplication: ONE_AT_A_TIME.refundPayments(orderId) },
  );
}

/**
 * Of these refunds due for a while, the ones no `name` job of `queue` holds (under its
 * deduplication key), nor one failed for good: theirs was lost (the api died, or Redis refused
 * the add, after the refund or payment committed), and their money would never go back. A dead
 * letter is the operator's to replay once its cause is fixed (JobsDeadLettered), not run again
 * here at every sweep.
 */
async function refundsWithoutJob<T>(
  queue: OrderQueues['payments'] | OrderQueues['fulfillment'],
  name: string,
  due: readonly T[],
  keyOf: (refund: T) => string,
  failedOne: (job: Partial<OrderEffectsJob>, refund: T) => boolean,
): Promise<T[]> {
  // a deduplication key may outlive its job (removed by hand): held only while that job is there
  const held = await Promise.all(
    due.map(async (refund) => {
      const jobId = await queue.getDeduplicationJobId(keyOf(refund));
      return jobId !== null && (await queue.getJob(jobId)) !== undefined;
    }),
  );
  const unheld = due.filter((_, i) => !held[i]);
  if (unheld.length === 0) return [];
  const failed = (await queue.getFailed()).filter((job) => job.name === name).map((job) => job.data as Partial<OrderEffectsJob>);
  return unheld.filter((refund) => !failed.some((job) => failedOne(job, refund)));
}

/**
 * Of these orders (holding refunds due for a while), the ones whose refund job was lost
 * (refundsWithoutJob): to be enqueued again (enqueueRefundPayments) once read still waiting,
 * since a job may have paid them back and ended between the read and this look.
 */
export function orderRefundsWithoutJob(queues: Pick<OrderQueues, 'payments'>, orderIds: readonly string[]): Promise<string[]> {
  return refundsWithoutJob(queues.payments, JOB.refundPayments, orderIds, (orderId) => ONE_AT_A_TIME.refundPayments(orderId).id, (job, orderId) => job.orderId === orderId && job.paymentId === undefined);
}

/**
 * Of these orders (holding refunds that wait for the warehouse to take their units out, for a
 * while), the ones whose fulfilment update job was lost (refundsWithoutJob): that job pays them
 * once the warehouse has taken the units out; to be enqueued again (enqueueFulfilmentUpdate).
 */
export function heldRefundsWithoutJob(queues: Pick<OrderQueues, 'fulfillment'>, orderIds: readonly string[]): Promise<string[]> {
  return refundsWithoutJob(queues.fulfillment, JOB.updateFulfilment, orderIds, (orderId) => ONE_AT_A_TIME.updateFulfilment(orderId).id, (job, orderId) => job.orderId === orderId);
}

/**
 * Of these late payments (due to go back whole for a while), the ones whose refund lost its job
 * (refundsWithoutJob): to be enqueued again (enqueueLatePaymentRefund) once read still due, since
 * a job may have given one back and ended between the read and this look.
 */
export function lateRefundsWithoutJob(queues: Pick<OrderQueues, 'payments'>, payments: ReadonlyArray<{ orderId: string; paymentId: string }>): Promise<Array<{ orderId: string; paymentId: string }>> {
  return refundsWithoutJob(queues.payments, JOB.refundPayments, payments, (payment) => ONE_AT_A_TIME.refundLatePayment(payment.paymentId).id, (job, payment) => job.paymentId === payment.paymentId);
}

/**
 * The refund of one payment that came after its order could take it (expired, cancelled,
 * paid by another attempt, deposit forfeited): that payment alone goes back, whatever else
 * the order was paid. Deduplicated by the payment, so asking again (a repeated callback)
 * adds nothing while it waits, and a new job once it is done (the job is idempotent).
 */
export function enqueueLatePaymentRefund(queues: Pick<OrderQueues, 'payments'>, payment: { orderId: string; paymentId: string }) {
  return queues.payments.add(
    JOB.refundPayments,
    { orderId: payment.orderId, effects: ['refundPayments'], reason: 'late payment', paymentId: payment.paymentId },
    { deduplication: ONE_AT_A_TIME.refundLatePayment(payment.paymentId) },
  );
}

export function enqueuePaymentRequest(queues: Pick<OrderQueues, 'payments'>, payment: { orderId: string; paymentId: string }) {
  return queues.payments.add(JOB.requestPayment, payment, { jobId: jobId.requestPayment(payment.paymentId) });
}

/**
 * Of these payments (answered by the payment system and not reported on for a while), the ones
 * no request job holds: to be asked again (enqueuePaymentRequest). One waiting asks by itself
 * (the payment system away, its job behind the breaker); one failed for good is the operator's
 * dead letter, not run again here at every sweep.
 */
export async function paymentRequestsWithoutJob(queues: Pick<OrderQueues, 'payments'>, payments: ReadonlyArray<{ orderId: string; paymentId: string }>): Promise<Array<{ orderId: string; paymentId: string }>> {
  const jobs = await Promise.all(payments.map((payment) => queues.payments.getJob(jobId.requestPayment(payment.paymentId))));
  return payments.filter((_, i) => jobs[i] === undefined);
}

export function enqueueSendToWarehouse(queues: Pick<OrderQueues, 'fulfillment'>, orderId: string) {
  return queues.fulfillment.add(JOB.sendToWarehouse, { orderId }, { jobId: jobId.sendToWarehouse(orderId) });
}

/** The job carrying out a payment's settlement effects (stock commit, split, hand-over), named by the order and those effects. */
const settlementJobId = (orderId: string, settlement: readonly Effect[]) => `${jobId.settlePayment(orderId)}-${settlement.join('-')}`;

function enqueueSettlement(queues: Pick<OrderQueues, 'fulfillment'>, orderId: string, settlement: Effect[]) {
  return queues.fulfillment.add(JOB.settlePayment, { orderId, effects: settlement }, { jobId: settlementJobId(orderId, settlement) });
}

/**
 * Enqueues again what takes a paid order to its warehouse when no job holds it, nor one failed
 * for good (a dead letter is the operator's to replay): the settlement of the step that paid it
 * (`paidWith`: its stock commit and split, then the hand-over), or the hand-over alone (a split
 * order's child, or an order whose payment settles nothing). Its job was lost: the payment
 * commits before its jobs are enqueued (a Redis that refused the add, beyond the payment
 * system's retries of its callback), or Redis lost it. Each step is idempotent. Returns whether
 * a job was enqueued.
 */
export async function enqueueLostHandOver(queues: Pick<OrderQueues, 'fulfillment'>, orderId: string, paidWith: readonly Effect[]): Promise<boolean> {
  const settlement = paidWith.filter((effect) => SETTLEMENT_EFFECTS.includes(effect));
  const ids = [jobId.sendToWarehouse(orderId), ...(settlement.length > 0 ? [settlementJobId(orderId, settlement)] : [])];
  if ((await Promise.all(ids.map((id) => queues.fulfillment.getJob(id)))).some((job) => job !== undefined)) return false;
  await (settlement.length > 0 ? enqueueSettlement(queues, orderId, settlement) : enqueueSendToWarehouse(queues, orderId));
  return true;
}

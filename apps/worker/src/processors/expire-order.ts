import { IllegalTransition, type Actor } from '@orders/domain';
import type { OrderMetrics } from '@orders/metrics';
import { DeadlineAhead, OrderRepository, PaymentAwaited, ProcessRepository, couponUseOf } from '@orders/persistence';
import { ordersCarriedBy } from '@orders/queues';
import { releaseRemembered, type Inventory } from '@orders/stock';
import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';

/** Statuses in which an order holds no stock: reaching one gives the reservation back. */
const RELEASED_STATUSES = new Set(['EXPIRED', 'CANCELLED']);

export interface CloseOrderDeps {
  orders: OrderRepository;
  inventory: Inventory;
  metrics: OrderMetrics;
  clock: () => Date;
}

/**
 * Closes an unpaid order (expiry, cancellation) and gives its stock and its coupon use back exactly once:
 * the transition and the ledger's release rows commit together in MySQL, then Redis
 * releases the reservation (a no-op when already released). A retry after a crash
 * between the two finds the order closed and still completes the Redis side.
 *
 * An expiry closes only an order whose payment deadline has passed by MySQL's clock: until
 * then the buyer may pay it, whatever the clocks of the processes that timed the expiry say.
 * Asked before, it changes nothing and answers how long until the deadline (`dueInMs`). With
 * `paymentWait`, nor while a payment its buyer asked for in time is unanswered, read in its
 * transaction (refuseWhilePaymentAwaited): `dueInMs` says when to look again.
 */
export async function closeUnpaidOrder(
  deps: CloseOrderDeps,
  request: { orderId: string; action: 'expire' | 'cancel'; actor: Actor; detail?: string; paymentWait?: { waitMs: number; lookEveryMs: number } },
): Promise<{ changed: boolean; dueInMs?: number }> {
  const { orders, inventory, metrics, clock } = deps;
  let changed = false;
  try {
    const { order, fired } = await orders.applyTransition({
      orderId: request.orderId,
      action: request.action,
      actor: request.actor,
      at: clock(),
      detail: request.detail,
      ...(request.action === 'expire' ? { dueAfter: 'payment_deadline' as const } : {}),
      effects: async (trx, current, transition) => {
        const wait = request.paymentWait;
        if (request.action === 'expire' && wait) await ProcessRepository.refuseWhilePaymentAwaited(trx, current.order_id, 'payment', wait.waitMs, wait.lookEveryMs);
        if (transition.effects.includes('releaseStock')) await OrderRepository.releaseReservation(trx, current.order_id, transition.action, clock());
      },
    });
    metrics.transitions.inc({ type: order.type, from: fired.from, to: fired.to, action: fired.action });
    changed = true;
  } catch (error) {
    if (error instanceof DeadlineAhead || error instanceof PaymentAwaited) return { changed: false, dueInMs: error.dueInMs };
    if (!(error instanceof IllegalTransition)) throw error;
  }
  const order = await orders.findOrderRow(request.orderId);
  if (order && RELEASED_STATUSES.has(order.status)) {
    // a job replayed long after the order closed gives no coupon use back: Redis forgot giving it, another order may hold it
    await inventory.releaseStock(order.order_id, order.user_id, order.status.toLowerCase(), releaseRemembered(order.updated_at, clock()) ? couponUseOf(order) : null);
  }
  return { changed };
}

/**
 * Puts a timer job (a payment or balance deadline, an auto-confirmation, a completion) that ran
 * before its deadline (by MySQL's clock) back in the delayed set until then, without using an
 * attempt. It ran by the clocks of the processes that enqueued and promoted it (one running
 * ahead), or was replayed or duplicated; dropped, it would leave its order where it is for good
 * (an unpaid one holding its stock).
 */
export async function waitForDeadline(job: Job, token: string | undefined, dueInMs: number, log: Logger): Promise<never> {
  log.info({ jobId: job.id, job: job.name, orderIds: ordersCarriedBy(job.data).slice(0, 20), dueInMs }, "timer job ran before its deadline by MySQL's clock: it waits for it");
  await job.moveToDelayed(Date.now() + dueInMs, token);
  throw new DelayedError(`deadline ${dueInMs} ms ahead by MySQL's clock`);
}

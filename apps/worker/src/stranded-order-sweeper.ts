import type { AcceptedOrder } from '@orders/domain';
import type { OrderMetrics } from '@orders/metrics';
import { carrierOf, enqueuePersistOrder, forgetCarriers, jobId, type OrderQueues } from '@orders/queues';
import type { Inventory } from '@orders/stock';
import type { JobState } from 'bullmq';
import type { Logger } from 'pino';

/**
 * The safety net behind the intake's 202: an order accepted in Redis whose persist job
 * went missing (the enqueue failed after the reservation) is enqueued again. An order
 * whose job still exists (its single job, or the intake's batch that carries it) is untouched.
 * One that can no longer be persisted (its reservation and its job are gone) is reported lost.
 */
export class StrandedOrderSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly deps: { inventory: Inventory; queues: Pick<OrderQueues, 'orders'>; metrics: OrderMetrics; clock: () => Date; log: Logger },
    private readonly options: { intervalMs: number; strandedAfterMs: number },
  ) {}

  start(): this {
    this.timer = setInterval(() => {
      this.running ??= this.sweep().finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
    return this;
  }

  async sweep(): Promise<number> {
    const { inventory, metrics, clock, log } = this.deps;
    try {
      const { stranded, withoutReservation } = await inventory.findStrandedOrders(clock(), this.options.strandedAfterMs);
      await this.reportLost(withoutReservation);
      let recovered = 0;
      for (const order of stranded) if (await this.recover(order)) recovered++;
      if (recovered > 0) {
        metrics.strandedOrdersRecovered.inc(recovered);
        log.warn({ count: recovered }, 'enqueued accepted orders that were not yet in MySQL and had no job left');
      }
      return recovered;
    } catch (error) {
      log.error({ err: error }, 'stranded-order sweep failed');
      return 0;
    }
  }

  /**
   * Orders whose reservation is gone from Redis leave the accepted set once no job of theirs
   * will run: nothing can persist them from Redis any more. If no job of theirs is left at
   * all, their buyers' 202s are lost orders: reported once, loudly (`AcceptedOrdersLost`).
   * One whose job ended still has it: a failed job waits in the dead letters (`FailedJobs`),
   * a completed one wrote it.
   */
  private async reportLost(orderIds: readonly string[]): Promise<void> {
    const { queues, inventory, metrics, log } = this.deps;
    const dropped: string[] = [];
    const lost: string[] = [];
    for (const orderId of orderIds) {
      const states = await this.jobStates(orderId);
      if (!states.every(hasEnded) || !(await inventory.dropAcceptedOrder(orderId))) continue;
      dropped.push(orderId);
      if (states.every((state) => state === 'unknown')) lost.push(orderId);
    }
    // no sweep looks for their batch again (a dead letter retried by hand still carries them)
    if (dropped.length > 0) await forgetCarriers(queues, dropped);
    if (lost.length === 0) return;
    metrics.acceptedOrdersLost.inc(lost.length);
    log.error({ orderIds: lost }, 'accepted orders lost: not in MySQL, no job left, and their reservation is gone from Redis (evicted, or Redis lost data)');
  }

  /**
   * The states of the jobs that may carry the order: the intake's batch, if it was in one,
   * then its single job (id = order id), last; not read while the batch will still run.
   */
  private async jobStates(orderId: string): Promise<Array<JobState | 'unknown'>> {
    const { queues } = this.deps;
    const carrier = await carrierOf(queues, orderId);
    const batch = carrier === undefined ? [] : [await queues.orders.getJobState(carrier)];
    if (!batch.every(hasEnded)) return batch;
    return [...batch, await queues.orders.getJobState(jobId.persistOrder(orderId))];
  }

  /**
   * An order waiting for a job that will still run is only behind a backlog: left alone, and
   * not counted, or every sweep during a long backlog would report it recovered again. An
   * order with none gets one: a missing job is added; one that has ended (failed after its
   * attempts, stalled by crashed workers too often, or completed before the accepted set was
   * cleared) is retried with fresh attempts, since adding under an id that exists does
   * nothing; an ended batch is not retried as a whole, its order goes on as a single job.
   * Returns whether it did either.
   */
  private async recover(order: AcceptedOrder): Promise<boolean> {
    const { queues, inventory } = this.deps;
    const states = await this.jobStates(order.orderId);
    if (!states.every(hasEnded)) return false;
    const state = states.at(-1)!;
    const id = jobId.persistOrder(order.orderId);
    // a job may have persisted the order (and been removed) since this sweep read the
    // accepted set: its worker clears the set before the job completes, so a read now tells
    if (!(await inventory.awaitsPersisting(order.orderId))) return false;
    if (state !== 'unknown') {
      const job = await queues.orders.getJob(id);
      if (job) {
        await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
        return true;
      }
    }
    await enqueuePersistOrder(queues, order);
    return true;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}

/** A job that will not run again by itself, or that is not there at all. */
function hasEnded(state: JobState | 'unknown'): state is 'unknown' | 'failed' | 'completed' {
  return state === 'unknown' || state === 'failed' || state === 'completed';
}

import type { AcceptedOrder } from '@orders/domain';
import type { OrderMetrics } from '@orders/metrics';
import { carrierOf, enqueuePersistOrder, jobId, type OrderQueues } from '@orders/queues';
import type { Inventory } from '@orders/stock';
import type { JobState } from 'bullmq';
import type { Logger } from 'pino';

/**
 * The safety net behind the intake's 202: an order accepted in Redis whose persist job
 * went missing (the enqueue failed after the reservation) is enqueued again. An order
 * whose job still exists (its single job, or the intake's batch that carries it) is untouched.
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
      const unpersisted = await inventory.findStrandedOrders(clock(), this.options.strandedAfterMs);
      let recovered = 0;
      for (const order of unpersisted) if (await this.recover(order)) recovered++;
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
   * An order still waiting for (or in) its job is only behind a backlog: left alone, and not
   * counted, or every sweep during a long backlog would report it recovered again. Its job is
   * the intake's batch that carries it, or the single job with its id. A missing job is
   * added; one that has ended (failed after its attempts, stalled by crashed workers too
   * often, or completed before the accepted set was cleared) is retried with fresh attempts,
   * since adding under an id that exists does nothing; an ended batch is not retried as a
   * whole, its order goes on as a single job. Returns whether it did either.
   */
  private async recover(order: AcceptedOrder): Promise<boolean> {
    const { queues, inventory } = this.deps;
    const carrier = await carrierOf(queues, order.orderId);
    if (carrier !== undefined && !hasEnded(await queues.orders.getJobState(carrier))) return false;
    const id = jobId.persistOrder(order.orderId);
    const state = await queues.orders.getJobState(id);
    if (!hasEnded(state)) return false;
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

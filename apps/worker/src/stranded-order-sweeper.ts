import type { AcceptedOrder } from '@orders/domain';
import type { OrderMetrics } from '@orders/metrics';
import { enqueuePersistOrder, type OrderQueues } from '@orders/queues';
import type { Inventory } from '@orders/stock';
import type { Logger } from 'pino';

/**
 * The safety net behind the intake's 202: an order accepted in Redis whose persist job
 * went missing (the enqueue failed after the reservation) is enqueued again. Job ids
 * are order ids, so orders whose job still exists are untouched.
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
      const stranded = await inventory.findStrandedOrders(clock(), this.options.strandedAfterMs);
      for (const order of stranded) await this.enqueue(order);
      if (stranded.length > 0) {
        metrics.strandedOrdersRecovered.inc(stranded.length);
        log.warn({ count: stranded.length }, 'enqueued accepted orders that were not yet in MySQL');
      }
      return stranded.length;
    } catch (error) {
      log.error({ err: error }, 'stranded-order sweep failed');
      return 0;
    }
  }

  /**
   * Adding a job under an id that already exists does nothing, so an order whose own job
   * has ended (failed after its attempts, stalled by crashed workers too often, or completed
   * before the accepted set was cleared) gets that job retried with fresh attempts instead.
   */
  private async enqueue(order: AcceptedOrder): Promise<void> {
    const job = await enqueuePersistOrder(this.deps.queues, order);
    const state = await job.getState();
    if (state === 'failed' || state === 'completed') await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}

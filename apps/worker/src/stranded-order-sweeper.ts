import type { AcceptedOrder } from '@orders/domain';
import type { OrderMetrics } from '@orders/metrics';
import { carrierOf, enqueuePersistOrder, forgetCarriers, jobId, type OrderQueues } from '@orders/queues';
import { StockNotReplicated, SweepPages, type Inventory } from '@orders/stock';
import type { JobState } from 'bullmq';
import type { Logger } from 'pino';
import { RoundsEveryInterval } from './rounds-every-interval.js';

/**
 * The safety net behind the intake's 202: an order accepted in Redis whose persist job
 * went missing (the enqueue failed after the reservation) is enqueued again. An order
 * whose job still exists (its single job, or the intake's batch that carries it) is untouched.
 * One that can no longer be persisted (its reservation and its job are gone) is reported lost.
 */
export class StrandedOrderSweeper {
  private readonly rounds: RoundsEveryInterval;
  /** Where the next sweep reads each group of the accepted set from (Inventory.findStrandedOrders). */
  private readonly pages: SweepPages;

  /** `pageSize`: the accepted orders a sweep reads of each group at most (SWEEP_PAGE_SIZE). */
  constructor(
    private readonly deps: { inventory: Inventory; queues: Pick<OrderQueues, 'orders'>; metrics: OrderMetrics; clock: () => Date; log: Logger },
    private readonly options: { intervalMs: number; strandedAfterMs: number; pageSize: number },
  ) {
    this.rounds = new RoundsEveryInterval(options.intervalMs, () => this.sweep());
    this.pages = new SweepPages(options.pageSize);
  }

  start(): this {
    this.rounds.start();
    return this;
  }

  async sweep(): Promise<number> {
    const { inventory, metrics, clock, log } = this.deps;
    let recovered = 0;
    try {
      const now = clock();
      for (const group of inventory.keys.groups()) {
        const found = await inventory.findStrandedOrders(group, now, this.options.strandedAfterMs, this.pages.pageOf(group));
        const dropped = await this.reportLost(found.withoutReservation);
        let recoveredHere = 0;
        // a reservation answered 503 for want of a replica's acknowledgement is on the master alone: persisted,
        // a failover to a replica that missed it would sell its units again; it waits until the replicas hold it
        const replicated = found.stranded.length === 0 || (await inventory.awaitGroupReplicated(group).then(
          () => true,
          (error: unknown) => {
            if (!(error instanceof StockNotReplicated)) throw error;
            log.warn({ group, stranded: found.stranded.length, reason: error.message }, 'stranded orders left for the next sweep: the Redis replicas do not hold them yet');
            return false;
          },
        ));
        for (const order of replicated ? found.stranded : []) {
          try {
            if (await this.recover(order)) recoveredHere++;
          } catch (error) {
            // one order's trouble leaves the others to this sweep, and itself to the next
            log.error({ err: error, orderId: order.orderId }, 'could not recover a stranded order');
          }
        }
        // counted at once: on a cluster the other groups' pages take a while, and the order may be in MySQL before
        metrics.strandedOrdersRecovered.inc(recoveredHere);
        recovered += recoveredHere;
        // the orders settled, dropped or enqueued again leave the set (once persisted): the next page starts that much sooner
        this.pages.read(group, found.read, found.settled + dropped + recoveredHere);
      }
    } catch (error) {
      log.error({ err: error }, 'stranded-order sweep failed');
    }
    if (recovered > 0) log.warn({ count: recovered }, 'enqueued accepted orders that were not yet in MySQL and had no job left');
    return recovered;
  }

  /**
   * Orders whose reservation is gone from Redis leave the accepted set once no job of theirs
   * will run: nothing can persist them from Redis any more. If no job of theirs is left at
   * all, their buyers' 202s are lost orders: reported once, loudly (`AcceptedOrdersLost`).
   * One whose job ended still has it: a failed job waits in the dead letters (`DeadLettersWaiting`),
   * a completed one wrote it. Returns how many left the set.
   */
  private async reportLost(orderIds: readonly string[]): Promise<number> {
    const { queues, inventory, metrics, log } = this.deps;
    const dropped: string[] = [];
    const lost: string[] = [];
    for (const orderId of orderIds) {
      const jobs = await this.jobsOf(orderId);
      if (!jobs.every(({ state }) => hasEnded(state)) || !(await inventory.dropAcceptedOrder(orderId))) continue;
      dropped.push(orderId);
      if (jobs.every(({ state }) => state === 'unknown')) lost.push(orderId);
    }
    // no sweep looks for their batch again (a dead letter retried by hand still carries them)
    if (dropped.length > 0) await forgetCarriers(queues, dropped);
    if (lost.length > 0) {
      metrics.acceptedOrdersLost.inc(lost.length);
      log.error({ orderIds: lost }, 'accepted orders lost: not in MySQL, no job left, and their reservation is gone from Redis (evicted, or Redis lost data)');
    }
    return dropped.length;
  }

  /**
   * The jobs that may carry the order, with their states: the intake's batch, if it was in
   * one, then its single job (id = order id), last; not read while the batch will still run.
   */
  private async jobsOf(orderId: string): Promise<CarryingJob[]> {
    const { queues } = this.deps;
    const carrier = await carrierOf(queues, orderId);
    const batch = carrier === undefined ? [] : [{ id: carrier, state: await queues.orders.getJobState(carrier) }];
    if (!batch.every(({ state }) => hasEnded(state))) return batch;
    const id = jobId.persistOrder(orderId);
    return [...batch, { id, state: await queues.orders.getJobState(id) }];
  }

  /**
   * An order waiting for a job that will still run is only behind a backlog: left alone, and
   * not counted, or every sweep during a long backlog would report it recovered again. So is
   * one whose job (its own, or the batch that carried it) failed, whatever failed it (its
   * attempts used up, or workers holding it crashed on it more than `WORKER_MAX_STALLED_COUNT`
   * times): that job waits in the dead letters for the operator (`npm run dlq`). Run again
   * here it would fail again, or crash the workers again, and be dead-lettered anew every
   * sweep for as long as the order's reservation lasts. An order with none gets one: a
   * missing job is added; its own job completed before the accepted set was cleared is
   * retried with fresh attempts, since adding under an id that exists does nothing; an ended
   * batch is not retried as a whole, its order goes on as a single job.
   * Returns whether it did either.
   */
  private async recover(order: AcceptedOrder): Promise<boolean> {
    const { queues, inventory } = this.deps;
    const jobs = await this.jobsOf(order.orderId);
    if (!jobs.every(({ state }) => hasEnded(state)) || jobs.some(({ state }) => state === 'failed')) return false;
    // a job may have persisted the order (and been removed) since this sweep read the
    // accepted set: its worker clears the set before the job completes, so a read now tells
    if (!(await inventory.awaitsPersisting(order.orderId))) return false;
    const own = jobs.at(-1)!;
    const completed = own.state === 'completed' ? await queues.orders.getJob(own.id) : undefined;
    if (completed) {
      try {
        await completed.retry('completed', { resetAttemptsMade: true });
      } catch (error) {
        // the other orders replica's sweeper retried it first: it runs, or ran, as wanted
        if (!hasEnded(await queues.orders.getJobState(own.id)) || !(await inventory.awaitsPersisting(order.orderId))) return false;
        throw error;
      }
      return true;
    }
    await enqueuePersistOrder(queues, order);
    return true;
  }

  async stop(): Promise<void> {
    await this.rounds.stop();
  }
}

interface CarryingJob {
  id: string;
  state: JobState | 'unknown';
}

/** A job that will not run again by itself, or that is not there at all. */
function hasEnded(state: JobState | 'unknown'): boolean {
  return state === 'unknown' || state === 'failed' || state === 'completed';
}

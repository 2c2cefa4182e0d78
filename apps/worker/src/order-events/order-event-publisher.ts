import type { OrderMetrics } from '@orders/metrics';
import type { OrderEventRepository } from '@orders/persistence';
import type { RedisClient } from '@orders/stock';
import type { Logger } from 'pino';
import { WebhookDispatcher, type WebhookSettings } from './webhook-dispatcher.js';

export interface OrderEventSettings {
  maxLen: number;
  pollMs: number;
  batchSize: number;
  /**
   * How long the lock's holder may leave its connection silent before MySQL ends it and frees
   * the lock for another worker: longer than a turn (publishBatch, deliverDue, the pause) ever
   * takes, so only a holder that froze (a paused VM, a network partition) loses it.
   */
  lockLapseMs: number;
  /** how long the webhooks' delivery attempts are kept (GET /v1/admin/webhooks/:id/deliveries) */
  deliveriesKeptMs: number;
  webhooks: WebhookSettings;
}

const BACKLOG_COUNT_EVERY_MS = 1_000;
/** The delivery log's old attempts are deleted this often, a chunk a turn until none is left. */
const DELIVERIES_PRUNED_EVERY_MS = 3_600_000;
const DELIVERIES_PRUNED_PER_TURN = 5_000;
/** A count that stops here stays quick however far behind the outbox is; the alert's threshold is far below. */
const BACKLOG_COUNTED_UP_TO = 1_000_000;

/**
 * Moves order events from the outbox (order_history rows not yet published) to the Redis
 * Stream, then on to the webhooks. Every worker serving `events` runs one; a MySQL named
 * lock lets one of them work at a time, because the stream's order is the publisher's
 * order, and MySQL frees the lock when its holder dies (or goes silent: lockLapseMs), so
 * another takes over.
 *
 * At least once: a publisher that dies between XADD and marking the rows published
 * publishes them again; consumers drop repeats by eventId (or by the order's version).
 */
export class OrderEventPublisher {
  private stopped = false;
  private countedAt = 0;
  private pruneAt = 0;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly webhooks: WebhookDispatcher;

  constructor(
    private readonly deps: { redis: RedisClient; events: OrderEventRepository; metrics: OrderMetrics; log: Logger },
    private readonly settings: OrderEventSettings,
  ) {
    this.webhooks = new WebhookDispatcher(deps, settings.webhooks);
  }

  start(): this {
    this.loop = this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { events, log } = this.deps;
    while (!this.stopped) {
      try {
        const active = await events.whileHoldingLock('order-events-publisher', this.settings.lockLapseMs, async (lock) => {
          log.info('order-event publisher active');
          // another process may have delivered while this one did not hold the lock: cursors from MySQL
          this.webhooks.forgetProgress();
          try {
            while (!this.stopped && (await lock.stillHeld())) {
              const published = await this.publishBatch();
              await this.webhooks.deliverDue();
              await this.pruneDeliveries();
              if (published < this.settings.batchSize) await this.pause(this.settings.pollMs);
            }
          } finally {
            await this.webhooks.finishBatchesUnderWay();
            // the next holder reports the backlog from now on; this process's last figure would stand for ever
            this.deps.metrics.orderEventsBehind.set(0);
          }
        });
        // another process publishes: check back now and then to take over if it dies
        if (!active) await this.pause(this.settings.pollMs * 5);
      } catch (error) {
        log.error({ err: error }, 'order-event publisher failed; it starts again');
        await this.pause(this.settings.pollMs * 5);
      }
    }
  }

  /** One batch from the outbox to the stream; marked published only after Redis took all of it. */
  private async publishBatch(): Promise<number> {
    const { redis, events, metrics } = this.deps;
    const batch = await events.unpublished(this.settings.batchSize);
    if (batch.length > 0) {
      // all or none (MULTI): one add refused amid a batch added again whole would put its event on the
      // stream after a later version of its order, which a receiver keeping each order's last version drops
      const adding = redis.multi();
      for (const event of batch) {
        adding.xadd(this.settings.webhooks.streamKey, 'MAXLEN', '~', this.settings.maxLen, '*', 'eventId', event.eventId, 'orderId', event.orderId, 'event', JSON.stringify(event));
      }
      const failed = (await adding.exec())?.find(([error]) => error);
      if (failed) throw failed[0];
      await events.markPublished(
        batch.map((event) => event.eventId),
        new Date(),
      );
      metrics.orderEventsPublished.inc(batch.length);
    }
    if (batch.length < this.settings.batchSize) metrics.orderEventsBehind.set(0);
    else if (Date.now() - this.countedAt >= BACKLOG_COUNT_EVERY_MS) {
      // counted once a second, not after every full batch: a backlog's count costs a scan of its index
      this.countedAt = Date.now();
      metrics.orderEventsBehind.set(await events.countUnpublished(BACKLOG_COUNTED_UP_TO));
    }
    return batch.length;
  }

  /**
   * One chunk of the webhooks' delivery log past its keeping (a row per attempt, a receiver down
   * for days adds thousands), each turn until none is left, then again an hour later: a chunk at
   * a time, so publishing waits for none of it long.
   */
  private async pruneDeliveries(): Promise<void> {
    if (Date.now() < this.pruneAt) return;
    try {
      const pruned = await this.deps.events.pruneDeliveries(this.settings.deliveriesKeptMs, DELIVERIES_PRUNED_PER_TURN);
      if (pruned === 0) this.pruneAt = Date.now() + DELIVERIES_PRUNED_EVERY_MS;
    } catch (error) {
      // the log waits a turn; the events do not
      this.deps.log.warn({ err: error }, 'could not delete old webhook delivery attempts; tried again next turn');
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

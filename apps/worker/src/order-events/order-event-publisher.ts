import type { OrderMetrics } from '@orders/metrics';
import type { OrderEvent, OrderEventRepository } from '@orders/persistence';
import type { RedisClient } from '@orders/stock';
import type { Logger } from 'pino';
import { WebhookDispatcher, type WebhookSettings } from './webhook-dispatcher.js';

export interface OrderEventSettings {
  maxLen: number;
  /** how long the stream keeps an entry at most (EVENTS_STREAM_KEPT_MS); 0: as many as `maxLen` whatever their age */
  keptMs: number;
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
  /**
   * How many replicas must hold a batch before it is marked published (EVENTS_REPLICA_ACKS), and
   * the connection the batches and their WAITs go on (a WAIT holds it up to `timeoutMs` while a
   * replica is away). Without it a failover to a replica that had not received the last batches
   * loses their events silently: MySQL says published, the stream no longer has them.
   */
  replication?: EventReplication;
}

export interface EventReplication {
  acks: number;
  timeoutMs: number;
  connection: RedisClient;
}

/** Fewer replicas than EVENTS_REPLICA_ACKS acknowledged a batch: it stays unpublished, and is waited for again next turn. */
export class EventsNotReplicated extends Error {
  override readonly name = 'EventsNotReplicated';
}

/** A batch on the stream that replicas have not acknowledged yet: its events, and its last entry's id. */
interface UnacknowledgedBatch {
  eventIds: Set<string>;
  lastEntryId: string;
}

const BACKLOG_COUNT_EVERY_MS = 1_000;
/** The delivery log's old attempts are deleted this often, a chunk a turn until none is left. */
const DELIVERIES_PRUNED_EVERY_MS = 3_600_000;
const DELIVERIES_PRUNED_PER_TURN = 5_000;
/** The stream's entries older than `keptMs` are trimmed this often: an XTRIM by MINID over whole macro nodes is cheap. */
const STREAM_TRIMMED_EVERY_MS = 60_000;
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
  private trimAt = 0;
  /** when publishing is tried again after a failed turn */
  private publishAt = 0;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly webhooks: WebhookDispatcher;
  private unacknowledged: UnacknowledgedBatch | undefined;

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
            // a failed publishing keeps the lock: the webhooks get what the stream holds meanwhile, and
            // their figures stand rather than go with the lock each failed turn
            while (!this.stopped && (await lock.stillHeld())) {
              const published = await this.publishDue();
              await this.webhooks.deliverDue();
              await this.pruneDeliveries();
              await this.trimByAge();
              if (published < this.settings.batchSize) await this.pause(this.settings.pollMs);
            }
          } finally {
            await this.webhooks.finishBatchesUnderWay();
          }
          // the next holder reports the backlog from now on; this process's last figure would stand for ever
          this.deps.metrics.orderEventsBehind.set(0);
        });
        if (!active) {
          // another process publishes and reports the backlog: check back now and then to take over if it dies
          this.deps.metrics.orderEventsBehind.set(0);
          await this.pause(this.settings.pollMs * 5);
        }
      } catch (error) {
        log.error({ err: error }, 'order-event publisher failed; it starts again');
        await this.pause(this.settings.pollMs * 5);
      }
    }
  }

  /**
   * One batch, unless publishing failed within the last few polls for want of replicas: then it
   * waits that long, tried no faster than when a failure gave the lock up. Any other failure
   * (Redis away, or this process's connection to it broken) gives the lock up: kept, a worker
   * that can never publish would keep every other from publishing.
   */
  private async publishDue(): Promise<number> {
    if (Date.now() < this.publishAt) return 0;
    try {
      return await this.publishBatch();
    } catch (error) {
      // the backlog grows, and the operator is shown it
      await this.countBacklog().catch(() => undefined);
      // too few replicas is Redis's state, the same for every worker: another would fare no better
      if (!(error instanceof EventsNotReplicated)) throw error;
      this.publishAt = Date.now() + this.settings.pollMs * 5;
      this.deps.log.warn({ err: error }, 'order events not published: too few Redis replicas hold them; waited for again');
      return 0;
    }
  }

  /** One batch from the outbox to the stream; marked published only after Redis took all of it. */
  private async publishBatch(): Promise<number> {
    const { events, metrics } = this.deps;
    const batch = await events.unpublished(this.settings.batchSize);
    if (batch.length > 0) {
      await this.addToStream(batch);
      await events.markPublished(
        batch.map((event) => event.eventId),
        new Date(),
      );
      this.unacknowledged = undefined;
      metrics.orderEventsPublished.inc(batch.length);
    }
    if (batch.length < this.settings.batchSize) metrics.orderEventsBehind.set(0);
    else if (Date.now() - this.countedAt >= BACKLOG_COUNT_EVERY_MS) await this.countBacklog();
    return batch.length;
  }

  /** Counted once a second at most, not after every full batch: a backlog's count costs a scan of its index. */
  private async countBacklog(): Promise<void> {
    this.countedAt = Date.now();
    this.deps.metrics.orderEventsBehind.set(await this.deps.events.countUnpublished(BACKLOG_COUNTED_UP_TO));
  }

  /**
   * Adds the batch to the stream; with `replication`, returns once enough replicas hold it. A batch
   * they did not acknowledge in time stays on the stream, and the next turn waits for it again
   * rather than adding it again, unless the stream lost it meanwhile (a failover).
   */
  private async addToStream(batch: OrderEvent[]): Promise<void> {
    const { streamKey } = this.settings.webhooks;
    const replication = this.settings.replication;
    const connection = replication?.connection ?? this.deps.redis;
    const onStream = replication && this.unacknowledged ? await this.stillOnStream(connection, this.unacknowledged) : undefined;
    const fresh = batch.filter((event) => !onStream?.eventIds.has(event.eventId));
    // all or none (MULTI): one add refused amid a batch added again whole would put its event on the
    // stream after a later version of its order, which a receiver keeping each order's last version drops
    const adding = connection.multi();
    for (const event of fresh) {
      adding.xadd(streamKey, 'MAXLEN', '~', this.settings.maxLen, '*', 'eventId', event.eventId, 'orderId', event.orderId, 'event', JSON.stringify(event));
    }
    // Setting the stream's last id to what it is changes nothing and is replicated: it makes this
    // connection's write offset, which WAIT waits for, cover the entries already added (a reconnect resets it).
    if (onStream && fresh.length === 0) adding.xsetid(streamKey, onStream.lastEntryId);
    const added = (await adding.exec()) ?? [];
    const failed = added.find(([error]) => error);
    if (failed) {
      // the next turn adds the whole batch again rather than trust what this one left
      this.unacknowledged = undefined;
      throw failed[0];
    }
    if (!replication) return;
    const lastEntryId = fresh.length > 0 ? String(added.at(-1)![1]) : onStream!.lastEntryId;
    this.unacknowledged = { eventIds: new Set([...(onStream?.eventIds ?? []), ...fresh.map((event) => event.eventId)]), lastEntryId };
    // with the stream's key, so that a cluster sends the WAIT to the node that holds it
    const [, [waitError, acknowledged] = []] = (await connection.pipeline().exists(streamKey).wait(replication.acks, replication.timeoutMs).exec()) ?? [];
    if (waitError) throw waitError;
    if (Number(acknowledged) < replication.acks) {
      throw new EventsNotReplicated(`${Number(acknowledged)} of ${replication.acks} replicas acknowledged ${batch.length} events within ${replication.timeoutMs} ms`);
    }
  }

  /** The unacknowledged batch, if the stream still ends with it: else it was lost (a failover), or another publisher added after it, and it is added again. */
  private async stillOnStream(connection: RedisClient, batch: UnacknowledgedBatch): Promise<UnacknowledgedBatch | undefined> {
    const [newest] = await connection.xrevrange(this.settings.webhooks.streamKey, '+', '-', 'COUNT', 1);
    return newest?.[0] === batch.lastEntryId ? batch : undefined;
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

  /**
   * Trims the stream's entries older than `keptMs`, by Redis's clock (whose milliseconds its
   * entry ids are), once a minute: MAXLEN alone keeps its million entries however slowly they
   * came, ~0.4 GB that a shop of a thousand orders a day would hold for months. A webhook
   * behind by longer loses what is trimmed, as one behind by more than `maxLen` entries does
   * (WebhookEventsTrimmed).
   */
  private async trimByAge(): Promise<void> {
    if (this.settings.keptMs === 0 || Date.now() < this.trimAt) return;
    this.trimAt = Date.now() + STREAM_TRIMMED_EVERY_MS;
    try {
      const [seconds, micros] = await this.deps.redis.time();
      const oldestKept = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - this.settings.keptMs;
      // never the newest entry, however old: after a quiet week an empty stream read to the dispatcher as events
      // trimmed past every receiver's cursor (a critical page for receivers that had missed nothing)
      const [newest] = (await this.deps.redis.xrevrange(this.settings.webhooks.streamKey, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
      const keptFrom = newest && Number(newest[0].split('-')[0]) < oldestKept ? newest[0] : String(oldestKept);
      await this.deps.redis.xtrim(this.settings.webhooks.streamKey, 'MINID', '~', keptFrom);
    } catch (error) {
      // the stream waits a minute; the events do not
      this.deps.log.warn({ err: error }, 'could not trim the order-event stream by age; tried again in a minute');
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

import { AddressInside, literalInside, lookupOutside, signBody } from '@orders/clients';
import type { OrderMetrics } from '@orders/metrics';
import type { OrderEvent, OrderEventRepository, WebhookRow } from '@orders/persistence';
import type { RedisClient } from '@orders/stock';
import type { Logger } from 'pino';
// undici's own fetch: Node's global one bundles another undici, whose dispatchers this Agent need not match
import { Agent, fetch } from 'undici';

export interface WebhookSettings {
  streamKey: string;
  batchSize: number;
  timeoutMs: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** WEBHOOK_PRIVATE_RECEIVERS: false, a receiver whose host resolves into the shop's own networks is sent nothing */
  privateReceivers: boolean;
}

interface WebhookProgress {
  /** the last stream entry this webhook has acknowledged (2xx) */
  cursor: string;
  inFlight: boolean;
  failures: number;
  retryAt: number;
  /** the cursor last reported trimmed past, so a receiver still down is reported once */
  trimmedAt?: string;
  /** when the oldest event its receiver has not acknowledged was added (stream time), as last read; undefined: none */
  nextEventAt?: number;
  /** the stream dropped events after its cursor, as last read: they are missed until it catches up past them */
  missing: boolean;
}

const WEBHOOK_RELOAD_MS = 2_000;
const DELIVERY_OUTCOMES = ['delivered', 'failed'] as const;
/**
 * Batches one delivery sends back to back while the receiver acknowledges full ones: a
 * receiver behind by a sale's events catches up at this many batches per publisher turn,
 * not one (~500 events a second at the default poll), before the stream is trimmed.
 */
const BATCHES_PER_TURN = 20;

/** Why a delivery to an address of the shop's own networks is not sent. */
const notSentInside = (address: string) => `not sent: its host resolves to ${address}, an address of the shop's own networks (WEBHOOK_PRIVATE_RECEIVERS is false)`;

/** When a stream entry was added: its id's milliseconds. */
const addedAt = (streamId: string): number => Number(streamId.split('-')[0]);

/** Stream ids compared in order (milliseconds, then sequence). */
function streamIdAfter(a: string, b: string): boolean {
  const [aMs, aSeq] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bMs, bSeq] = b.split('-').map(BigInt) as [bigint, bigint];
  return aMs > bMs || (aMs === bMs && aSeq > bSeq);
}

/**
 * Delivers the order-event stream to every registered webhook, in stream order: a batch
 * goes out only after the previous one was acknowledged, so a receiver sees the events of
 * an order in order. A failed batch is retried with exponential backoff, every attempt
 * logged; one slow or failing receiver holds back only itself. A receiver behind gets up to
 * BATCHES_PER_TURN batches back to back; one behind the trimmed stream is reported.
 */
export class WebhookDispatcher {
  private webhooks: WebhookRow[] = [];
  private loadedAt = 0;
  private readonly progress = new Map<string, WebhookProgress>();
  /** The webhooks this process exports series of: kept apart from `progress`, which a lock taken again clears, so a removed one's series always go */
  private readonly exported = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private windingDown = false;
  /** WEBHOOK_PRIVATE_RECEIVERS false: connections that go only to the addresses their one lookup found outside the shop's networks */
  private readonly outsideOnly: Agent | undefined;

  constructor(
    private readonly deps: { redis: RedisClient; events: OrderEventRepository; metrics: OrderMetrics; log: Logger },
    private readonly settings: WebhookSettings,
  ) {
    this.outsideOnly = settings.privateReceivers ? undefined : new Agent({ connect: { lookup: lookupOutside } });
  }

  /** Starts a delivery for every webhook that is due and has none under way; does not wait for them. */
  async deliverDue(now = Date.now()): Promise<void> {
    if (now - this.loadedAt >= WEBHOOK_RELOAD_MS) {
      this.webhooks = await this.deps.events.webhooks();
      this.loadedAt = now;
      const registered = new Set(this.webhooks.map((webhook) => webhook.webhook_id));
      for (const webhookId of new Set([...this.progress.keys(), ...this.exported])) {
        if (registered.has(webhookId)) continue;
        this.progress.delete(webhookId);
        this.exported.delete(webhookId);
        // a webhook removed is failing no more (WebhookDeliveriesFailing), nor behind
        for (const outcome of DELIVERY_OUTCOMES) this.deps.metrics.webhookDeliveries.remove({ webhook: webhookId, outcome });
        this.deps.metrics.webhookBehind.remove({ webhook: webhookId });
        this.deps.metrics.webhookMissingEvents.remove({ webhook: webhookId });
      }
    }
    for (const webhook of this.webhooks) {
      let progress = this.progress.get(webhook.webhook_id);
      if (!progress) {
        this.progress.set(webhook.webhook_id, (progress = { cursor: webhook.stream_cursor, inFlight: false, failures: 0, retryAt: 0, missing: false }));
        // its series from 0, so that a rate sees its first delivery
        for (const outcome of DELIVERY_OUTCOMES) this.deps.metrics.webhookDeliveries.inc({ webhook: webhook.webhook_id, outcome }, 0);
        this.exported.add(webhook.webhook_id);
      }
      // how far behind each receiver is, its retries' waits included: a receiver down falls further behind every turn
      this.deps.metrics.webhookBehind.set({ webhook: webhook.webhook_id }, progress.nextEventAt === undefined ? 0 : Math.max(0, now - progress.nextEventAt) / 1000);
      this.deps.metrics.webhookMissingEvents.set({ webhook: webhook.webhook_id }, progress.missing ? 1 : 0);
      if (progress.inFlight || progress.retryAt > now) continue;
      progress.inFlight = true;
      const delivery = this.deliverBatches(webhook, progress)
        // Redis or MySQL failing mid-delivery: the batch goes again after the backoff (never an
        // unhandled rejection, which would end the worker and every queue it serves)
        .catch((error: unknown) => {
          this.deps.log.error({ err: error, webhookId: webhook.webhook_id }, 'webhook delivery failed before it was recorded; it is tried again');
          this.backOff(progress);
        })
        .finally(() => {
          progress.inFlight = false;
          this.running.delete(delivery);
        });
      this.running.add(delivery);
    }
  }

  /** Reads every webhook's cursor from MySQL again at the next turn (this process just took the publisher's lock). */
  forgetProgress(): void {
    this.progress.clear();
    this.loadedAt = 0;
    this.windingDown = false;
  }

  /**
   * Waits for the deliveries under way to finish the batch each is sending, with no batch
   * after it (the publisher stops, or loses its lock): a receiver catching up would otherwise
   * hold a stopping worker up to BATCHES_PER_TURN timeouts, past its grace period, killed then
   * mid-batch, the batch sent again by the next publisher.
   */
  async finishBatchesUnderWay(): Promise<void> {
    this.windingDown = true;
    await this.idle();
    // the next holder reports how far behind the receivers are: this process's last figures would stand for ever
    this.deps.metrics.webhookBehind.reset();
    this.deps.metrics.webhookMissingEvents.reset();
    this.deps.metrics.orderEventsStreamSpan.set(0);
  }

  /** Waits for the deliveries under way. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  /** Whether the delivery that started with `progress` still speaks for its webhook: not once it was removed (or its progress forgotten) since. */
  private stillCurrent(webhook: WebhookRow, progress: WebhookProgress): boolean {
    return this.progress.get(webhook.webhook_id) === progress;
  }

  private async deliverBatches(webhook: WebhookRow, progress: WebhookProgress): Promise<void> {
    for (let batch = 0; batch < BATCHES_PER_TURN && !this.windingDown && this.stillCurrent(webhook, progress); batch++) {
      const sent = await this.deliverNext(webhook, progress);
      if (sent < this.settings.batchSize || progress.failures > 0) return;
    }
  }

  /**
   * The stream keeps its newest EVENTS_STREAM_MAXLEN entries, none older than
   * EVENTS_STREAM_KEPT_MS: a receiver that fell further behind lost the events trimmed past
   * its cursor. Counted and logged (the alert WebhookEventsTrimmed), once per cursor, so the
   * receiver's owner can read them from the order history.
   */
  private reportTrimmed(webhook: WebhookRow, progress: WebhookProgress, nextKept: string | undefined): void {
    if (progress.trimmedAt === progress.cursor) return;
    progress.trimmedAt = progress.cursor;
    this.deps.metrics.webhookCursorsTrimmed.inc();
    this.deps.log.error({ webhookId: webhook.webhook_id, cursor: progress.cursor, nextKept }, 'webhook fell behind the trimmed order-event stream: events after its cursor were dropped');
  }

  /**
   * The batch after the cursor and, read in the same instant (one MULTI), whether the stream
   * dropped events after the cursor: its oldest entry kept is past the cursor (whenever the trim
   * was: before this turn, or between two of its batches, a sale adding faster than the receiver
   * takes them); for a receiver registered on an empty stream that acknowledged nothing yet, the
   * stream has had entries removed at all (Redis 7 counts those added). A receiver whose
   * acknowledged entry alone was trimmed is counted too: the stream cannot tell it lost nothing.
   */
  private async readAfter(cursor: string): Promise<{ entries: Array<[string, string[]]>; trimmedPast: boolean }> {
    const { streamKey, batchSize } = this.settings;
    const [range, info] = (await this.deps.redis.multi().xrange(streamKey, `(${cursor}`, '+', 'COUNT', batchSize).xinfo('STREAM', streamKey).exec()) ?? [];
    if (!range || range[0]) throw range?.[0] ?? new Error('no reply to the stream read');
    const entries = range[1] as Array<[string, string[]]>;
    // no stream yet: XINFO refuses the missing key, and nothing was trimmed
    if (!info || info[0]) return { entries, trimmedPast: false };
    const fields = info[1] as unknown[];
    const field = (name: string) => (fields.includes(name) ? fields[fields.indexOf(name) + 1] : undefined);
    const oldest = (field('first-entry') as [string, string[]] | null | undefined)?.[0];
    // how far back the stream reaches: a receiver behind by as long loses what the next trim drops (WebhookFallingBehind)
    this.deps.metrics.orderEventsStreamSpan.set(oldest === undefined ? 0 : Math.max(0, Date.now() - addedAt(oldest)) / 1000);
    if (cursor === '0-0') return { entries, trimmedPast: Number(field('entries-added') ?? 0) > Number(field('length')) };
    return { entries, trimmedPast: oldest !== undefined && streamIdAfter(oldest, cursor) };
  }

  private backOff(progress: WebhookProgress): void {
    progress.failures += 1;
    progress.retryAt = Date.now() + Math.min(this.settings.backoffMs * 2 ** (progress.failures - 1), this.settings.maxBackoffMs);
  }

  /**
   * Why a receiver is sent nothing, null when it may be: its host is an IP literal of the shop's own
   * networks (connected to with no lookup). A name is checked at each delivery by the connection's own
   * lookup (outsideOnly), as it may have come to resolve inside since it was registered (or was
   * registered before the check); the socket goes to the addresses that lookup checked, so a name
   * answering otherwise when asked again (DNS rebinding) reaches nothing inside.
   */
  private receiverInside(url: string): string | null {
    if (this.settings.privateReceivers) return null;
    const inside = literalInside(new URL(url).hostname);
    return inside && notSentInside(inside);
  }

  /** Sends the batch after the cursor; returns how many events it held (0: nothing to send). */
  private async deliverNext(webhook: WebhookRow, progress: WebhookProgress): Promise<number> {
    const { entries, trimmedPast } = await this.readAfter(progress.cursor);
    progress.missing = trimmedPast;
    progress.nextEventAt = entries[0] && addedAt(entries[0][0]);
    if (trimmedPast) this.reportTrimmed(webhook, progress, entries[0]?.[0]);
    if (entries.length === 0) return 0;
    const events = entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('event') + 1]!) as OrderEvent);
    const attempt = progress.failures + 1;
    const body = JSON.stringify({ webhookId: webhook.webhook_id, attempt, sentAt: new Date().toISOString(), events });
    const started = Date.now();
    let statusCode: number | null = null;
    let error = this.receiverInside(webhook.url);
    if (error === null) {
      try {
        const response = await fetch(webhook.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-signature': signBody(webhook.secret, body), 'x-webhook-id': webhook.webhook_id },
          body,
          signal: AbortSignal.timeout(this.settings.timeoutMs),
          // a receiver answers for itself: a redirect is a failed delivery, not a signed body sent on elsewhere
          redirect: 'manual',
          dispatcher: this.outsideOnly,
        });
        statusCode = response.status;
        // its answer's body is not read: however large, it costs nothing
        await response.body?.cancel();
        if (!response.ok) error = `the receiver answered ${response.status}`;
      } catch (failure) {
        const { name, message, cause } = failure as Error;
        error = cause instanceof AddressInside ? notSentInside(cause.address) : name === 'TimeoutError' ? `no answer within ${this.settings.timeoutMs} ms` : message;
      }
    }
    // counted before it is logged: an attempt MySQL could not log (away, or refusing) was made all the same
    // a webhook removed while its batch was out: its series went with it
    if (this.stillCurrent(webhook, progress)) this.deps.metrics.webhookDeliveries.inc({ webhook: webhook.webhook_id, outcome: error ? 'failed' : 'delivered' });
    const lastEntry = entries.at(-1)![0];
    const moved = await this.deps.events.recordDelivery(
      {
        webhook_id: webhook.webhook_id,
        first_event_id: Number(events[0]!.eventId),
        last_event_id: Number(events.at(-1)!.eventId),
        event_count: events.length,
        attempt,
        outcome: error ? 'failed' : 'delivered',
        status_code: statusCode,
        error: error?.slice(0, 500) ?? null,
        duration_ms: Date.now() - started,
        at: new Date(),
      },
      error ? undefined : { from: progress.cursor, to: lastEntry },
    );
    if (error) {
      this.backOff(progress);
    } else if (!moved) {
      // another publisher moved the cursor since this batch was read (this one lost its lock while it
      // sent): it goes on from there, and this one stops rather than set the cursor back and send again;
      // should it go on, it reads the cursor from MySQL again
      this.progress.delete(webhook.webhook_id);
      this.loadedAt = 0;
      return 0;
    } else {
      progress.cursor = lastEntry;
      progress.failures = 0;
      progress.retryAt = 0;
      progress.missing = false;
      // a batch short of full took every event there was; after a full one the next is at least as new as its last
      progress.nextEventAt = entries.length < this.settings.batchSize ? undefined : addedAt(lastEntry);
    }
    return events.length;
  }
}

import { signBody } from '@orders/clients';
import type { OrderMetrics } from '@orders/metrics';
import type { OrderEvent, OrderEventRepository, WebhookRow } from '@orders/persistence';
import type { RedisClient } from '@orders/stock';

export interface WebhookSettings {
  streamKey: string;
  batchSize: number;
  timeoutMs: number;
  backoffMs: number;
  maxBackoffMs: number;
}

interface WebhookProgress {
  /** the last stream entry this webhook has acknowledged (2xx) */
  cursor: string;
  inFlight: boolean;
  failures: number;
  retryAt: number;
}

const WEBHOOK_RELOAD_MS = 2_000;

/**
 * Delivers the order-event stream to every registered webhook, in stream order: a batch
 * goes out only after the previous one was acknowledged, so a receiver sees the events of
 * an order in order. A failed batch is retried with exponential backoff, every attempt
 * logged; one slow or failing receiver holds back only itself.
 */
export class WebhookDispatcher {
  private webhooks: WebhookRow[] = [];
  private loadedAt = 0;
  private readonly progress = new Map<string, WebhookProgress>();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly deps: { redis: RedisClient; events: OrderEventRepository; metrics: OrderMetrics },
    private readonly settings: WebhookSettings,
  ) {}

  /** Starts a delivery for every webhook that is due and has none under way; does not wait for them. */
  async deliverDue(now = Date.now()): Promise<void> {
    if (now - this.loadedAt >= WEBHOOK_RELOAD_MS) {
      this.webhooks = await this.deps.events.webhooks();
      this.loadedAt = now;
      const registered = new Set(this.webhooks.map((webhook) => webhook.webhook_id));
      for (const webhookId of this.progress.keys()) if (!registered.has(webhookId)) this.progress.delete(webhookId);
    }
    for (const webhook of this.webhooks) {
      let progress = this.progress.get(webhook.webhook_id);
      if (!progress) this.progress.set(webhook.webhook_id, (progress = { cursor: webhook.stream_cursor, inFlight: false, failures: 0, retryAt: 0 }));
      if (progress.inFlight || progress.retryAt > now) continue;
      progress.inFlight = true;
      const delivery = this.deliverNext(webhook, progress).finally(() => {
        progress.inFlight = false;
        this.running.delete(delivery);
      });
      this.running.add(delivery);
    }
  }

  /** Waits for the deliveries under way (the publisher stops, or loses its lock). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  private async deliverNext(webhook: WebhookRow, progress: WebhookProgress): Promise<void> {
    const entries = await this.deps.redis.xrange(this.settings.streamKey, `(${progress.cursor}`, '+', 'COUNT', this.settings.batchSize);
    if (entries.length === 0) return;
    const events = entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('event') + 1]!) as OrderEvent);
    const attempt = progress.failures + 1;
    const body = JSON.stringify({ webhookId: webhook.webhook_id, attempt, sentAt: new Date().toISOString(), events });
    const started = Date.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const response = await fetch(webhook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-signature': signBody(webhook.secret, body), 'x-webhook-id': webhook.webhook_id },
        body,
        signal: AbortSignal.timeout(this.settings.timeoutMs),
      });
      statusCode = response.status;
      await response.arrayBuffer();
      if (!response.ok) error = `the receiver answered ${response.status}`;
    } catch (failure) {
      error = (failure as Error).name === 'TimeoutError' ? `no answer within ${this.settings.timeoutMs} ms` : (failure as Error).message;
    }
    const lastEntry = entries.at(-1)![0];
    await this.deps.events.recordDelivery(
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
      error ? undefined : lastEntry,
    );
    this.deps.metrics.webhookDeliveries.inc({ outcome: error ? 'failed' : 'delivered' });
    if (error) {
      progress.failures += 1;
      progress.retryAt = Date.now() + Math.min(this.settings.backoffMs * 2 ** (progress.failures - 1), this.settings.maxBackoffMs);
    } else {
      progress.cursor = lastEntry;
      progress.failures = 0;
      progress.retryAt = 0;
    }
  }
}

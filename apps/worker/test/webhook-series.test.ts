import { createServer, type Server } from 'node:http';
import { createMetrics } from '@orders/metrics';
import { OrderEventRepository } from '@orders/persistence';
import { createTestEnv, holdTable, tableLockWaits, waitFor, type TestEnv } from '@orders/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDispatcher } from '../src/order-events/webhook-dispatcher.js';
import { addOrderEvents, listenAsReceiver } from './support/webhook-receiver.js';

/**
 * A webhook's series, as the operator's dashboards read them: they go with the webhook (a
 * long-running publisher must not keep one per webhook ever registered), and count each attempt
 * whether or not MySQL has logged it.
 */
describe("a webhook's series, in a publisher that runs for weeks", () => {
  let env: TestEnv;
  let receiver: Server;
  let url = '';
  let slowMs = 0;

  beforeAll(async () => {
    env = await createTestEnv('webhook_series_removed');
    receiver = createServer((request, response) => {
      request.resume();
      request.on('end', () => setTimeout(() => response.writeHead(204).end(), slowMs));
    });
    url = await listenAsReceiver(receiver);
  });
  afterAll(async () => {
    receiver?.close();
    await env?.cleanup();
  });

  const streamKey = () => `${env.config.REDIS_KEY_PREFIX}order-events`;
  const publish = (count: number) => addOrderEvents(env.redis, streamKey(), count);
  const seriesOf = async (metrics: ReturnType<typeof createMetrics>, webhookId: string) =>
    [
      ...(await metrics.webhookDeliveries.get()).values,
      ...(await metrics.webhookBehind.get()).values,
      ...(await metrics.webhookMissingEvents.get()).values,
    ].filter((value) => value.labels.webhook === webhookId).length;
  const setUp = async (webhookId: string) => {
    const events = new OrderEventRepository(env.db);
    for (const webhook of await events.webhooks()) await events.removeWebhook(webhook.webhook_id);
    await env.redis.del(streamKey());
    await events.createWebhook({ webhook_id: webhookId, url, secret: 'receiver-secret-0123', description: null, stream_cursor: '0-0', created_at: new Date() });
    const metrics = createMetrics({ app: 'test' });
    const dispatcher = new WebhookDispatcher({ redis: env.redis, events, metrics, log: pino({ level: 'silent' }) }, { streamKey: streamKey(), batchSize: 10, timeoutMs: 5_000, backoffMs: 50, maxBackoffMs: 200, privateReceivers: true });
    return { events, metrics, dispatcher };
  };

  it('drops the series of a webhook removed while a delivery to it was under way', async () => {
    const { events, metrics, dispatcher } = await setUp('removed-mid-delivery');
    await publish(5);
    slowMs = 500;
    let now = Date.now();
    await dispatcher.deliverDue(now); // a delivery starts; the receiver takes 500 ms
    await events.removeWebhook('removed-mid-delivery');
    now += 2_001;
    await dispatcher.deliverDue(now); // reload: the webhook is gone, its series removed
    await dispatcher.idle(); // the delivery under way ends, and counts itself under the removed webhook
    for (let turn = 0; turn < 5; turn++) {
      now += 2_001;
      await dispatcher.deliverDue(now);
    }
    expect(await seriesOf(metrics, 'removed-mid-delivery')).toBe(0);
  });

  it('drops the series of a webhook removed while this process did not hold the publisher lock', async () => {
    const { events, metrics, dispatcher } = await setUp('removed-between-locks');
    await publish(5);
    slowMs = 0;
    let now = Date.now();
    await dispatcher.deliverDue(now);
    await dispatcher.idle();
    // the publisher loses its lock, another process publishes a while, this one takes the lock again
    await dispatcher.finishBatchesUnderWay();
    await events.removeWebhook('removed-between-locks');
    dispatcher.forgetProgress();
    for (let turn = 0; turn < 5; turn++) {
      now += 2_001;
      await dispatcher.deliverDue(now);
    }
    expect(await seriesOf(metrics, 'removed-between-locks')).toBe(0);
  });

  it('counts a delivery made while MySQL has not logged it (its log held, or MySQL away)', async () => {
    const { metrics, dispatcher } = await setUp('log-held');
    await publish(3);
    slowMs = 0;
    const delivered = async () => (await metrics.webhookDeliveries.get()).values.find((value) => value.labels.webhook === 'log-held' && value.labels.outcome === 'delivered')?.value;
    const held = await holdTable(env.db, 'webhook_deliveries');
    try {
      await dispatcher.deliverDue(Date.now());
      await waitFor(async () => (await tableLockWaits(env.db)) > 0, { what: "the delivery's log waiting for the table" });
      // the receiver has the batch: Grafana's delivery rate says so, whatever MySQL does with the log
      expect(await delivered()).toBe(1);
    } finally {
      await held.release();
    }
    await dispatcher.idle();
    expect(await delivered()).toBe(1);
  });
});

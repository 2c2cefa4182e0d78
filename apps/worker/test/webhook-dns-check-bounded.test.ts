import dnsPromises from 'node:dns/promises';
import { syncBuiltinESMExports } from 'node:module';
import { createMetrics } from '@orders/metrics';
import { OrderEventRepository } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDispatcher } from '../src/order-events/webhook-dispatcher.js';

/**
 * WEBHOOK_PRIVATE_RECEIVERS=false: each delivery's connection looks the receiver's host up
 * itself (lookupOutside). A resolver that does not answer (getaddrinfo: seconds per try, per server)
 * must not hold a delivery past WEBHOOK_TIMEOUT_MS, which bounds the POST, lookup included;
 * nor hold a stopping worker (finishBatchesUnderWay waits for the deliveries under way).
 */
describe('the private-network check before a delivery', () => {
  let env: TestEnv;
  const original = dnsPromises.lookup;
  let release: (() => void) | undefined;

  beforeAll(async () => {
    env = await createTestEnv('webhook_dns_bounded');
    // a resolver that never answers for this one name
    (dnsPromises as { lookup: unknown }).lookup = ((host: string, options: unknown) =>
      host === 'hooks.slow-dns.example'
        ? new Promise((_, reject) => (release = () => reject(Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' }))))
        : original(host, options as never)) as typeof original;
    syncBuiltinESMExports();
  });
  afterAll(async () => {
    (dnsPromises as { lookup: unknown }).lookup = original;
    syncBuiltinESMExports();
    release?.();
    await env?.cleanup();
  });

  it('records a failed delivery within the delivery timeout when DNS does not answer', async () => {
    const streamKey = `${env.config.REDIS_KEY_PREFIX}order-events`;
    await env.redis.xadd(streamKey, '*', 'eventId', '1', 'orderId', 'O1', 'event', JSON.stringify({ eventId: '1', orderId: 'O1', version: 1 }));
    const events = new OrderEventRepository(env.db);
    await events.createWebhook({ webhook_id: 'slow-dns', url: 'http://hooks.slow-dns.example/hook', secret: 'receiver-secret-0123', description: null, stream_cursor: '0-0', created_at: new Date() });
    const dispatcher = new WebhookDispatcher(
      { redis: env.redis, events, metrics: createMetrics({ app: 'test' }), log: pino({ level: 'silent' }) },
      { streamKey, batchSize: 100, timeoutMs: 1_000, backoffMs: 50, maxBackoffMs: 200, privateReceivers: false },
    );
    await dispatcher.deliverDue();
    const stopped = await Promise.race([dispatcher.finishBatchesUnderWay().then(() => 'stopped'), new Promise((resolve) => setTimeout(() => resolve('still delivering'), 4_000))]);
    expect(stopped).toBe('stopped');
    expect((await events.deliveries('slow-dns', 10)).map((d) => d.outcome)).toEqual(['failed']);
    release?.();
    await dispatcher.idle();
  });
});

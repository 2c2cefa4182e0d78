import dns from 'node:dns';
import dnsPromises from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import { createMetrics } from '@orders/metrics';
import { OrderEventRepository } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDispatcher } from '../src/order-events/webhook-dispatcher.js';

/**
 * WEBHOOK_PRIVATE_RECEIVERS=false, a receiver's name answered by a DNS server that rebinds it: a
 * public address to the first question, the shop's own loopback (where a real receiver listens)
 * to every one after. Both of Node's resolvers (dns.lookup, dns/promises' lookup) ask that server.
 */
describe('a webhook whose name rebinds to an address inside the shop', () => {
  let env: TestEnv;
  let receiver: Server;
  const received: Array<string | undefined> = [];
  const originalLookup = dns.lookup;
  const originalPromisesLookup = dnsPromises.lookup;
  const asked: string[] = [];
  /** the rebinding server's answer to the next question about hooks.rebinding.example */
  const answer = () => {
    asked.push('hooks.rebinding.example');
    return asked.length === 1 ? { address: '203.0.113.7', family: 4 } : { address: '127.0.0.1', family: 4 };
  };

  beforeAll(async () => {
    env = await createTestEnv('webhook_dns_rebinding');
    receiver = createServer((request, response) => {
      received.push(request.headers.host);
      request.resume().on('end', () => response.writeHead(204).end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    (dns as { lookup: unknown }).lookup = ((host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
      if (host !== 'hooks.rebinding.example') return originalLookup(host, options as never, callback as never);
      const { address, family } = answer();
      process.nextTick(() => (options.all ? callback(null, [{ address, family }]) : callback(null, address, family)));
    }) as typeof originalLookup;
    (dnsPromises as { lookup: unknown }).lookup = ((host: string, options: unknown) =>
      host === 'hooks.rebinding.example' ? Promise.resolve([answer()]) : originalPromisesLookup(host, options as never)) as typeof originalPromisesLookup;
    syncBuiltinESMExports();
  });
  afterAll(async () => {
    (dns as { lookup: unknown }).lookup = originalLookup;
    (dnsPromises as { lookup: unknown }).lookup = originalPromisesLookup;
    syncBuiltinESMExports();
    receiver?.close();
    await env?.cleanup();
  });

  it('never POSTs its events to the inside address: the connection goes where its one lookup was checked, and the next lookup, inside, is refused', async () => {
    const streamKey = `${env.config.REDIS_KEY_PREFIX}order-events`;
    await env.redis.xadd(streamKey, '*', 'eventId', '1', 'orderId', 'O1', 'event', JSON.stringify({ eventId: '1', orderId: 'O1', version: 1 }));
    const events = new OrderEventRepository(env.db);
    const port = (receiver.address() as { port: number }).port;
    await events.createWebhook({ webhook_id: 'rebinding', url: `http://hooks.rebinding.example:${port}/hook`, secret: 'receiver-secret-0123', description: null, stream_cursor: '0-0', created_at: new Date() });
    const dispatcher = new WebhookDispatcher(
      { redis: env.redis, events, metrics: createMetrics({ app: 'test' }), log: pino({ level: 'silent' }) },
      { streamKey, batchSize: 100, timeoutMs: 1_000, backoffMs: 50, maxBackoffMs: 200, privateReceivers: false },
    );
    await dispatcher.deliverDue();
    await dispatcher.idle();
    // the retry after the backoff: its name now answers only the inside address
    await new Promise((resolve) => setTimeout(resolve, 100));
    await dispatcher.deliverDue();
    await dispatcher.idle();

    expect(received).toEqual([]);
    const attempts = (await events.deliveries('rebinding', 10)).sort((a, b) => a.attempt - b.attempt);
    expect(attempts.map((attempt) => [attempt.attempt, attempt.outcome, attempt.status_code])).toEqual([
      [1, 'failed', null],
      [2, 'failed', null],
    ]);
    expect(attempts[1]!.error).toMatch(/^not sent: its host resolves to 127\.0\.0\.1, an address of the shop's own networks/);
    // one question per delivery: nothing is asked again between the check and the connection
    expect(asked).toHaveLength(2);
  });
});

import { planImport } from '@orders/domain';
import { createMetrics } from '@orders/metrics';
import { OrderEventRepository, OrderImportRepository } from '@orders/persistence';
import { orderEventStreamKey } from '@orders/queues';
import { channelOrder, createTestEnv, startReplicatedRedis, waitFor, type ReplicatedRedis, type TestEnv } from '@orders/testing';
import type { Redis } from 'ioredis';
import { createServer, type Server } from 'node:http';
import { pino } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrderEventPublisher } from '../src/order-events/order-event-publisher.js';

/**
 * With EVENTS_REPLICA_ACKS=1 an order event counts as published only once a replica holds it:
 * a failover to a replica that had not received the last batches would otherwise lose their
 * events for good, MySQL saying they were published.
 */
describe('order events published only once a Redis replica holds them (EVENTS_REPLICA_ACKS=1)', () => {
  let redis: ReplicatedRedis;
  let env: TestEnv;
  let publishing: Redis;
  let publisher: OrderEventPublisher;
  const metrics = createMetrics({ app: 'worker' });
  const behind = async () => (await metrics.orderEventsBehind.get()).values[0]?.value ?? 0;
  let imported = 0;
  /** a webhook's receiver: the events of the batches it acknowledged, and what it answers */
  let receiver: Server;
  let receiverUrl = '';
  const acknowledged: string[] = [];
  let answer = 503;

  beforeAll(async () => {
    redis = await startReplicatedRedis();
    env = await createTestEnv('replicated_order_events', { REDIS_URL: redis.master.url });
    publishing = (env.redis as Redis).duplicate();
    publishing.on('error', () => {});
    publisher = new OrderEventPublisher(
      { redis: env.redis, events: new OrderEventRepository(env.db), metrics, log: pino({ level: 'silent' }) },
      {
        maxLen: 1_000_000,
        keptMs: 0,
        pollMs: 50,
        batchSize: 500,
        lockLapseMs: 30_000,
        deliveriesKeptMs: 86_400_000,
        webhooks: { streamKey: streamKey(), batchSize: 100, timeoutMs: 1_000, backoffMs: 100, maxBackoffMs: 1_000, privateReceivers: true },
        replication: { acks: 1, timeoutMs: 100, connection: publishing },
      },
    ).start();
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        if (answer < 300) acknowledged.push(...(JSON.parse(body) as { events: Array<{ eventId: string }> }).events.map((event) => event.eventId));
        response.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
  });

  afterAll(async () => {
    receiver?.close();
    await publisher?.stop();
    publishing?.disconnect();
    await env?.cleanup();
    await redis?.remove();
  });

  function streamKey() {
    return orderEventStreamKey(env.config.REDIS_KEY_PREFIX);
  }

  /** Orders bought in a channel and imported: each adds its events to the outbox. */
  async function importOrders(count: number): Promise<string[]> {
    const now = new Date();
    const orders = Array.from({ length: count }, () => {
      const ref = `TM-REPL-${++imported}`;
      const plan = planImport({ ...channelOrder(ref), items: channelOrder(ref).items.map((item) => ({ ...item, channel: 'self' as const, discountCents: 0 })) }, now);
      return { ...plan, orderId: `01K00000000000000000R${String(imported).padStart(5, '0')}` };
    });
    const rows = await new OrderImportRepository(env.db).importOrders('tmall', orders, now);
    const ids = rows.map((row) => row.orderId);
    const events = await env.db.selectFrom('order_history').select('id').where('order_id', 'in', ids).execute();
    return events.map((event) => String(event.id));
  }

  const unpublished = async (eventIds: string[]) =>
    (await env.db.selectFrom('order_history').select('id').where('id', 'in', eventIds.map(Number)).where('published_at', 'is', null).execute()).map((row) => String(row.id));
  /** How many times each event is on the stream, as the given server has it. */
  async function onStream(server: Redis, eventIds: string[]): Promise<number[]> {
    const entries = await server.xrange(streamKey(), '-', '+');
    const times = new Map<string, number>();
    for (const [, fields] of entries) times.set(fields[1]!, (times.get(fields[1]!) ?? 0) + 1);
    return eventIds.map((eventId) => times.get(eventId) ?? 0);
  }

  it('holds events back while the replica is away, adds them once however many turns wait, and again only if the stream lost them', { timeout: 60_000 }, async () => {
    const early = await importOrders(20);
    await waitFor(async () => (await unpublished(early)).length === 0, { what: 'the first events published' });
    expect(await onStream(redis.replicaClient, early)).toEqual(early.map(() => 1));

    await redis.replica.stop();
    const late = await importOrders(20);
    // many turns of 100 ms WAITs and pauses go by
    await waitFor(async () => (await onStream(env.redis as Redis, late)).every((times) => times === 1), { what: 'the late events on the master' });
    await sleep(1_000);
    expect(await unpublished(late)).toEqual(late);
    expect(await onStream(env.redis as Redis, late)).toEqual(late.map(() => 1));
    // the operator sees the backlog (order_events_unpublished), not 0
    expect(await behind()).toBe(late.length);

    // what a failover to a replica that had not received them leaves: the stream without them
    const entries = await (env.redis as Redis).xrange(streamKey(), '-', '+');
    const lateEntries = entries.filter(([, fields]) => late.includes(fields[1]!)).map(([id]) => id);
    await (env.redis as Redis).xdel(streamKey(), ...lateEntries);

    await redis.replica.start();
    await waitFor(() => redis.inSync(), { what: 'the replica to sync again' });
    await waitFor(async () => (await unpublished(late)).length === 0, { what: 'the late events published once the replica is back' });
    expect(await onStream(redis.replicaClient, late)).toEqual(late.map(() => 1));
    expect(await onStream(redis.replicaClient, early)).toEqual(early.map(() => 1));
    expect(await behind()).toBe(0);
  });

  it('goes on delivering the events already on the stream to a webhook behind, and reporting how far behind it is, while the replica is away', { timeout: 60_000 }, async () => {
    const [newest] = await (env.redis as Redis).xrevrange(streamKey(), '+', '-', 'COUNT', 1);
    await new OrderEventRepository(env.db).createWebhook({ webhook_id: 'behind-while-unreplicated', url: receiverUrl, secret: 'receiver-secret-0123', description: null, stream_cursor: newest?.[0] ?? '0-0', created_at: new Date() });
    const webhookBehind = async () => (await metrics.webhookBehind.get()).values.find((value) => value.labels.webhook === 'behind-while-unreplicated')?.value ?? 0;

    // on the stream and held by the replica, their receiver refusing them
    const early = await importOrders(20);
    await waitFor(async () => (await unpublished(early)).length === 0, { what: 'the early events published' });
    await waitFor(async () => (await webhookBehind()) > 0, { what: 'the webhook reported behind' });

    await redis.replica.stop();
    const late = await importOrders(20);
    await waitFor(async () => (await onStream(env.redis as Redis, late)).every((times) => times === 1), { what: 'the late events on the master' });
    // many turns whose publishing fails go by: the operator still sees the receiver fall behind (WebhookFallingBehind)
    await sleep(1_500);
    expect(await unpublished(late)).toEqual(late);
    expect(await webhookBehind()).toBeGreaterThan(1);

    // the receiver answers again: it gets the events the stream holds, the replica still away
    answer = 204;
    await waitFor(async () => early.every((eventId) => acknowledged.includes(eventId)), { what: 'the early events delivered' });
    expect(await unpublished(late)).toEqual(late);

    await redis.replica.start();
    await waitFor(() => redis.inSync(), { what: 'the replica to sync again' });
    await waitFor(async () => (await unpublished(late)).length === 0, { what: 'the late events published once the replica is back' });
    await waitFor(async () => late.every((eventId) => acknowledged.includes(eventId)), { what: 'the late events delivered' });
    // in the stream's order, which is each order's
    expect([...new Set(acknowledged.filter((eventId) => early.includes(eventId) || late.includes(eventId)))]).toEqual([...early, ...late].sort((a, b) => Number(a) - Number(b)));
  });
});

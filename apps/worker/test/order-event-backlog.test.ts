import { planImport } from '@orders/domain';
import { createMetrics } from '@orders/metrics';
import { OrderEventRepository, OrderImportRepository } from '@orders/persistence';
import { orderEventStreamKey } from '@orders/queues';
import { channelOrder, createTestEnv, waitFor, type TestEnv } from '@orders/testing';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrderEventPublisher } from '../src/order-events/order-event-publisher.js';

/**
 * The backlog an operator reads (order_events_unpublished, the alert OrderEventsBehind takes
 * the max over every worker) comes from the publisher holding the lock: one that lost it says
 * nothing is behind, or its last count would stand for ever beside the new holder's.
 */
describe('the order-event backlog a publisher reports', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('order_event_backlog');
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('goes back to 0 in a publisher that lost its lock to another while 20,000 events were behind', { timeout: 60_000 }, async () => {
    // one order imported, and a long history of it not yet published: 20,000 events behind
    const now = new Date();
    const [imported] = await new OrderImportRepository(env.db).importOrders('tmall', [{ ...planImport({ ...channelOrder('TM-BACKLOG'), items: channelOrder('TM-BACKLOG').items.map((item) => ({ ...item, channel: 'self' as const, discountCents: 0 })) }, now), orderId: '01K0000000000000000000BKLG' }], now);
    const orderId = imported!.orderId;
    const { version } = await env.db.selectFrom('order_history').select((eb) => eb.fn.max('version').as('version')).where('order_id', '=', orderId).executeTakeFirstOrThrow();
    for (let from = Number(version) + 1; from <= Number(version) + 20_000; from += 2_000) {
      await env.db
        .insertInto('order_history')
        .values(Array.from({ length: 2_000 }, (_, i) => ({ order_id: orderId, version: from + i, from_status: 'PAID', action: 'note', to_status: 'PAID', actor: 'system', detail: null, at: now })))
        .execute();
    }

    const metrics = createMetrics({ app: 'worker' });
    const behind = async () => (await metrics.orderEventsBehind.get()).values[0]?.value ?? 0;
    const events = new OrderEventRepository(env.db);
    const publisher = new OrderEventPublisher(
      { redis: env.redis, events, metrics, log: pino({ level: 'silent' }) },
      { maxLen: 1_000_000, keptMs: 0, pollMs: 1_000, batchSize: 10, lockLapseMs: 30_000, deliveriesKeptMs: 86_400_000, webhooks: { streamKey: orderEventStreamKey(env.config.REDIS_KEY_PREFIX), batchSize: 100, timeoutMs: 1_000, backoffMs: 100, maxBackoffMs: 1_000, privateReceivers: true } },
    ).start();
    const lockName = sql`CONCAT('order-events-publisher:', DATABASE())`;
    try {
      await waitFor(async () => (await behind()) > 1_000, { what: 'the publisher counting its backlog', timeoutMs: 20_000, intervalMs: 20 });

      // another worker takes the lock the moment the holder's connection is gone (MySQL ended it)
      await env.db.connection().execute(async (other) => {
        const holder = Number((await sql<{ holder: number }>`SELECT IS_USED_LOCK(${lockName}) AS holder`.execute(other)).rows[0]!.holder);
        const taken = sql<{ got: number }>`SELECT GET_LOCK(${lockName}, 10) AS got`.execute(other);
        await sql`KILL ${sql.raw(String(holder))}`.execute(env.db);
        expect(Number((await taken).rows[0]!.got)).toBe(1);
        try {
          await waitFor(async () => (await behind()) === 0, { what: 'the publisher that lost its lock reporting nothing behind', timeoutMs: 10_000, intervalMs: 20 });
          const left = await env.db.selectFrom('order_history').select((eb) => eb.fn.countAll<number>().as('n')).where('published_at', 'is', null).executeTakeFirstOrThrow();
          // the backlog is there still: the other worker would report it
          expect(Number(left.n)).toBeGreaterThan(1_000);
        } finally {
          await sql`SELECT RELEASE_LOCK(${lockName})`.execute(other);
        }
      });
    } finally {
      await publisher.stop();
    }
  });
});

describe("the webhooks' delivery log", () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('webhook_delivery_log');
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('keeps a day of attempts and deletes the older ones, a removed webhook\'s among them, chunk after chunk', { timeout: 60_000 }, async () => {
    const day = 86_400_000;
    const attempt = (webhookId: string, at: Date) => ({ webhook_id: webhookId, first_event_id: 1, last_event_id: 1, event_count: 1, attempt: 1, outcome: 'failed' as const, status_code: 503, error: 'the receiver answered 503', duration_ms: 3, at });
    // 12,000 attempts of two and three days ago (a receiver down for days, one removed since), then 300 of the last hour
    for (let i = 0; i < 12; i++) {
      await env.db
        .insertInto('webhook_deliveries')
        .values(Array.from({ length: 1_000 }, (_, j) => attempt(i % 2 === 0 ? 'down-for-days' : 'removed', new Date(Date.now() - 3 * day + (i * 1_000 + j) * 1_000))))
        .execute();
    }
    await env.db.insertInto('webhook_deliveries').values(Array.from({ length: 300 }, (_, j) => attempt('down-for-days', new Date(Date.now() - 3_600_000 + j * 1_000)))).execute();

    const events = new OrderEventRepository(env.db);
    const publisher = new OrderEventPublisher(
      { redis: env.redis, events, metrics: createMetrics({ app: 'worker' }), log: pino({ level: 'silent' }) },
      { maxLen: 1_000_000, keptMs: 0, pollMs: 50, batchSize: 10, lockLapseMs: 30_000, deliveriesKeptMs: day, webhooks: { streamKey: orderEventStreamKey(env.config.REDIS_KEY_PREFIX), batchSize: 100, timeoutMs: 1_000, backoffMs: 100, maxBackoffMs: 1_000, privateReceivers: true } },
    ).start();
    try {
      const left = async () => (await env.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;
      await waitFor(async () => Number(await left()) === 300, { what: 'the attempts older than a day deleted', timeoutMs: 30_000 });
      const kept = await env.db.selectFrom('webhook_deliveries').select(['webhook_id']).distinct().execute();
      expect(kept.map((row) => row.webhook_id)).toEqual(['down-for-days']);
    } finally {
      await publisher.stop();
    }
  });
});

describe('the order-event stream', () => {
  const day = 86_400_000;
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('order_event_stream_age');
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  /** A thousand events of ten days ago on `streamKey` (the stream's whole nodes of them), then `recent` of the last hour; now by Redis's clock. */
  const eventsOf = async (streamKey: string, recent: number): Promise<number> => {
    const [seconds] = await env.redis.time();
    const now = Number(seconds) * 1000;
    const adding = env.redis.pipeline();
    for (let i = 0; i < 1_000; i++) adding.xadd(streamKey, `${now - 10 * day + i}-0`, 'eventId', `old-${i}`);
    for (let i = 0; i < recent; i++) adding.xadd(streamKey, `${now - 3_600_000 + i}-0`, 'eventId', `new-${i}`);
    await adding.exec();
    return now;
  };
  /** A publisher keeping a week of events on `streamKey`, running until stopped. */
  const publisherOf = (streamKey: string) =>
    new OrderEventPublisher(
      { redis: env.redis, events: new OrderEventRepository(env.db), metrics: createMetrics({ app: 'worker' }), log: pino({ level: 'silent' }) },
      { maxLen: 1_000_000, keptMs: 7 * day, pollMs: 50, batchSize: 10, lockLapseMs: 30_000, deliveriesKeptMs: day, webhooks: { streamKey, batchSize: 100, timeoutMs: 1_000, backoffMs: 100, maxBackoffMs: 1_000, privateReceivers: true } },
    ).start();

  it('keeps no event older than EVENTS_STREAM_KEPT_MS, however few it holds: a quiet shop does not keep months of events in Redis', { timeout: 60_000 }, async () => {
    const streamKey = orderEventStreamKey(env.config.REDIS_KEY_PREFIX);
    const now = await eventsOf(streamKey, 50);
    const publisher = publisherOf(streamKey);
    try {
      await waitFor(async () => (await env.redis.xlen(streamKey)) === 50, { what: 'the events older than a week trimmed', timeoutMs: 20_000 });
      const [oldest] = await env.redis.xrange(streamKey, '-', '+', 'COUNT', 1);
      expect(oldest?.[0]).toBe(`${now - 3_600_000}-0`);
    } finally {
      await publisher.stop();
    }
  });

  it('keeps the newest event however old: after a quiet week a receiver that had every event still finds its cursor on the stream', { timeout: 60_000 }, async () => {
    const streamKey = `${orderEventStreamKey(env.config.REDIS_KEY_PREFIX)}-quiet`;
    // none of the last hour: the newest on the stream is ten days old
    const now = await eventsOf(streamKey, 0);
    const publisher = publisherOf(streamKey);
    try {
      await waitFor(async () => (await env.redis.xlen(streamKey)) < 1_000, { what: 'the events older than a week trimmed', timeoutMs: 20_000 });
      const [newest] = await env.redis.xrevrange(streamKey, '+', '-', 'COUNT', 1);
      expect(newest?.[0]).toBe(`${now - 10 * day + 999}-0`);
    } finally {
      await publisher.stop();
    }
  });
});

describe('the order-event publisher lock', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('order_event_lock_redis_broken');
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("goes to another worker while its holder's own Redis connection is broken: the holder cannot publish, the other can", { timeout: 60_000 }, async () => {
    const settings = { maxLen: 1_000_000, keptMs: 0, pollMs: 50, batchSize: 10, lockLapseMs: 30_000, deliveriesKeptMs: 86_400_000, webhooks: { streamKey: orderEventStreamKey(env.config.REDIS_KEY_PREFIX), batchSize: 100, timeoutMs: 1_000, backoffMs: 100, maxBackoffMs: 1_000, privateReceivers: true } };
    const publisherWith = (redis: TestEnv['redis']) => new OrderEventPublisher({ redis, events: new OrderEventRepository(env.db), metrics: createMetrics({ app: 'worker' }), log: pino({ level: 'silent' }) }, settings);
    // this worker's connection closed for good: every command of it fails at once
    const broken = (env.redis as Redis).duplicate();
    broken.on('error', () => {});
    broken.disconnect();
    const holder = async () => Number((await sql<{ holder: number | null }>`SELECT IS_USED_LOCK(CONCAT('order-events-publisher:', DATABASE())) AS holder`.execute(env.db)).rows[0]?.holder) || 0;
    const publishers = [publisherWith(broken).start()];
    try {
      await waitFor(holder, { what: 'the worker with the broken connection holding the lock', timeoutMs: 10_000, intervalMs: 10 });
      publishers.push(publisherWith(env.redis).start());
      const sent = channelOrder('TM-LOCK');
      const now = new Date();
      const [imported] = await new OrderImportRepository(env.db).importOrders('tmall', [{ ...planImport({ ...sent, items: sent.items.map((item) => ({ ...item, channel: 'self' as const, discountCents: 0 })) }, now), orderId: '01K0000000000000000000LOCK' }], now);
      const unpublished = async () => Number((await env.db.selectFrom('order_history').select((eb) => eb.fn.countAll<number>().as('n')).where('order_id', '=', imported!.orderId).where('published_at', 'is', null).executeTakeFirstOrThrow()).n);
      await waitFor(async () => (await unpublished()) === 0, { what: "the imported order's events published by the worker whose Redis answers", timeoutMs: 10_000 });
      expect(await env.redis.xlen(settings.webhooks.streamKey)).toBeGreaterThan(0);
    } finally {
      await Promise.all(publishers.map((publisher) => publisher.stop()));
    }
  });
});

import { createServer, type Server } from 'node:http';
import { signatureMatches } from '@orders/clients';
import { planImport } from '@orders/domain';
import { OrderImportRepository, type OrderEvent } from '@orders/persistence';
import { orderEventStreamKey } from '@orders/queues';
import { buyerAddress, channelOrder, createSku, createTestEnv, signToken, spawnApp, startApiProcess, waitFor, type ApiProcess, type SpawnedProcess, type TestEnv } from '@orders/testing';
import type { Cluster, Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/** Every entry of the order-event stream, in stream order. */
async function readStream(redis: Redis | Cluster, key: string): Promise<OrderEvent[]> {
  const entries = await redis.xrange(key, '-', '+');
  return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('event') + 1]!) as OrderEvent);
}

/** What a downstream consumer does: drop repeats by eventId, then check each order's versions only go up. */
function deduplicate(events: OrderEvent[]): { unique: OrderEvent[]; outOfOrder: string[] } {
  const seen = new Set<string>();
  const lastVersion = new Map<string, number>();
  const outOfOrder: string[] = [];
  const unique = events.filter((event) => {
    if (seen.has(event.eventId)) return false;
    seen.add(event.eventId);
    if ((lastVersion.get(event.orderId) ?? -1) >= event.version) outOfOrder.push(`${event.orderId} v${event.version}`);
    lastVersion.set(event.orderId, event.version);
    return true;
  });
  return { unique, outOfOrder };
}

async function historyIds(env: TestEnv): Promise<string[]> {
  return (await env.db.selectFrom('order_history').select('id').orderBy('id').execute()).map((row) => String(row.id));
}

// the two systems below share nothing: they run side by side, each mostly waiting on its workers
describe.concurrent('order events: the outbox, the stream and signed webhooks', () => {
  let system: OrderSystem;
  let receiver: Server;
  const received: Array<{ body: string; signature: string | undefined }> = [];
  let failuresToAnswer = 3;

  beforeAll(async () => {
    system = await startOrderSystem('order_events', {
      WORKER_QUEUES: 'orders,timers,payments,fulfillment,events',
      EVENTS_POLL_MS: '50',
      WEBHOOK_BACKOFF_MS: '100',
      WEBHOOK_BATCH_SIZE: '25',
    });
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push({ body, signature: request.headers['x-signature'] as string | undefined });
        // the receiver is down for its first few requests
        response.statusCode = failuresToAnswer-- > 0 ? 500 : 204;
        response.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    await system.createSku({ skuId: 'LAMP', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
  });
  afterAll(async () => {
    receiver?.close();
    await system?.close();
  });

  it('puts every transition on the stream in order per order, and a webhook gets them all, signed, after its receiver recovers', async () => {
    const admin = system.token('ops', 'admin');
    const port = (receiver.address() as { port: number }).port;
    const registered = await system.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: `http://127.0.0.1:${port}/order-events`, description: 'CRM' } });
    expect(registered.status).toBe(201);
    const { webhookId, secret } = registered.body as { webhookId: string; secret: string };
    expect(secret).toMatch(/^[0-9a-f]{64}$/);

    const orderIds = await Promise.all(Array.from({ length: 30 }, (_, i) => system.checkout(`buyer-${i}`, [{ skuId: 'LAMP', qty: 1 }])));
    for (const orderId of orderIds) await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const paid = orderIds.slice(0, 5);
    for (const orderId of paid) {
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(`buyer-${orderIds.indexOf(orderId)}`), body: { method: 'card' } })).status).toBe(202);
    }
    for (const orderId of paid) await system.waitForStatus(orderId, 'IN_FULFILLMENT');

    const streamKey = orderEventStreamKey(system.env.config.REDIS_KEY_PREFIX);
    const history = await historyIds(system.env);
    const streamed = await waitFor(
      async () => {
        const events = await readStream(system.env.redis, streamKey);
        return deduplicate(events).unique.length === history.length && events;
      },
      { what: 'every history row on the stream' },
    );
    const { unique, outOfOrder } = deduplicate(streamed);
    expect(outOfOrder).toEqual([]);
    expect(unique.map((event) => event.eventId).sort()).toEqual([...history].sort());
    // a paid order's events, as a loyalty or analytics system reads them
    const life = unique.filter((event) => event.orderId === paid[0]).map((event) => `${event.from}->${event.to} (${event.actor})`);
    expect(life.slice(0, 3)).toEqual(['null->ACCEPTED (buyer)', 'ACCEPTED->PENDING_PAYMENT (system)', 'PENDING_PAYMENT->PAID (payment)']);
    expect(unique.find((event) => event.orderId === paid[0])).toMatchObject({ type: 'order.status_changed', orderType: 'standard', userId: 'buyer-0' });

    // the webhook: 3 failed attempts, then every event once acknowledged, in order per order
    const delivered = await waitFor(
      async () => {
        const ok = received.slice(3).flatMap(({ body }) => (JSON.parse(body) as { events: OrderEvent[] }).events);
        return deduplicate(ok).unique.length === history.length && ok;
      },
      { what: 'the webhook to catch up' },
    );
    expect(deduplicate(delivered).outOfOrder).toEqual([]);
    for (const { body, signature } of received) expect(signatureMatches(secret, body, signature)).toBe(true);
    // the failed batch was sent again from where it began (with the events published since, up to a batch): a receiver can tell by eventId
    const [first, retry] = received.map(({ body }) => (JSON.parse(body) as { events: OrderEvent[]; attempt: number }));
    expect(retry!.events.slice(0, first!.events.length).map((e) => e.eventId)).toEqual(first!.events.map((e) => e.eventId));
    expect([first!.attempt, retry!.attempt]).toEqual([1, 2]);

    const log = await system.request('GET', `/v1/admin/webhooks/${webhookId}/deliveries?limit=200`, { token: admin });
    expect(log.status).toBe(200);
    const attempts = (log.body.items as Array<{ outcome: string; attempt: number; statusCode: number }>).reverse();
    expect(attempts.slice(0, 4).map((a) => [a.outcome, a.attempt, a.statusCode])).toEqual([
      ['failed', 1, 500],
      ['failed', 2, 500],
      ['failed', 3, 500],
      ['delivered', 4, 204],
    ]);
    // a cursor past any delivery id (1e400 reads as Infinity) is bad input, not a 500
    for (const before of ['1e400', '9007199254740992']) {
      const refused = await system.request('GET', `/v1/admin/webhooks/${webhookId}/deliveries?before=${before}`, { token: admin });
      expect([before, refused.status, refused.body.code]).toEqual([before, 400, 'VALIDATION_FAILED']);
    }
    expect((await system.request('GET', '/v1/admin/webhooks', { token: system.token('ada') })).status).toBe(403);
    expect((await system.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'ftp://example.com/x' } })).status).toBe(400);
    expect((await system.request('DELETE', `/v1/admin/webhooks/${webhookId}`, { token: admin })).status).toBe(204);
    // removed, its delivery log stays readable (as its DELETE says), until it ages out
    const kept = await system.request('GET', `/v1/admin/webhooks/${webhookId}/deliveries`, { token: admin });
    expect(kept.status).toBe(200);
    expect(kept.body.items.length).toBeGreaterThanOrEqual(4);
  });
});

describe.concurrent('an order-event publisher killed with SIGKILL in the middle of the stream', () => {
  let env: TestEnv;
  let api: ApiProcess;
  const workers: SpawnedProcess[] = [];
  const worker = (queues: string) => spawnApp('worker', { ...env.env, WORKER_QUEUES: queues, WORKER_METRICS_PORT: '0' });

  beforeAll(async () => {
    env = await createTestEnv('order_events_kill', {
      EVENTS_BATCH_SIZE: '20',
      EVENTS_POLL_MS: '20',
      // a persist job the killed worker held runs again once its lock runs out and the stalled check sees it (30 s + 30 s by default)
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
    });
    // the publisher to be killed starts beside the api: both take seconds to start
    workers.push(worker('orders,events'));
    api = await startApiProcess(env.env);
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'PHONE', title: 'Phone', priceCents: 49_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5_000, deduction: 'placement' });
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.kill()));
    await api?.close();
    await env?.cleanup();
  });

  it('loses no event: the next publisher publishes the rest, and consumers drop the repeats by eventId', async () => {
    const streamKey = orderEventStreamKey(env.config.REDIS_KEY_PREFIX);
    const answers = Promise.all(
      Array.from({ length: 1_500 }, (_, i) =>
        api.request('POST', '/v1/orders', {
          token: signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' }),
          headers: { 'idempotency-key': `phone-${i}` },
          body: { items: [{ skuId: 'PHONE', qty: 1 }], address: buyerAddress },
        }),
      ),
    );
    await waitFor(async () => (await env.redis.xlen(streamKey)) >= 300, { what: '300 events on the stream', intervalMs: 10 });
    await workers[0]!.kill();
    const atKill = await env.redis.xlen(streamKey);
    expect((await answers).every((answer) => answer.status === 202)).toBe(true);

    workers.push(worker('orders,events'));
    const history = await waitFor(
      async () => {
        const ids = await historyIds(env);
        return ids.length === 3_000 && ids;
      },
      { what: 'all 1,500 orders persisted (2 history rows each)', timeoutMs: 60_000 },
    );
    const streamed = await waitFor(
      async () => {
        const events = await readStream(env.redis, streamKey);
        return deduplicate(events).unique.length === history.length && events;
      },
      { what: 'every history row on the stream', timeoutMs: 30_000 },
    );
    expect(atKill).toBeLessThan(3_000);
    const { unique, outOfOrder } = deduplicate(streamed);
    expect(outOfOrder).toEqual([]);
    expect(unique.map((event) => event.eventId).sort()).toEqual([...history].sort());
    const unpublished = await env.db.selectFrom('order_history').select('id').where('published_at', 'is', null).execute();
    expect(unpublished).toEqual([]);
  });
});

describe.concurrent('an order-event publisher frozen while it holds the lock (a paused VM, a network partition)', () => {
  let env: TestEnv;
  const workers: SpawnedProcess[] = [];
  const worker = () => spawnApp('worker', { ...env.env, WORKER_QUEUES: 'events', WORKER_METRICS_PORT: '0' });
  /** the connection holding the publisher's named lock, if any (MySQL's view: a frozen holder still holds it) */
  const lockHolder = async () =>
    Number((await sql<{ holder: number | null }>`SELECT IS_USED_LOCK(CONCAT('order-events-publisher:', DATABASE())) AS holder`.execute(env.db)).rows[0]?.holder) || 0;

  beforeAll(async () => {
    env = await createTestEnv('order_events_frozen', { EVENTS_POLL_MS: '50', MYSQL_QUERY_TIMEOUT_MS: '1000', REDIS_COMMAND_TIMEOUT_MS: '500' });
  });
  afterAll(async () => {
    // SIGKILL ends a stopped process too
    await Promise.all(workers.map((worker) => worker.kill()));
    await env?.cleanup();
  });

  it('hands its events to another publisher: MySQL frees the lock of a holder that went silent, not after its 8 h wait_timeout', async () => {
    workers.push(worker());
    const frozenHolder = await waitFor(lockHolder, { what: 'the first worker to take the publisher lock', timeoutMs: 20_000 });
    process.kill(workers[0]!.child.pid!, 'SIGSTOP');
    workers.push(worker());

    // an order imported meanwhile (as the import route writes it, the api's defaults filled in)
    const sent = channelOrder('TM-FROZEN', { status: 'SHIPPED' });
    const order = { ...sent, items: sent.items.map((item) => ({ ...item, channel: 'self' as const, discountCents: 0 })) };
    const now = new Date();
    const [imported] = await new OrderImportRepository(env.db).importOrders('tmall', [{ ...planImport(order, now), orderId: '01K0000000000000000000FRZN' }], now);
    const orderId = imported!.orderId;
    const streamKey = orderEventStreamKey(env.config.REDIS_KEY_PREFIX);
    const published = await waitFor(
      async () => {
        const events = (await readStream(env.redis, streamKey)).filter((event) => event.orderId === orderId);
        return events.length === 3 && events;
      },
      { what: "the imported order's events on the stream", timeoutMs: 30_000, explain: async () => `lock held by connection ${await lockHolder()}, the frozen worker's was ${frozenHolder}` },
    );
    expect(published.map((event) => `${event.from}->${event.to}`)).toEqual(['null->ACCEPTED', 'ACCEPTED->PAID', 'PAID->SHIPPED']);
    expect(await lockHolder()).not.toBe(frozenHolder);
  });
});

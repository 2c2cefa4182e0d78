import { createServer, type Server } from 'node:http';
import { createMetrics } from '@orders/metrics';
import { OrderEventRepository, createDb } from '@orders/persistence';
import { createTestEnv, waitFor, type TestEnv } from '@orders/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDispatcher } from '../src/order-events/webhook-dispatcher.js';
import { addOrderEvents, listenAsReceiver } from './support/webhook-receiver.js';

/** The dispatcher over a real stream, a real webhooks table and a real receiver, with the faults that broke it. */
describe('webhook deliveries', () => {
  let env: TestEnv;
  let receiver: Server;
  let url = '';
  /** the batches the receiver got, as the eventIds they carried; and what it does with the next one */
  const received: string[][] = [];
  let onBatch: () => Promise<void> = async () => {};
  /** what the receiver answers: 204, or a redirect elsewhere */
  let answer: { status: number; headers?: Record<string, string> } = { status: 204 };

  beforeAll(async () => {
    env = await createTestEnv('webhook_dispatcher');
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push((JSON.parse(body) as { events: Array<{ eventId: string }> }).events.map((event) => event.eventId));
        void onBatch().then(() => response.writeHead(answer.status, answer.headers).end());
      });
    });
    url = await listenAsReceiver(receiver);
  });
  afterAll(async () => {
    receiver?.close();
    await env?.cleanup();
  });

  const streamKey = () => `${env.config.REDIS_KEY_PREFIX}order-events`;
  const publish = (count: number, from: number) => addOrderEvents(env.redis, streamKey(), count, from);
  const dispatcherOn = (events: OrderEventRepository, metrics = createMetrics({ app: 'test' }), batchSize = 100, privateReceivers = true) => ({
    metrics,
    dispatcher: new WebhookDispatcher(
      { redis: env.redis, events, metrics, log: pino({ level: 'silent' }) },
      { streamKey: streamKey(), batchSize, timeoutMs: 2_000, backoffMs: 50, maxBackoffMs: 200, privateReceivers },
    ),
  });
  const trimmedCount = async (metrics: ReturnType<typeof createMetrics>) => (await metrics.webhookCursorsTrimmed.get()).values[0]?.value ?? 0;
  const register = async (webhookId: string, cursor: string) => {
    const events = new OrderEventRepository(env.db);
    for (const webhook of await events.webhooks()) await events.removeWebhook(webhook.webhook_id);
    await events.createWebhook({ webhook_id: webhookId, url, secret: 'receiver-secret-0123', description: null, stream_cursor: cursor, created_at: new Date() });
    received.length = 0;
  };
  const reset = async () => {
    await env.redis.del(streamKey());
    onBatch = async () => {};
    answer = { status: 204 };
  };

  /** A webhook that acknowledged the 5th of 50 events, the stream trimmed since to its newest 20 (31 to 50). */
  const registeredBehindTheTrim = async (webhookId: string) => {
    await reset();
    await publish(10, 1);
    const fifth = (await env.redis.xrange(streamKey(), '-', '+'))[4]![0];
    await register(webhookId, fifth);
    await publish(40, 11);
    await env.redis.xtrim(streamKey(), 'MAXLEN', 20);
  };

  it('sends a receiver 250 events behind in one turn, batch after batch, instead of one batch a turn', async () => {
    await reset();
    await register('catch-up', '0-0');
    await publish(250, 1);
    const { dispatcher } = dispatcherOn(new OrderEventRepository(env.db));
    await dispatcher.deliverDue();
    await dispatcher.idle();
    expect(received.map((batch) => batch.length)).toEqual([100, 100, 50]);
  });

  it('survives MySQL going away while a delivery is recorded: no unhandled rejection ends the worker, and the batch goes again', async () => {
    await reset();
    await register('mysql-blip', '0-0');
    await publish(3, 1);
    const { db } = createDb(env.config.MYSQL_URL, 2);
    const dispatcher = dispatcherOn(new OrderEventRepository(db)).dispatcher;
    // the receiver acknowledges, but MySQL is gone when the dispatcher records it
    let recorded: () => void = () => {};
    const recordingTried = new Promise<void>((resolve) => (recorded = resolve));
    onBatch = async () => {
      await db.destroy();
      setTimeout(recorded, 200);
    };
    const unhandled: unknown[] = [];
    const noteUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', noteUnhandled);
    try {
      // as the publisher runs it: nothing waits on the delivery until the publisher stops
      await dispatcher.deliverDue();
      await recordingTried;
    } finally {
      process.off('unhandledRejection', noteUnhandled);
    }
    expect(unhandled).toEqual([]);
    await dispatcher.idle();
    expect(received).toEqual([['1', '2', '3']]);
    onBatch = async () => {};
    const recovered = dispatcherOn(new OrderEventRepository(env.db)).dispatcher;
    await recovered.deliverDue();
    await recovered.idle();
    expect(received).toEqual([
      ['1', '2', '3'],
      ['1', '2', '3'],
    ]);
  });

  it('counts a receiver that fell behind the trimmed stream, once, and goes on from the oldest event kept', async () => {
    await registeredBehindTheTrim('behind');
    const { dispatcher, metrics } = dispatcherOn(new OrderEventRepository(env.db));
    await dispatcher.deliverDue();
    await dispatcher.idle();
    expect((await metrics.webhookCursorsTrimmed.get()).values[0]?.value).toBe(1);
    expect(received[0]?.[0]).toBe('31');
  });

  it('tells how far behind a receiver that is down is, and that the stream dropped events it never got, until it has caught up', async () => {
    await registeredBehindTheTrim('down');
    const firstKept = Number((await env.redis.xrange(streamKey(), '-', '+'))[0]![0].split('-')[0]);
    answer = { status: 503 };
    const { dispatcher, metrics } = dispatcherOn(new OrderEventRepository(env.db));
    const seen = async () => ({
      behind: (await metrics.webhookBehind.get()).values.find((value) => value.labels.webhook === 'down')?.value,
      missing: (await metrics.webhookMissingEvents.get()).values.find((value) => value.labels.webhook === 'down')?.value,
      span: (await metrics.orderEventsStreamSpan.get()).values[0]?.value ?? 0,
    });
    await dispatcher.deliverDue();
    await dispatcher.idle();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // a turn later, a second on: its oldest event not acknowledged is the first the stream kept
    const turn = Date.now();
    await dispatcher.deliverDue(turn);
    await dispatcher.idle();
    const down = await seen();
    expect(down.behind).toBeCloseTo((turn - firstKept) / 1000, 1);
    expect(down.behind).toBeGreaterThanOrEqual(1);
    expect(down.missing).toBe(1);
    expect(down.span).toBeGreaterThanOrEqual(1);

    answer = { status: 204 };
    const last = (await env.redis.xrange(streamKey(), '-', '+')).at(-1)![0];
    await waitFor(
      async () => {
        await dispatcher.deliverDue();
        await dispatcher.idle();
        return (await new OrderEventRepository(env.db).findWebhook('down'))?.stream_cursor === last;
      },
      { what: 'the receiver back, and caught up', intervalMs: 50 },
    );
    await dispatcher.deliverDue();
    expect(await seen()).toMatchObject({ behind: 0, missing: 0 });
  });

  it('counts events trimmed between two batches of one turn, as a sale outruns the receiver', async () => {
    await reset();
    await publish(10, 1);
    const fifth = (await env.redis.xrange(streamKey(), '-', '+'))[4]![0];
    await register('outrun', fifth);
    // while the receiver takes its first batch, 40 more events come and the stream keeps its newest 20
    let first = true;
    onBatch = async () => {
      if (!first) return;
      first = false;
      await publish(40, 11);
      await env.redis.xtrim(streamKey(), 'MAXLEN', 20);
    };
    const { dispatcher, metrics } = dispatcherOn(new OrderEventRepository(env.db), createMetrics({ app: 'test' }), 2);
    await dispatcher.deliverDue();
    await dispatcher.idle();
    expect(await trimmedCount(metrics)).toBe(1);
    expect(received.slice(0, 2)).toEqual([
      ['6', '7'],
      ['31', '32'],
    ]);
  });

  it('counts events trimmed before a receiver registered on an empty stream acknowledged any', async () => {
    await reset();
    await register('never-acknowledged', '0-0');
    await publish(50, 1);
    await env.redis.xtrim(streamKey(), 'MAXLEN', 20);
    const { dispatcher, metrics } = dispatcherOn(new OrderEventRepository(env.db));
    await dispatcher.deliverDue();
    await dispatcher.idle();
    expect(await trimmedCount(metrics)).toBe(1);
    expect(received[0]?.[0]).toBe('31');
  });

  it('never sets a cursor back: a publisher that lost its lock while its batch was out stops when the next one has moved on', async () => {
    await reset();
    await register('handed-over', '0-0');
    await publish(6, 1);
    // the first publisher's first batch is held at the receiver while the next publisher delivers all six
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    onBatch = async () => {
      if (!first) return;
      first = false;
      await held;
    };
    const old = dispatcherOn(new OrderEventRepository(env.db), createMetrics({ app: 'test' }), 2).dispatcher;
    await old.deliverDue();
    await waitFor(async () => received.length === 1, { what: 'the first publisher’s batch at the receiver' });
    const next = dispatcherOn(new OrderEventRepository(env.db), createMetrics({ app: 'test' }), 2).dispatcher;
    await next.deliverDue();
    await next.idle();
    release();
    await old.idle();
    const last = (await env.redis.xrange(streamKey(), '-', '+')).at(-1)![0];
    expect((await new OrderEventRepository(env.db).findWebhook('handed-over'))?.stream_cursor).toBe(last);
    expect(received).toEqual([
      ['1', '2'],
      ['1', '2'],
      ['3', '4'],
      ['5', '6'],
    ]);
  });

  it("sends nothing, where WEBHOOK_PRIVATE_RECEIVERS is false, to a receiver whose host resolves into the shop's own networks, however it was registered (before the check, or its name moved since), and logs why", async () => {
    await reset();
    await register('inside', '0-0');
    await publish(3, 1);
    const events = new OrderEventRepository(env.db);
    const { dispatcher } = dispatcherOn(events, createMetrics({ app: 'test' }), 100, false);
    await dispatcher.deliverDue();
    await dispatcher.idle();
    expect(received).toEqual([]);
    const [attempt] = await events.deliveries('inside', 10);
    expect(attempt).toMatchObject({ outcome: 'failed', status_code: null, error: expect.stringMatching(/^not sent: its host resolves to 127\.0\.0\.1, an address of the shop's own networks/) });
  });

  it('takes a redirect for a failed delivery: the signed events are never sent on to where it points', async () => {
    await reset();
    await register('redirected', '0-0');
    await publish(2, 1);
    answer = { status: 307, headers: { location: `${url}/elsewhere` } };
    const events = new OrderEventRepository(env.db);
    const { dispatcher } = dispatcherOn(events);
    await dispatcher.deliverDue();
    await dispatcher.idle();
    expect(received).toEqual([['1', '2']]);
    expect((await events.deliveries('redirected', 10)).map((delivery) => [delivery.outcome, delivery.status_code])).toEqual([['failed', 307]]);
  });
});

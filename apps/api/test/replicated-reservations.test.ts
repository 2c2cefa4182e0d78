import { buyerAddress, createSku, createTestEnv, startReplicatedRedis, waitFor, type RedisServer, type ReplicatedRedis, type TestEnv } from '@orders/testing';
import { Inventory, StockNotReplicated, checkoutTimeoutsOf } from '@orders/stock';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

describe('reservations acknowledged by a Redis replica before the intake answers (RESERVATION_REPLICA_ACKS=1)', () => {
  let redis: ReplicatedRedis;
  let master: RedisServer;
  let replica: RedisServer;
  let replicaClient: Redis;
  let env: TestEnv;
  let api: ApiUnderTest;

  const replicaInSync = async () => redis.inSync();
  const checkout = (buyer: string) =>
    api.request('POST', '/v1/orders', {
      token: api.token(buyer),
      headers: { 'idempotency-key': `key-of-${buyer}` },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress },
    });
  /** What a failover would keep: the orders the replica holds in the accepted set. */
  const acceptedOnReplica = async () => new Set(await replicaClient.zrange(`${env.config.REDIS_KEY_PREFIX}{g0}:accepted`, 0, -1));

  beforeAll(async () => {
    redis = await startReplicatedRedis();
    ({ master, replica, replicaClient } = redis);
    env = await createTestEnv('replicated_reservations', { REDIS_URL: master.url, RESERVATION_REPLICA_ACKS: '1', RESERVATION_REPLICA_TIMEOUT_MS: '200', SOLD_OUT_MEMORY_MS: '60000' });
    api = await startApi(env);
    await createSku(api, api.token('ops', 'admin'), { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement' });
  });

  afterAll(async () => {
    await api?.close();
    // the key scan needs the master, so the env goes before it
    await env?.cleanup();
    await redis?.remove();
  });

  it('answers 202 only for what the replica holds, 503 while it is gone, and the same order when the buyer retries', async () => {
    const first = await Promise.all(Array.from({ length: 200 }, (_, i) => checkout(`early-${i}`)));
    expect(first.map((answer) => answer.status)).toEqual(Array(200).fill(202));
    const held = await acceptedOnReplica();
    expect(first.filter((answer) => !held.has(answer.body.orderId))).toEqual([]);

    await replica.stop();
    const unacknowledged = await Promise.all(Array.from({ length: 20 }, (_, i) => checkout(`late-${i}`)));
    for (const answer of unacknowledged) {
      expect(answer.status).toBe(503);
      expect(answer.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // the buyer's first request: their budget is spent once, by the script that ran on the master
      expect(Number(answer.headers['x-ratelimit-remaining'])).toBe(env.config.RATE_LIMIT_PER_USER - 1);
    }

    await replica.start();
    await waitFor(replicaInSync, { what: 'the replica to sync again' });
    // each buyer retries with the same Idempotency-Key, as API.md tells clients to
    const retried = await Promise.all(Array.from({ length: 20 }, (_, i) => checkout(`late-${i}`)));
    expect(retried.map((answer) => answer.status)).toEqual(Array(20).fill(202));
    expect(retried.map((answer) => Number(answer.headers['x-ratelimit-remaining']))).toEqual(Array(20).fill(env.config.RATE_LIMIT_PER_USER - 2));
    expect(new Set(retried.map((answer) => answer.body.orderId)).size).toBe(20);
    const heldNow = await acceptedOnReplica();
    expect([...first, ...retried].filter((answer) => !heldNow.has(answer.body.orderId))).toEqual([]);
    // nobody holds a unit twice: 220 buyers, 220 units reserved
    expect((await api.request('GET', '/v1/admin/skus/KETTLE', { token: api.token('ops', 'admin') })).body.stock).toEqual({ available: 780, reserved: 220, sold: 0 });
  });

  it('keeps the once-per-buyer coupon of buyers whose checkout in a bucket went unacknowledged: their retry is accepted with it', async () => {
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'HOT', title: 'Hot', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement', stockBuckets: 4 });
    const coupon = { code: 'ONCE', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await api.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
    const buyers = Array.from({ length: 20 }, (_, i) => `coupon-${i}`);
    const checkoutHot = (buyer: string) =>
      api.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': `hot-of-${buyer}` }, body: { items: [{ skuId: 'HOT', qty: 1 }], address: buyerAddress, couponCode: 'ONCE' } });

    await replica.stop();
    expect((await Promise.all(buyers.map(checkoutHot))).map((answer) => answer.status)).toEqual(Array(20).fill(503));
    await replica.start();
    await waitFor(replicaInSync, { what: 'the replica to sync again' });
    const retried = await Promise.all(buyers.map(checkoutHot));
    expect(retried.map((answer) => answer.status)).toEqual(Array(20).fill(202));
    expect(new Set(retried.map((answer) => answer.body.orderId)).size).toBe(20);
  });

  it('answers 503 while the replica hangs, also when the master has forgotten the scripts (SCRIPT FLUSH, a failover to a replica that never loaded them)', async () => {
    expect((await checkout('warm-up')).status).toBe(202);
    const masterClient = new Redis(master.url);
    // the replica has acknowledged all the master wrote, so a WAIT for nothing new passes at once
    const replicaAcknowledgedAll = async () => {
      const replication = await masterClient.info('replication');
      return /slave0:.*offset=(\d+)/.exec(replication)?.[1] === /master_repl_offset:(\d+)/.exec(replication)?.[1];
    };
    await waitFor(replicaAcknowledgedAll, { what: 'the replica to acknowledge the warm-up' });
    // a replica that hangs stays connected, so WAIT counts it for what it acknowledged before
    const replicaPid = Number(/process_id:(\d+)/.exec(await replicaClient.info('server'))![1]);
    process.kill(replicaPid, 'SIGSTOP');
    try {
      await masterClient.script('FLUSH');
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => checkout(`flushed-${i}`)));
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(503));
    } finally {
      process.kill(replicaPid, 'SIGCONT');
      masterClient.disconnect();
    }
    await waitFor(replicaInSync, { what: 'the replica to catch up' });
  });

  it('answers order reads, sold-out SKUs and readiness within a second while 20 checkouts wait for a stopped replica', async () => {
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'LAST', title: 'Last one', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'placement' });
    const checkoutLast = (buyer: string) =>
      api.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': `last-of-${buyer}` }, body: { items: [{ skuId: 'LAST', qty: 1 }], address: buyerAddress } });
    expect((await checkoutLast('first-to-come')).status).toBe(202);
    expect((await checkoutLast('second-to-come')).status).toBe(409);
    const reader = await checkout('reader');
    expect(reader.status).toBe(202);

    await replica.stop();
    // one checkout every 10 ms: each event-loop turn's reservations wait for the replica on their own
    const waiting: Array<ReturnType<typeof checkout>> = [];
    for (let i = 0; i < 20; i++) {
      waiting.push(checkout(`waiting-${i}`));
      await sleep(10);
    }
    const timed = async (answer: ReturnType<typeof checkout>) => {
      const started = performance.now();
      const { status } = await answer;
      return { status, ms: performance.now() - started };
    };
    const [order, soldOut, ready] = await Promise.all([
      timed(api.request('GET', `/v1/orders/${reader.body.orderId}`, { token: api.token('reader') })),
      timed(checkoutLast('third-to-come')),
      timed(api.request('GET', '/health/ready')),
    ]);
    expect([order, soldOut, ready].map((answer) => answer.status)).toEqual([200, 409, 200]);
    expect([order, soldOut, ready].filter((answer) => answer.ms > 1_000)).toEqual([]);
    expect((await Promise.all(waiting)).map((answer) => answer.status)).toEqual(Array(20).fill(503));

    await replica.start();
    await waitFor(replicaInSync, { what: 'the replica to sync again' });
  });

  it("commits a payment's stock only once the replica holds it: a failover to a replica without it would sell the units again", async () => {
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'DESK', title: 'Desk', priceCents: 20_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
    const placed = await api.request('POST', '/v1/orders', { token: api.token('alice'), headers: { 'idempotency-key': 'alice-desk' }, body: { items: [{ skuId: 'DESK', qty: 1 }], address: buyerAddress } });
    expect(placed.status).toBe(202);
    // the worker's inventory, as connectWorker makes it
    const inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config), { durability: { replicaAcks: 1, timeoutMs: 200 } });
    const deskOnReplica = async () => Number(await replicaClient.hget(`${env.config.REDIS_KEY_PREFIX}{g0}:sku:DESK`, 'available'));

    await replica.stop();
    // the master took the desk off sale; the replica, away, did not: the payment's settlement runs again
    await expect(inventory.commitStock(placed.body.orderId)).rejects.toBeInstanceOf(StockNotReplicated);
    await replica.start();
    await waitFor(replicaInSync, { what: 'the replica to sync again' });
    expect(await inventory.commitStock(placed.body.orderId)).toEqual({ status: 'already' });
    expect(await deskOnReplica()).toBe(0);
  });

  it("answers a merchant's stock set 503 until the replica holds it, and its repeat under the same key once it does, none of the units sold meanwhile back on sale", async () => {
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'LAMP', title: 'Lamp', priceCents: 4_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 50, deduction: 'placement', stockBuckets: 2 });
    const lampOnReplica = async () =>
      Promise.all(['{g0}', '{g1}'].map(async (group) => Number(await replicaClient.hget(`${env.config.REDIS_KEY_PREFIX}${group}:sku:LAMP`, 'available'))));
    const setLamp = () => api.request('PUT', '/v1/admin/skus/LAMP/stock', { token: admin, headers: { 'idempotency-key': 'lamp-recount' }, body: { stock: 4 } });
    await waitFor(replicaInSync, { what: 'the replica to hold the lamp' });

    await replica.stop();
    // the shelf holds 4 lamps: the master sells no more, but a failover to the replica would bring back 50
    const unacknowledged = await setLamp();
    expect([unacknowledged.status, unacknowledged.body.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    expect(Number(unacknowledged.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    await replica.start();
    await waitFor(replicaInSync, { what: 'the replica to sync again' });
    const bought = await api.request('POST', '/v1/orders', { token: api.token('lamp-buyer'), headers: { 'idempotency-key': 'lamp-buyer' }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress } });
    expect(bought.status).toBe(202);

    const retried = await setLamp();
    expect([retried.status, retried.headers['idempotent-replayed'], retried.body.stock]).toEqual([200, 'true', { available: 3, reserved: 1, sold: 0 }]);
    expect((await lampOnReplica()).reduce((sum, units) => sum + units, 0)).toBe(3);
  });
});

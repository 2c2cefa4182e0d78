import { buyerAddress, createSku, createTestEnv, spawnApp, startTcpProxy, type SpawnedProcess, type TcpProxy, type TestEnv } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

describe('an api whose Redis fails over behind the same address (its old connections silent, new ones answered)', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let proxy: TcpProxy;

  beforeAll(async () => {
    env = await createTestEnv('redis_failover_same_address_api');
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    api = await startApi({ ...env, config: { ...env.config, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_COMMAND_TIMEOUT_MS: 500 } });
    await createSku(api, api.token('ops', 'admin'), { skuId: 'LANTERN', title: 'Lantern', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement' });
  });
  afterAll(async () => {
    await api?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  const checkout = (buyer: string) =>
    api.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': `${buyer}-1` }, body: { items: [{ skuId: 'LANTERN', qty: 1 }], address: buyerAddress } });

  it('takes checkouts again soon after the failover, on a new connection, rather than answering 503 until TCP gives up on the old one', { timeout: 60_000 }, async () => {
    expect((await checkout('before')).status).toBe(202);
    proxy.failOver();
    // the new master answers anyone who connects now
    const fresh = new Redis(`redis://127.0.0.1:${proxy.port}`);
    expect(await fresh.ping()).toBe('PONG');
    fresh.disconnect();

    const statuses: number[] = [];
    const until = Date.now() + 20_000;
    for (let i = 0; Date.now() < until; i++) {
      const answer = await checkout(`after-${i}`);
      statuses.push(answer.status);
      if (answer.status === 202) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // 20 s is 40 command timeouts: still 503, every one of them
    expect(statuses.at(-1)).toBe(202);
  });
});

describe('a worker whose Redis fails over behind the same address (its old connections silent, new ones answered)', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let proxy: TcpProxy;
  let worker: SpawnedProcess;

  beforeAll(async () => {
    env = await createTestEnv('redis_failover_same_address_worker', { WORKER_QUEUES: 'orders' });
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    // the api reaches Redis directly; only the worker is behind the address that fails over
    api = await startApi(env);
    await createSku(api, api.token('ops', 'admin'), { skuId: 'CANDLE', title: 'Candle', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    worker = spawnApp('worker', { ...env.env, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, WORKER_METRICS_PORT: '0' });
  });
  afterAll(async () => {
    await worker?.kill();
    await api?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  const inMysql = async (orderId: string) => (await env.db.selectFrom('orders').select('order_id').where('order_id', '=', orderId).executeTakeFirst()) !== undefined;
  const checkout = async (buyer: string) => {
    const answer = await api.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': `${buyer}-1` }, body: { items: [{ skuId: 'CANDLE', qty: 1 }], address: buyerAddress } });
    expect(answer.status).toBe(202);
    return answer.body.orderId as string;
  };
  const persistedWithin = async (orderId: string, ms: number) => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (await inMysql(orderId)) return true;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return false;
  };

  it('persists the orders accepted after the failover within half a minute, on a new connection', { timeout: 90_000 }, async () => {
    const before = await checkout('w-before');
    expect(await persistedWithin(before, 30_000)).toBe(true);
    proxy.failOver();
    const after = await checkout('w-after');
    // 30 s: the stranded-order sweeper's default is 60 s; the worker's own job poll is what is measured
    const persisted = await persistedWithin(after, 30_000);
    expect(persisted).toBe(true);
  });
});

import { buyerAddress, createSku, createTestEnv, holdTable, startTcpProxy, type TcpProxy, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectLog, startApi, type ApiUnderTest } from './support/api-under-test.js';

describe('an api whose Redis stops answering (a frozen network: connections open, nothing through)', () => {
  let env: TestEnv;
  let proxy: TcpProxy;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('api_redis_frozen');
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    api = await startApi({ ...env, config: { ...env.config, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_COMMAND_TIMEOUT_MS: 500 } });
    await createSku(api, api.token('ops', 'admin'), { skuId: 'TORCH', title: 'Torch', priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    proxy?.thaw();
    await api?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  const checkout = (key: string) =>
    api.request('POST', '/v1/orders', { token: api.token('tia'), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'TORCH', qty: 1 }], address: buyerAddress } });

  it('answers checkouts and stock reads 503 with retry-after within its command timeout, and the retry of the same checkout afterwards is one order', { timeout: 20_000 }, async () => {
    expect((await checkout('tia-1')).status).toBe(202);
    proxy.freeze();
    const started = Date.now();
    const frozen = await checkout('tia-2');
    expect([frozen.status, frozen.body.code, frozen.headers['retry-after']]).toEqual([503, 'SERVICE_UNAVAILABLE', '1']);
    const read = await api.request('GET', '/v1/admin/skus/TORCH', { token: api.token('ops', 'admin') });
    expect([read.status, read.body.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    expect(Date.now() - started).toBeLessThan(3_000);

    // the frozen reservation reaches Redis once the network thaws: the buyer's retry finds it, no second order
    proxy.thaw();
    const retried = await checkout('tia-2');
    expect(retried.status).toBe(202);
    expect((await checkout('tia-2')).body.orderId).toBe(retried.body.orderId);
    const stock = (await api.request('GET', '/v1/admin/skus/TORCH', { token: api.token('ops', 'admin') })).body.stock;
    expect(stock).toEqual({ available: 8, reserved: 2, sold: 0 });
  });
});

describe('an api whose MySQL answers too slowly (a statement past MYSQL_QUERY_TIMEOUT_MS)', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  const log = collectLog();

  beforeAll(async () => {
    env = await createTestEnv('api_mysql_slow');
    api = await startApi({ ...env, config: { ...env.config, MYSQL_QUERY_TIMEOUT_MS: 300 } }, { log });
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it("answers 503 SERVICE_UNAVAILABLE with retry-after after 300 ms, logs a warning naming the statement's kind but not its SQL, and serves the same read once MySQL is quick again", async () => {
    // another session holds the orders table (a long ALTER TABLE, a forgotten LOCK TABLES)
    const held = await holdTable(env.db, 'orders');
    const started = Date.now();
    const slow = await api.request('GET', '/v1/orders', { token: api.token('uma') });
    const waited = Date.now() - started;
    await held.release();

    expect([slow.status, slow.body.code, slow.headers['retry-after']]).toEqual([503, 'SERVICE_UNAVAILABLE', '1']);
    expect(String(slow.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(slow.body.detail).toBe('The order store (MySQL) is answering too slowly; retry shortly');
    expect(waited).toBeLessThan(2_000);
    // the request's warnings (at start-up the console plugin may warn that the console is not built yet)
    const warnings = log.lines.filter((line) => line.level >= 40 && line.reqId !== undefined);
    expect(warnings.map(({ level, msg, statement, timeoutMs }) => ({ level, msg, statement, timeoutMs }))).toEqual([
      { level: 40, msg: 'The order store (MySQL) answered too slowly: statement ended after MYSQL_QUERY_TIMEOUT_MS', statement: 'select', timeoutMs: 300 },
    ]);
    expect(JSON.stringify(log.lines)).not.toMatch(/from `orders`/i);

    expect((await api.request('GET', '/v1/orders', { token: api.token('uma') })).body).toEqual({ items: [], nextCursor: null });
  });
});

import { buyerAddress, createSku, createTestEnv, startTcpProxy, type TcpProxy, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

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

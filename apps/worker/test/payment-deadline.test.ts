import { QUEUE } from '@orders/queues';
import { buyerAddress, createTestEnv, signToken, startApiProcess, waitFor, type ApiProcess, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('the payment deadline', () => {
  let env: TestEnv;
  let http: ApiProcess;
  let workers: RunningWorkers;

  beforeAll(async () => {
    env = await createTestEnv('payment_deadline', { PAYMENT_TIMEOUT_MS: '1500', FLASH_SALE_PAYMENT_TIMEOUT_MS: '800' });
    http = await startApiProcess(env.env, 10);
    workers = startWorkers(connectWorker(env.config, pino({ level: 'silent' })));
  });

  afterAll(async () => {
    await workers?.close();
    await http?.close();
    await env?.cleanup();
  });

  it('expires an unpaid order, gives its stock back once, and a second expiry changes nothing', async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    const buyer = signToken(env.config.AUTH_JWT_SECRET, { sub: 'slow-payer', role: 'buyer' });
    await http.request('POST', '/v1/admin/skus', {
      token: admin,
      body: { skuId: 'LAMP', title: 'Lamp', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 5, deduction: 'placement' },
    });
    const checkout = await http.request('POST', '/v1/orders', {
      token: buyer,
      headers: { 'idempotency-key': 'lamp-1' },
      body: { items: [{ skuId: 'LAMP', qty: 2 }], address: buyerAddress },
    });
    expect(checkout.status).toBe(202);
    expect((await http.request('GET', '/v1/admin/skus/LAMP', { token: admin })).body.stock).toEqual({ available: 3, reserved: 2, sold: 0 });

    const expired = await waitFor(
      async () => {
        const order = await http.request('GET', checkout.body.statusUrl, { token: buyer });
        return order.body.status === 'EXPIRED' && order.body;
      },
      { what: 'EXPIRED', timeoutMs: 15_000 },
    );
    expect(expired.buyerStatus).toBe('Closed');
    expect(expired.history.at(-1)).toMatchObject({ from: 'PENDING_PAYMENT', action: 'expire', to: 'EXPIRED', actor: 'system' });
    const stockAfter = await waitFor(async () => {
      const sku = await http.request('GET', '/v1/admin/skus/LAMP', { token: admin });
      return sku.body.stock.available === 5 && sku.body.stock;
    });
    expect(stockAfter).toEqual({ available: 5, reserved: 0, sold: 0 });
    expect(await workers.deps.catalog.ledgerAvailable('LAMP')).toBe(5);

    const timers = new Queue(QUEUE.timers, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
    const again = await timers.add('expire-order', { orderId: checkout.body.orderId, userId: 'slow-payer' }, { jobId: 'expire-again' });
    await waitFor(async () => !['waiting', 'active', 'delayed'].includes(await again.getState()), { what: 'the second expiry job' });
    await timers.close();

    const after = await http.request('GET', checkout.body.statusUrl, { token: buyer });
    expect(after.body.history).toHaveLength(expired.history.length);
    expect((await http.request('GET', '/v1/admin/skus/LAMP', { token: admin })).body.stock).toEqual({ available: 5, reserved: 0, sold: 0 });
    const releases = await env.db.selectFrom('stock_ledger').selectAll().where('kind', '=', 'release').execute();
    expect(releases.map((r) => ({ sku: r.sku_id, qty: Number(r.qty), reason: r.reason }))).toEqual([{ sku: 'LAMP', qty: 2, reason: 'expire' }]);
    // the released buyer may buy again: the stock really is back on sale
    const rebuy = await http.request('POST', '/v1/orders', { token: buyer, headers: { 'idempotency-key': 'lamp-2' }, body: { items: [{ skuId: 'LAMP', qty: 5 }], address: buyerAddress } });
    expect(rebuy.status).toBe(202);
  });
});

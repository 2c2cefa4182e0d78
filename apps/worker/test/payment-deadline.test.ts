import { QUEUE } from '@orders/queues';
import { buyerAddress, ledgerAvailable, signToken, waitFor } from '@orders/testing';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIntakeAndWorkers, type IntakeAndWorkers } from './support/intake-and-workers.js';

describe('the payment deadline', () => {
  let system: IntakeAndWorkers;

  beforeAll(async () => {
    // long enough that the 40 orders of the second case are persisted (their deadline jobs
    // read while still delayed) before the first deadline is due, even on a loaded box
    system = await startIntakeAndWorkers('payment_deadline', { PAYMENT_TIMEOUT_MS: '5000', FLASH_SALE_PAYMENT_TIMEOUT_MS: '800' });
  });
  afterAll(async () => system?.close());

  it('expires an unpaid order, gives its stock back once, and a second expiry changes nothing', async () => {
    const { env, http } = system;
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
    expect(await ledgerAvailable(env.db, 'LAMP')).toBe(5);

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

  it('gives the orders persisted together one deadline job per second, and expires each unpaid one of them', async () => {
    const { env, http } = system;
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await http.request('POST', '/v1/admin/skus', {
      token: admin,
      body: { skuId: 'CANDLE', title: 'Candle', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 40, deduction: 'placement' },
    });
    const orderIds = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const answer = await http.request('POST', '/v1/orders', {
          token: signToken(env.config.AUTH_JWT_SECRET, { sub: `candle-buyer-${i}`, role: 'buyer' }),
          headers: { 'idempotency-key': `candle-${i}` },
          body: { items: [{ skuId: 'CANDLE', qty: 1 }], address: buyerAddress },
        });
        expect(answer.status).toBe(202);
        return answer.body.orderId as string;
      }),
    );
    await waitFor(async () => (await env.db.selectFrom('orders').select('order_id').where('order_id', 'in', orderIds).execute()).length === 40, { what: '40 orders persisted' });
    const timers = new Queue(QUEUE.timers, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
    const ordersTimedBy = (jobs: Awaited<ReturnType<typeof timers.getDelayed>>): string[] =>
      jobs.flatMap((job) => (job.name === 'expire-orders' ? job.data.orders.map((o: { orderId: string }) => o.orderId) : [job.data.orderId]));
    // a batch's deadlines are scheduled just after its commit: the last batch's may follow its rows by a moment
    const delayed = await waitFor(
      async () => {
        const jobs = await timers.getDelayed();
        const timed = new Set(ordersTimedBy(jobs));
        return orderIds.every((orderId) => timed.has(orderId)) && jobs;
      },
      { what: 'a delayed deadline job for each of the 40 orders' },
    );
    await timers.close();
    // 40 deadlines a few ms apart, persisted in a few batches: far fewer jobs than orders
    expect(delayed.length).toBeLessThanOrEqual(20);
    expect(ordersTimedBy(delayed)).toEqual(expect.arrayContaining(orderIds));

    await waitFor(
      async () => (await env.db.selectFrom('orders').select('order_id').where('order_id', 'in', orderIds).where('status', '=', 'EXPIRED').execute()).length === 40,
      { what: 'all 40 expired', timeoutMs: 15_000 },
    );
    const sku = await waitFor(async () => {
      const answer = await http.request('GET', '/v1/admin/skus/CANDLE', { token: admin });
      return answer.body.stock.available === 40 && answer.body.stock;
    });
    expect(sku).toEqual({ available: 40, reserved: 0, sold: 0 });
  });
});

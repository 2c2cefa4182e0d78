import { buildApp, connectApi } from '@orders/api';
import { buyerAddress, createSku, createTestEnv, httpClient, signToken, waitFor, type HttpClient, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Two api instances behind one load balancer, the clock of one a second ahead of the
 * other's (NTP keeps hosts close, not equal). An admin's changes land on either.
 */
describe('member benefits and shipping fees set through api instances whose clocks disagree', () => {
  let env: TestEnv;
  let apiDeps: Awaited<ReturnType<typeof connectApi>>;
  let onTime: FastifyInstance;
  let ahead: FastifyInstance;
  let http: HttpClient;
  let workers: RunningWorkers;
  const token = (sub: string, role: 'buyer' | 'admin' = 'buyer') => signToken(env.config.AUTH_JWT_SECRET, { sub, role });

  beforeAll(async () => {
    env = await createTestEnv('member_benefits_skewed_clocks');
    apiDeps = await connectApi(env.config);
    onTime = await buildApp(apiDeps, { logger: false });
    ahead = await buildApp({ ...apiDeps, clock: () => new Date(Date.now() + 1_000) }, { logger: false });
    http = httpClient(await onTime.listen({ host: '127.0.0.1', port: 0 }), 10);
    workers = startWorkers(connectWorker(env.config, pino({ level: 'silent' })));
    await createSku(http, token('ops', 'admin'), { skuId: 'LAMP', title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await workers?.close();
    await http?.close();
    await ahead?.close();
    await onTime?.close();
    await apiDeps?.close();
    await env?.cleanup();
  });

  const put = async (api: FastifyInstance, url: string, payload: object) => {
    const answer = await api.inject({ method: 'PUT', url, headers: { authorization: `Bearer ${token('ops', 'admin')}` }, payload });
    expect([url, answer.statusCode]).toEqual([url, 200]);
  };

  it("prices a later order with the admin's last word on a level, a buyer's level and a warehouse's shipping fee, though the instance that took it runs a second behind the one that took the change before", async () => {
    await put(onTime, '/v1/admin/member-levels/gold', { discountPercent: 10, freeShipping: false });
    await put(onTime, '/v1/admin/member-levels/silver', { discountPercent: 5, freeShipping: false });
    await put(onTime, '/v1/admin/members/ann', { level: 'gold' });
    await put(onTime, '/v1/admin/warehouses/wh-east/shipping', { feeCents: 100 });

    // gold to 20 %, ann to silver, wh-east's fee to 2.00 on the instance ahead; then gold to 30 %, ann back to gold, the fee to 3.00 on the other
    await put(ahead, '/v1/admin/member-levels/gold', { discountPercent: 20, freeShipping: false });
    await put(ahead, '/v1/admin/members/ann', { level: 'silver' });
    await put(ahead, '/v1/admin/warehouses/wh-east/shipping', { feeCents: 200 });
    await put(onTime, '/v1/admin/member-levels/gold', { discountPercent: 30, freeShipping: false });
    await put(onTime, '/v1/admin/members/ann', { level: 'gold' });
    await put(onTime, '/v1/admin/warehouses/wh-east/shipping', { feeCents: 300 });
    expect(await env.db.selectFrom('member_levels').selectAll().where('level', '=', 'gold').execute()).toEqual([{ level: 'gold', discount_percent: 30, free_shipping: 0 }]);
    expect(await env.db.selectFrom('members').selectAll().execute()).toEqual([{ user_id: 'ann', level: 'gold' }]);

    // the buyer checks out well after both changes, by either clock
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const placed = await http.request('POST', '/v1/orders', { token: token('ann'), headers: { 'idempotency-key': 'ann-1' }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress } });
    expect(placed.status).toBe(202);
    const order = await waitFor(
      async () => {
        const view = await http.request('GET', `/v1/orders/${placed.body.orderId}`, { token: token('ann') });
        return view.body.status === 'PENDING_PAYMENT' && view.body;
      },
      { what: 'the order to be persisted', timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(order.benefits.member).toEqual({ level: 'gold', discountCents: 3_000, freeShipping: false });
    expect(order.amounts).toMatchObject({ subtotalCents: 10_000, discountCents: 3_000, shippingCents: 300, payableCents: 7_300 });
  });
});

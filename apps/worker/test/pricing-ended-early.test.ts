import { buildApp, connectApi } from '@orders/api';
import { priceOrder, type AcceptedOrder, type Sku } from '@orders/domain';
import { CatalogRepository, CouponRepository, PricingRepository } from '@orders/persistence';
import { acceptedOrder, buyerAddress, createSku, createTestEnv, httpClient, signToken, type HttpClient, type TestEnv } from '@orders/testing';
import { OrderWriter, connectWorker, type WorkerDeps } from '@orders/worker';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A promotion or a coupon with a wrong discount, found while it runs: staff end it at once. Every
 * order below is accepted with no worker running and priced afterwards, as in a sale's backlog.
 */
describe('a promotion or a coupon ended early', () => {
  let env: TestEnv;
  let apiDeps: Awaited<ReturnType<typeof connectApi>>;
  let api: FastifyInstance;
  let http: HttpClient;
  let worker: WorkerDeps;
  const token = (sub: string, role: 'buyer' | 'merchant' | 'admin' = 'buyer') => signToken(env.config.AUTH_JWT_SECRET, { sub, role });
  const admin = () => token('ops', 'admin');
  const always = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };

  beforeAll(async () => {
    env = await createTestEnv('pricing_ended_early');
    apiDeps = await connectApi(env.config);
    api = await buildApp(apiDeps, { logger: false });
    http = httpClient(await api.listen({ host: '127.0.0.1', port: 0 }), 10);
    worker = connectWorker(env.config, pino({ level: 'silent' }));
    await createSku(http, admin(), { skuId: 'LAMP', title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
  });
  afterAll(async () => {
    if (worker) {
      await worker.queues.close();
      await worker.db.destroy();
      worker.redis.disconnect();
    }
    await http?.close();
    await api?.close();
    await apiDeps?.close();
    await env?.cleanup();
  });

  const checkout = async (buyer: string, key: string, couponCode?: string) => {
    const placed = await http.request('POST', '/v1/orders', { token: token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, ...(couponCode ? { couponCode } : {}) } });
    expect(placed.status).toBe(202);
    return (await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!;
  };
  const writer = (pricing = new PricingRepository(worker.db)) => new OrderWriter({ ...worker, pricing }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 });
  const order = async (accepted: AcceptedOrder) => (await http.request('GET', `/v1/orders/${accepted.orderId}`, { token: admin() })).body;
  const after = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('ends a promotion at once for the orders accepted after, keeps it on those accepted before though priced later, answers the same when asked again, 404 for no such id, 403 to all but admins', async () => {
    const promotion = { promotionId: 'WRONG-DEAL', title: '9,000 off (meant 900)', thresholdCents: 1, offCents: 9_000, skuIds: ['LAMP'], ...always };
    expect((await http.request('POST', '/v1/admin/promotions', { token: admin(), body: promotion })).status).toBe(201);
    const before = await checkout('ann', 'ann-1');

    for (const other of [token('ann'), token('shop', 'merchant')]) {
      const refused = await http.request('PUT', '/v1/admin/promotions/WRONG-DEAL/end', { token: other });
      expect([refused.status, refused.body.code]).toEqual([403, 'FORBIDDEN']);
    }
    const ended = await http.request('PUT', '/v1/admin/promotions/WRONG-DEAL/end', { token: admin() });
    expect(ended.status).toBe(200);
    const { endsAt, ...rest } = ended.body;
    const { endsAt: _wasToEnd, ...created } = promotion;
    expect(rest).toEqual({ ...created, startsAt: '2020-01-01T00:00:00.000Z' });
    expect(Date.parse(endsAt)).toBeGreaterThan(Date.parse(before.acceptedAt));
    const afterEnd = await checkout('bob', 'bob-1');
    // the end is a millisecond after its date (an order accepted in that millisecond before it keeps the promotion)
    expect(Date.parse(afterEnd.acceptedAt)).toBeGreaterThanOrEqual(Date.parse(endsAt) - 1);

    const again = await http.request('PUT', '/v1/admin/promotions/WRONG-DEAL/end', { token: admin() });
    expect([again.status, again.body]).toEqual([200, ended.body]);
    const missing = await http.request('PUT', '/v1/admin/promotions/NO-SUCH/end', { token: admin() });
    expect([missing.status, missing.body.code]).toEqual([404, 'NOT_FOUND']);

    await writer().persist({ orders: [before, afterEnd] });
    expect((await order(before)).benefits.promotions).toEqual([{ promotionId: 'WRONG-DEAL', discountCents: 9_000 }]);
    expect((await order(before)).amounts.payableCents).toBe(1_000);
    expect((await order(afterEnd)).benefits.promotions).toEqual([]);
    expect((await order(afterEnd)).amounts.payableCents).toBe(10_000);
  });

  it('prices a batch again when a promotion it read was ended, between two of its orders, while it was priced', async () => {
    const window = { startsAt: new Date(always.startsAt), endsAt: new Date(always.endsAt) };
    await new PricingRepository(worker.db).createPromotion({ promotionId: 'ENDED-MID-BATCH', title: '500 off', thresholdCents: 1, offCents: 500, skuIds: ['LAMP'], ...window }, async () => new Date(Date.parse(always.startsAt)));
    const first = await checkout('cy', 'cy-1');
    await after(20);
    const second = await checkout('dee', 'dee-1');
    // dated between the two acceptances: the first keeps the promotion, the second is priced without it
    const endedAt = new Date((Date.parse(first.acceptedAt) + Date.parse(second.acceptedAt)) / 2);
    let readings = 0;
    const ending = new (class extends PricingRepository {
      override async rulesFor(...args: Parameters<PricingRepository['rulesFor']>) {
        const rules = await super.rulesFor(...args);
        if (++readings === 1) await this.endPromotion('ENDED-MID-BATCH', async () => endedAt);
        return rules;
      }
    })(worker.db);
    await writer(ending).persist({ orders: [first, second] });
    expect(readings).toBe(2);
    expect((await order(first)).benefits.promotions).toEqual([{ promotionId: 'ENDED-MID-BATCH', discountCents: 500 }]);
    expect((await order(second)).benefits.promotions).toEqual([]);
  });

  it('ends a coupon at once: checkout refuses it from the answer on, the orders accepted with it before keep it, and GET shows its end', async () => {
    const coupon = { code: 'TYPO90', kind: 'percent', percentOff: 90, minSpendCents: 0, perBuyerLimit: 5, totalLimit: 100, ...always };
    expect((await http.request('POST', '/v1/admin/coupons', { token: admin(), body: coupon })).status).toBe(201);
    const before = await checkout('eve', 'eve-1', 'TYPO90');

    const ended = await http.request('PUT', '/v1/admin/coupons/TYPO90/end', { token: admin() });
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ code: 'TYPO90', percentOff: 90, totalLimit: 100, usesHeld: 1, usesLeft: 99 });
    expect(Date.parse(ended.body.endsAt)).toBeGreaterThan(Date.parse(before.acceptedAt));
    expect((await http.request('GET', '/v1/admin/coupons/TYPO90', { token: admin() })).body).toEqual(ended.body);

    const refused = await http.request('POST', '/v1/orders', { token: token('eve'), headers: { 'idempotency-key': 'eve-2' }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: 'TYPO90' } });
    expect([refused.status, refused.body.code]).toEqual([422, 'COUPON_INVALID']);
    const again = await http.request('PUT', '/v1/admin/coupons/TYPO90/end', { token: admin() });
    expect([again.status, again.body]).toEqual([200, ended.body]);
    const missing = await http.request('PUT', '/v1/admin/coupons/NOSUCH/end', { token: admin() });
    expect([missing.status, missing.body.code]).toEqual([404, 'NOT_FOUND']);

    await writer().persist(before);
    expect((await order(before)).benefits.coupon).toEqual({ code: 'TYPO90', discountCents: 9_000 });
    // the stock repair publishes the coupons MySQL holds in force: this one no more
    expect((await new CouponRepository(worker.db).inForce(new Date())).map((c) => c.code)).not.toContain('TYPO90');
  });

  it('ends a coupon Redis lost in MySQL now, and one not started at its start: it never runs', async () => {
    const lost = { code: 'LOSTCOPY', kind: 'fixed', offCents: 100, minSpendCents: 0, perBuyerLimit: 1, ...always };
    const later = { code: 'NEXTYEAR', kind: 'fixed', offCents: 100, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2099-01-01T00:00:00Z', endsAt: '2099-02-01T00:00:00Z' };
    for (const coupon of [lost, later]) expect((await http.request('POST', '/v1/admin/coupons', { token: admin(), body: coupon })).status).toBe(201);
    await worker.redis.del(worker.inventory.keys.coupon(worker.inventory.keys.couponGroup(), 'LOSTCOPY'));

    const startedAt = Date.now();
    const ended = await http.request('PUT', '/v1/admin/coupons/LOSTCOPY/end', { token: admin() });
    expect([ended.status, ended.body.usesHeld]).toEqual([200, null]);
    expect(Math.abs(Date.parse(ended.body.endsAt) - startedAt)).toBeLessThan(5_000);

    const withdrawn = await http.request('PUT', '/v1/admin/coupons/NEXTYEAR/end', { token: admin() });
    expect([withdrawn.status, withdrawn.body.startsAt, withdrawn.body.endsAt]).toEqual([200, '2099-01-01T00:00:00.000Z', '2099-01-01T00:00:00.000Z']);
    expect(await worker.redis.hget(worker.inventory.keys.coupon(worker.inventory.keys.couponGroup(), 'NEXTYEAR'), 'endsAt')).toBe(String(Date.parse(later.startsAt)));
  });
});

/**
 * A promotion ended (PUT /v1/admin/promotions/:promotionId/end) in the
 * same millisecond, by Redis's clock, as a checkout the intake accepted just before it. The coupon's
 * end (endCoupon-1.lua) ends at now + 1 ms for exactly this checkout ("a checkout that ran in this
 * same millisecond, before this script, was accepted at `now` and is priced ... with the coupon");
 * the promotion's end is a millisecond after its date alike.
 */
describe('a promotion ended in the millisecond an order was accepted, before the end', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('promotion_ended_same_ms');
  });
  afterAll(async () => env?.cleanup());

  it('keeps the promotion on that order, as the end of a coupon keeps the coupon', async () => {
    const lamp: Sku = { skuId: 'LAMP', title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh', deduction: 'placement', flashSale: null };
    await new CatalogRepository(env.db).createSku(lamp, 10, 'opening-LAMP', async () => undefined);
    const pricing = new PricingRepository(env.db);
    const t = Date.now();
    await pricing.createPromotion({ promotionId: 'DEAL', title: '1,000 off', thresholdCents: 1, offCents: 1_000, skuIds: null, startsAt: new Date(t - 60_000), endsAt: new Date(t + 86_400_000) }, async () => new Date(t - 30_000));
    // the checkout ran at Redis's millisecond t; the end, right after it, read Redis's clock in that same millisecond
    const accepted = acceptedOrder('01JRVSMS', 1, new Date(t), { items: [{ skuId: 'LAMP', qty: 1 }] });
    await pricing.endPromotion('DEAL', async () => new Date(t));
    const skus = new Map([['LAMP', lamp]]);
    const rules = await pricing.rulesFor([accepted], skus);
    const priced = priceOrder('standard', accepted.items, skus, new Date(accepted.acceptedAt), rules.byOrder.get(accepted.orderId));
    expect(priced.applied.promotions.map((p: { promotionId: string }) => p.promotionId)).toEqual(['DEAL']);
  });
});

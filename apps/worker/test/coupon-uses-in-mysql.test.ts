import { buildApp, connectApi } from '@orders/api';
import type { AcceptedOrder, Sku } from '@orders/domain';
import { OrderRepository, PricingRepository } from '@orders/persistence';
import { buyerAddress, createSku, createTestEnv, httpClient, signToken, type HttpClient, type TestEnv } from '@orders/testing';
import { OrderWriter, connectWorker, type WorkerDeps } from '@orders/worker';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * MySQL is the system of record for a buyer's uses of a coupon: Redis stops a checkout past
 * the buyer's limit, but a count Redis lost lets one through, and the worker prices it
 * without the coupon when MySQL already has the buyer's use. Here the two orders wait
 * unpersisted together and two workers price them at once, each before the other writes.
 */
describe("a once-per-buyer coupon held in MySQL when two workers persist the buyer's orders at once", () => {
  let env: TestEnv;
  let apiDeps: Awaited<ReturnType<typeof connectApi>>;
  let api: FastifyInstance;
  let http: HttpClient;
  let worker: WorkerDeps;
  const token = (sub: string, role: 'buyer' | 'admin' = 'buyer') => signToken(env.config.AUTH_JWT_SECRET, { sub, role });

  beforeAll(async () => {
    env = await createTestEnv('coupon_uses_in_mysql');
    apiDeps = await connectApi(env.config);
    api = await buildApp(apiDeps, { logger: false });
    http = httpClient(await api.listen({ host: '127.0.0.1', port: 0 }), 10);
    worker = connectWorker(env.config, pino({ level: 'silent' }));
    await createSku(http, token('ops', 'admin'), { skuId: 'LAMP', title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    const coupon = { code: 'ONCE', kind: 'fixed', offCents: 1_000, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await http.request('POST', '/v1/admin/coupons', { token: token('ops', 'admin'), body: coupon })).status).toBe(201);
  });
  afterAll(async () => {
    await worker?.queues.close();
    await worker?.db.destroy();
    worker?.redis.disconnect();
    await http?.close();
    await api?.close();
    await apiDeps?.close();
    await env?.cleanup();
  });

  const checkout = async (buyer: string, key: string): Promise<AcceptedOrder> => {
    const answer = await http.request('POST', '/v1/orders', { token: token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: 'ONCE' } });
    expect(answer.status).toBe(202);
    return (await worker.inventory.findAcceptedOrder(answer.body.orderId as string))!;
  };

  /** Pricing rules as MySQL has them, handed over only once both workers have read theirs: neither has written yet. */
  const pricingReadTogether = () => {
    let arrived = 0;
    let bothRead: () => void;
    const together = new Promise<void>((resolve) => (bothRead = resolve));
    return (db: WorkerDeps['db']) =>
      new (class extends PricingRepository {
        override async rulesFor(...args: Parameters<PricingRepository['rulesFor']>) {
          const rules = await super.rulesFor(...args);
          if (++arrived === 2) bothRead();
          await together;
          return rules;
        }
      })(db);
  };

  it('discounts one of the two orders and records one use, the other order priced without the coupon', async () => {
    const first = await checkout('cal', 'cal-1');
    // Redis lost its count of cal's use: the second order gets through the checkout
    await env.redis.del(worker.inventory.keys.couponUses(worker.inventory.keys.groupOf('cal'), 'ONCE', 'cal'));
    const second = await checkout('cal', 'cal-2');

    // two workers, each with a pool of its own, each priced before either writes
    const pricing = pricingReadTogether();
    const options = { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 };
    const one = new OrderWriter({ ...worker, pricing: pricing(worker.db) }, options);
    const other = new OrderWriter({ ...worker, orders: new OrderRepository(env.db), pricing: pricing(env.db) }, options);
    await Promise.all([one.persist(first), other.persist(second)]);

    const redemptions = await env.db.selectFrom('coupon_redemptions').select(['order_id', 'status']).where('code', '=', 'ONCE').execute();
    expect(redemptions.map((r) => r.status)).toEqual(['used']);
    const orders = await Promise.all([first, second].map(async ({ orderId }) => (await http.request('GET', `/v1/orders/${orderId}`, { token: token('ops', 'admin') })).body));
    const discounted = orders.filter((order) => order.benefits.coupon !== null);
    const fullPrice = orders.filter((order) => order.benefits.coupon === null);
    expect(discounted.map((order) => order.orderId)).toEqual([redemptions[0]!.order_id]);
    expect(discounted.map((order) => [order.status, order.amounts.discountCents, order.amounts.payableCents])).toEqual([['PENDING_PAYMENT', 1_000, 9_000]]);
    expect(fullPrice.map((order) => [order.status, order.amounts.discountCents, order.amounts.payableCents])).toEqual([['PENDING_PAYMENT', 0, 10_000]]);

    // cancelled, the discounted order gives its use back: cal's next order is discounted
    const cancelled = await http.request('POST', `/v1/orders/${discounted[0]!.orderId}/cancel`, { token: token('cal'), body: { reason: 'changed my mind' } });
    expect(cancelled.body.status).toBe('CANCELLED');
    const third = await checkout('cal', 'cal-3');
    await one.persist(third);
    const order = (await http.request('GET', `/v1/orders/${third.orderId}`, { token: token('ops', 'admin') })).body;
    expect([order.benefits.coupon, order.amounts.payableCents]).toEqual([{ code: 'ONCE', discountCents: 1_000 }, 9_000]);
  });

  it("does not let an order written before, its job delivered again in the same batch, take the coupon use of the buyer's new order", async () => {
    const big = { code: 'BIG-SPEND', kind: 'fixed', offCents: 3_000, minSpendCents: 15_000, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await http.request('POST', '/v1/admin/coupons', { token: token('ops', 'admin'), body: big })).status).toBe(201);
    const order = async (key: string, qty: number) => {
      const answer = await http.request('POST', '/v1/orders', { token: token('dee'), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'LAMP', qty }], address: buyerAddress, couponCode: 'BIG-SPEND' } });
      expect(answer.status).toBe(202);
      return (await worker.inventory.findAcceptedOrder(answer.body.orderId as string))!;
    };
    const writer = new OrderWriter({ ...worker, pricing: new PricingRepository(worker.db) }, { batchSize: 500, batchWaitMs: 200, busyIntervalMs: 250 });
    // one lamp, under the coupon's minimum spend: written without it, its use given back to dee
    const small = await order('dee-1', 1);
    await writer.persist(small);
    // two lamps, over it: the use is dee's again, and the first order's job is delivered again beside it
    const large = await order('dee-2', 2);
    await Promise.all([writer.persist(small), writer.persist(large)]);

    const read = async (orderId: string) => (await http.request('GET', `/v1/orders/${orderId}`, { token: token('ops', 'admin') })).body;
    expect([(await read(small.orderId)).benefits.coupon, (await read(small.orderId)).amounts.payableCents]).toEqual([null, 10_000]);
    const discounted = await read(large.orderId);
    expect([discounted.benefits.coupon, discounted.amounts.payableCents]).toEqual([{ code: 'BIG-SPEND', discountCents: 3_000 }, 17_000]);
    const redemptions = await env.db.selectFrom('coupon_redemptions').select(['order_id', 'status']).where('code', '=', 'BIG-SPEND').execute();
    expect(redemptions).toEqual([{ order_id: large.orderId, status: 'used' }]);
  });

  it('keeps the use of an order written with the coupon when its job, delivered again, is priced by reads that raced that write', async () => {
    const first = await checkout('eve', 'eve-1');
    const options = { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 };
    await new OrderWriter({ ...worker, pricing: new PricingRepository(worker.db) }, options).persist(first);
    // the redelivery's pricing read the order's use of the coupon but not the order itself (written between
    // its two reads): the order looks new, its own use counts against it, and it is priced without the coupon
    const racing = new (class extends PricingRepository {
      override async rulesFor(orders: readonly AcceptedOrder[], skus: ReadonlyMap<string, Sku>) {
        const unwritten = (orderId: string) => `${orderId}-read-before-written`;
        const rules = await super.rulesFor(orders.map((o) => ({ ...o, orderId: unwritten(o.orderId) })), skus);
        return { ...rules, byOrder: new Map(orders.map((o) => [o.orderId, rules.byOrder.get(unwritten(o.orderId))!])) };
      }
    })(worker.db);
    await new OrderWriter({ ...worker, pricing: racing }, options).persist(first);

    // written once, with the coupon; its use stays counted in Redis: eve's next order with the coupon is refused at checkout
    const order = (await http.request('GET', `/v1/orders/${first.orderId}`, { token: token('ops', 'admin') })).body;
    expect(order.benefits.coupon).toEqual({ code: 'ONCE', discountCents: 1_000 });
    const again = await http.request('POST', '/v1/orders', { token: token('eve'), headers: { 'idempotency-key': 'eve-2' }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: 'ONCE' } });
    expect([again.status, again.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  });

  it("gives the buyer's one use to the lamp ordered after a cart of flash-sale lines alone that named the coupon too, both priced in one batch", async () => {
    const now = Date.now();
    const sale = { priceCents: 100, startsAt: new Date(now - 3_600_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 5 };
    await createSku(http, token('ops', 'admin'), { skuId: 'FLASH-PIN', title: 'Pin', priceCents: 500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', flashSale: sale });
    // the pin's cart takes nothing off with the coupon and its checkout holds no use; the lamp's holds fran's one use
    const pin = await http.request('POST', '/v1/orders', { token: token('fran'), headers: { 'idempotency-key': 'fran-pin' }, body: { items: [{ skuId: 'FLASH-PIN', qty: 1 }], address: buyerAddress, couponCode: 'ONCE' } });
    expect(pin.status).toBe(202);
    const lamp = await checkout('fran', 'fran-lamp');
    const writer = new OrderWriter({ ...worker, pricing: new PricingRepository(worker.db) }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 });
    // a sale's backlog: both jobs in one batch, the pin's first
    await Promise.all([(await worker.inventory.findAcceptedOrder(pin.body.orderId as string))!, lamp].map((order) => writer.persist(order)));

    const view = async (orderId: string) => (await http.request('GET', `/v1/orders/${orderId}`, { token: token('ops', 'admin') })).body;
    expect((await view(pin.body.orderId as string)).benefits.coupon).toBeNull();
    const lampView = await view(lamp.orderId);
    expect([lampView.benefits.coupon, lampView.amounts.payableCents]).toEqual([{ code: 'ONCE', discountCents: 1_000 }, 9_000]);
  });

  it('puts a first-1-order coupon Redis lost back on sale by the repair alone, not by its create sent again, which would count no use held', async () => {
    const coupon = { code: 'FIRST1', kind: 'fixed', offCents: 500, minSpendCents: 0, perBuyerLimit: 1, totalLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    const admin = token('ops', 'admin');
    expect((await http.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
    const checkoutFirst1 = (buyer: string) =>
      http.request('POST', '/v1/orders', { token: token(buyer), headers: { 'idempotency-key': `${buyer}-first1` }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: 'FIRST1' } });
    const first = await checkoutFirst1('ada');
    expect(first.status).toBe(202);
    await new OrderWriter({ ...worker, pricing: new PricingRepository(worker.db) }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 }).persist((await worker.inventory.findAcceptedOrder(first.body.orderId as string))!);

    // Redis loses checkout's copy of the coupon; ada's unpaid order holds its one use
    await env.redis.del(worker.inventory.keys.coupon(worker.inventory.keys.couponGroup(), 'FIRST1'));
    const again = await http.request('POST', '/v1/admin/coupons', { token: admin, body: coupon });
    expect([again.status, again.body.code]).toEqual([409, 'CONFLICT']);
    expect((await http.request('GET', '/v1/admin/coupons/FIRST1', { token: admin })).body.usesHeld).toBeNull();
    // off sale until the repair, never on sale with its use free for a second buyer
    const second = await checkoutFirst1('bea');
    expect([second.status, second.body.code]).toEqual([422, 'COUPON_INVALID']);
  });
});

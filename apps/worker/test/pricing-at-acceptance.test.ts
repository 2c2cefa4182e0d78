import { buildApp, connectApi } from '@orders/api';
import type { AcceptedOrder } from '@orders/domain';
import { PricingRepository, createDb, type Database, type OrderDb } from '@orders/persistence';
import { buyerAddress, createSku, createTestEnv, holdRow, httpClient, rowLockWaits, signToken, waitFor, type HttpClient, type TestEnv } from '@orders/testing';
import { OrderWriter, connectWorker, startWorkers, type RunningWorkers, type WorkerDeps } from '@orders/worker';
import type { FastifyInstance } from 'fastify';
import { Kysely, MysqlAdapter, type CompiledQuery, MysqlDialect, MysqlIntrospector, MysqlQueryCompiler, type DatabaseConnection, type Driver } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The intake accepts orders while no worker runs (a sale's backlog, a MySQL outage, here:
 * workers started late), so every order below waits in the queue before it is priced.
 */
describe('orders priced with the rules as they stood when the intake accepted them', () => {
  let env: TestEnv;
  let apiDeps: Awaited<ReturnType<typeof connectApi>>;
  let api: FastifyInstance;
  let http: HttpClient;
  let worker: WorkerDeps;
  let workers: RunningWorkers | undefined;
  const token = (sub: string, role: 'buyer' | 'admin' = 'buyer') => signToken(env.config.AUTH_JWT_SECRET, { sub, role });
  const admin = () => token('ops', 'admin');
  const always = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };

  beforeAll(async () => {
    env = await createTestEnv('pricing_at_acceptance');
    apiDeps = await connectApi(env.config);
    api = await buildApp(apiDeps, { logger: false });
    http = httpClient(await api.listen({ host: '127.0.0.1', port: 0 }), 10);
    worker = connectWorker(env.config, pino({ level: 'silent' }));
    await createSku(http, admin(), { skuId: 'LAMP', title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    const setUp: Array<[string, string, unknown]> = [
      ['PUT', '/v1/admin/warehouses/wh-east/shipping', { feeCents: 500 }],
      ['PUT', '/v1/admin/member-levels/gold', { discountPercent: 10, freeShipping: false }],
      ['PUT', '/v1/admin/members/ann', { level: 'gold' }],
      ['POST', '/v1/admin/coupons', { code: 'ONCE', kind: 'fixed', offCents: 1_000, minSpendCents: 0, perBuyerLimit: 1, ...always }],
    ];
    for (const [method, path, body] of setUp) expect((await http.request(method, path, { token: admin(), body })).status).toBeLessThan(300);
  });
  afterAll(async () => {
    if (workers) await workers.close();
    else if (worker) {
      await worker.queues.close();
      await worker.db.destroy();
      worker.redis.disconnect();
    }
    await http?.close();
    await api?.close();
    await apiDeps?.close();
    await env?.cleanup();
  });

  const checkout = (buyer: string, key: string, couponCode?: string) =>
    http.request('POST', '/v1/orders', { token: token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, ...(couponCode ? { couponCode } : {}) } });
  const persisted = (orderId: string) =>
    waitFor(
      async () => {
        const order = await http.request('GET', `/v1/orders/${orderId}`, { token: admin() });
        return order.body.status === 'PENDING_PAYMENT' && order.body;
      },
      { what: `order ${orderId} to be persisted`, timeoutMs: 15_000, intervalMs: 50 },
    );

  // first: store-wide promotions the file's later tests leave would overlap the sofa's hundred
  it('refuses a promotion past the hundredth overlapping in time over a SKU (409), and writes an order that takes the hundred, each of the longest id', async () => {
    await createSku(http, admin(), { skuId: 'SOFA', title: 'Sofa', priceCents: 100_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const promote = (promotionId: string, body: Record<string, unknown> = {}) =>
      http.request('POST', '/v1/admin/promotions', { token: admin(), body: { promotionId: promotionId.padEnd(64, 'X'), title: '1 cent off', thresholdCents: 0, offCents: 1, skuIds: ['SOFA'], ...always, ...body } });
    try {
      for (let i = 0; i < 100; i++) expect((await promote(`STACK-${i}-`)).status).toBe(201);
      const refused = await promote('STACK-100-');
      expect([refused.status, refused.body.code]).toEqual([409, 'CONFLICT']);
      expect(refused.body.detail).toMatch(/^At most 100 promotions may overlap in time over a SKU: 100 already overlap/);
      // another SKU's, or the sofa's at another time, is taken
      expect((await promote('STACK-LAMP-', { skuIds: ['LAMP'], thresholdCents: 1_000_000 })).status).toBe(201);
      expect((await promote('STACK-LATER-', { startsAt: always.endsAt, endsAt: '2101-01-01T00:00:00Z' })).status).toBe(201);

      const placed = await http.request('POST', '/v1/orders', { token: token('stan'), headers: { 'idempotency-key': 'stan-sofa' }, body: { items: [{ skuId: 'SOFA', qty: 1 }], address: buyerAddress } });
      expect(placed.status).toBe(202);
      await new OrderWriter({ ...worker, pricing: new PricingRepository(worker.db) }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 }).persist((await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!);
      const sofa = (await http.request('GET', `/v1/orders/${placed.body.orderId}`, { token: admin() })).body;
      expect([sofa.benefits.promotions.length, sofa.amounts.payableCents]).toEqual([100, 100_000 - 100 + 500]);
    } finally {
      await env.db.deleteFrom('promotions').where('promotion_id', 'like', 'STACK-%').execute();
    }
  });

  it('keeps the coupon of an order that a replayed checkout brings twice into one writer batch: one discount, one redemption, the use not given back', async () => {
    const first = await checkout('bob', 'bob-1', 'ONCE');
    const replay = await checkout('bob', 'bob-1', 'ONCE');
    expect([first.status, replay.status, replay.body.orderId]).toEqual([202, 202, first.body.orderId]);
    const accepted = (await worker.inventory.findAcceptedOrder(first.body.orderId))!;

    // the first job and the replay's job, run concurrently by one worker: one batch
    const writer = new OrderWriter({ ...worker, pricing: new PricingRepository(worker.db) }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 });
    await Promise.all([writer.persist(accepted), writer.persist({ orders: [accepted] })]);

    const order = await persisted(first.body.orderId);
    expect(order.benefits.coupon).toEqual({ code: 'ONCE', discountCents: 1_000 });
    expect(order.amounts).toMatchObject({ subtotalCents: 10_000, discountCents: 1_000, shippingCents: 500, payableCents: 9_500 });
    expect(await env.db.selectFrom('coupon_redemptions').select(['order_id', 'status']).execute()).toEqual([{ order_id: first.body.orderId, status: 'used' }]);
    expect((await checkout('bob', 'bob-2', 'ONCE')).body.code).toBe('COUPON_LIMIT_EXCEEDED');
  });

  it('leaves a promotion created through an api host whose clock runs 10 minutes behind off the order accepted before it', async () => {
    const waiting = await checkout('bo', 'bo-1');
    expect(waiting.status).toBe(202);
    const behind = await buildApp({ ...apiDeps, clock: () => new Date(Date.now() - 600_000) }, { logger: false });
    const lagging = httpClient(await behind.listen({ host: '127.0.0.1', port: 0 }), 2);
    try {
      const created = await lagging.request('POST', '/v1/admin/promotions', { token: admin(), body: { promotionId: 'LATE-HOST', title: '700 off', thresholdCents: 1, offCents: 700, skuIds: ['LAMP'], ...always } });
      expect(created.status).toBe(201);
    } finally {
      await lagging.close();
      await behind.close();
    }
    try {
      // priced after the promotion exists, with the rules as they stood when the order was accepted
      const accepted = (await worker.inventory.findAcceptedOrder(waiting.body.orderId as string))!;
      await new OrderWriter({ ...worker, pricing: new PricingRepository(worker.db) }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 }).persist(accepted);
      const order = (await http.request('GET', `/v1/orders/${accepted.orderId}`, { token: admin() })).body;
      expect(order.benefits.promotions).toEqual([]);
    } finally {
      // the next test's orders are priced without it
      await env.db.deleteFrom('promotions').where('promotion_id', '=', 'LATE-HOST').execute();
    }
  });

  it("prices by the member levels and shipping fees in force at acceptance, by Redis's clock, though they were changed through api hosts whose clocks are 10 minutes off", async () => {
    await createSku(http, admin(), { skuId: 'DESK', title: 'Desk', priceCents: 20_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    expect((await http.request('PUT', '/v1/admin/warehouses/wh-west/shipping', { token: admin(), body: { feeCents: 400 } })).status).toBe(200);
    const hostOff = async (offMs: number) => {
      const app = await buildApp({ ...apiDeps, clock: () => new Date(Date.now() + offMs) }, { logger: false });
      return { app, http: httpClient(await app.listen({ host: '127.0.0.1', port: 0 }), 2) };
    };
    const [ahead, behind] = [await hostOff(600_000), await hostOff(-600_000)];
    const desk = (key: string) => http.request('POST', '/v1/orders', { token: token('cy'), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'DESK', qty: 1 }], address: buyerAddress } });
    let first, second;
    try {
      first = await desk('cy-1');
      // after the first checkout, not for it: the fee raised through a host behind
      expect((await behind.http.request('PUT', '/v1/admin/warehouses/wh-west/shipping', { token: admin(), body: { feeCents: 900 } })).status).toBe(200);
      // before the second, for it: the buyer made gold through a host ahead
      expect((await ahead.http.request('PUT', '/v1/admin/members/cy', { token: admin(), body: { level: 'gold' } })).status).toBe(200);
      second = await desk('cy-2');
    } finally {
      for (const host of [ahead, behind]) {
        await host.http.close();
        await host.app.close();
      }
    }
    const writer = new OrderWriter({ ...worker, pricing: new PricingRepository(worker.db) }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 });
    const priced = [];
    for (const placed of [first, second]) {
      expect(placed.status).toBe(202);
      await writer.persist((await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!);
      priced.push((await http.request('GET', `/v1/orders/${placed.body.orderId}`, { token: admin() })).body);
    }
    expect(priced.map((order) => [order.amounts.shippingCents, order.benefits.member?.level ?? null])).toEqual([
      [400, null],
      [900, 'gold'],
    ]);
  });

  it('prices an order accepted while a shipping fee change waited to commit with the new fee, the one in force from before its acceptance', async () => {
    await createSku(http, admin(), { skuId: 'RUG', title: 'Rug', priceCents: 5_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-north', stock: 10, deduction: 'placement' });
    expect((await http.request('PUT', '/v1/admin/warehouses/wh-north/shipping', { token: admin(), body: { feeCents: 300 } })).status).toBe(200);
    // another admin's change of the fee, not committed yet: this one queues behind its row
    const other = await holdRow(env.db, 'warehouse_shipping', 'warehouse_id', 'wh-north');
    let change: Promise<{ status: number }> | undefined;
    let persisting: Promise<void> | undefined;
    try {
      change = http.request('PUT', '/v1/admin/warehouses/wh-north/shipping', { token: admin(), body: { feeCents: 800 } });
      await waitFor(async () => (await rowLockWaits(env.db)).length > 0, { what: 'the fee change to wait for the row' });
      const placed = await http.request('POST', '/v1/orders', { token: token('dee'), headers: { 'idempotency-key': 'dee-1' }, body: { items: [{ skuId: 'RUG', qty: 1 }], address: buyerAddress } });
      expect(placed.status).toBe(202);
      const accepted = (await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!;
      persisting = new OrderWriter({ ...worker, pricing: new PricingRepository(worker.db) }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 }).persist(accepted);
      // priced while the change waits, the order must not be written with the fee it replaces
      await Promise.race([persisting, new Promise((resolve) => setTimeout(resolve, 500))]);
    } finally {
      await other.release();
    }
    expect((await change).status).toBe(200);
    await persisting;
    const orders = await env.db.selectFrom('orders').select('shipping_cents').where('user_id', '=', 'dee').execute();
    expect(orders.map((order) => Number(order.shipping_cents))).toEqual([800]);
  });

  /** Persists the order through a writer whose every reading of the rules (the nth) is followed by `afterReading`: how many readings it took. */
  const persistedWhile = async (accepted: AcceptedOrder, afterReading: (pricing: PricingRepository, n: number) => Promise<void>): Promise<number> => {
    let readings = 0;
    const changing = new (class extends PricingRepository {
      override async rulesFor(...args: Parameters<PricingRepository['rulesFor']>) {
        const rules = await super.rulesFor(...args);
        await afterReading(this, ++readings);
        return rules;
      }
    })(worker.db);
    await new OrderWriter({ ...worker, pricing: changing }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 }).persist(accepted);
    return readings;
  };

  it("writes a batch priced once while a script changes other buyers' levels one by one meanwhile", async () => {
    const placed = await checkout('gil', 'gil-1');
    expect(placed.status).toBe(202);
    const accepted = (await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!;
    // each reading of the rules is followed by another buyer's level change, committed before the batch is written
    const pricings = await persistedWhile(accepted, async (pricing, n) => {
      if (n <= 8) await pricing.setMember(`member-${n}`, 'gold', async () => new Date(Date.parse(accepted.acceptedAt) - 1_000));
    });
    expect(pricings).toBe(1);
    expect(await env.db.selectFrom('orders').select('order_id').where('order_id', '=', accepted.orderId).execute()).toHaveLength(1);
  });

  it("writes a batch priced once while an admin loads a sale's promotions and changes the fee of a warehouse it does not ship from, each committed meanwhile", async () => {
    const placed = await checkout('ike', 'ike-1');
    expect(placed.status).toBe(202);
    const accepted = (await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!;
    const acceptedAt = Date.parse(accepted.acceptedAt);
    const window = { startsAt: new Date(always.startsAt), endsAt: new Date(always.endsAt) };
    try {
      // each moves the rules' version; none prices the order: the promotions are dated after its acceptance, the fee is another warehouse's
      const pricings = await persistedWhile(accepted, async (pricing, n) => {
        if (n > 8) return;
        await pricing.createPromotion({ promotionId: `LOADED-${n}`, title: 'a later deal', thresholdCents: 1, offCents: 100, skuIds: null, ...window }, async () => new Date(acceptedAt + 1_000));
        await pricing.setShippingFee('wh-far', 100 * n, async () => new Date(acceptedAt - 1_000));
      });
      expect(pricings).toBe(1);
      const order = (await http.request('GET', `/v1/orders/${accepted.orderId}`, { token: admin() })).body;
      expect([order.benefits.promotions, order.amounts.payableCents]).toEqual([[], 10_000 + 500]);
    } finally {
      await env.db.deleteFrom('promotions').where('promotion_id', 'like', 'LOADED-%').execute();
    }
  });

  it("prices a batch again when a promotion in force at its order's acceptance (created through a host whose clock is behind) was committed while it was priced", async () => {
    const placed = await checkout('jon', 'jon-1');
    expect(placed.status).toBe(202);
    const accepted = (await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!;
    const window = { startsAt: new Date(always.startsAt), endsAt: new Date(always.endsAt) };
    try {
      const pricings = await persistedWhile(accepted, async (pricing, n) => {
        if (n === 1) await pricing.createPromotion({ promotionId: 'EARLIER', title: '3.00 off', thresholdCents: 1, offCents: 300, skuIds: null, ...window }, async () => new Date(Date.parse(accepted.acceptedAt) - 1_000));
      });
      expect(pricings).toBe(2);
      const order = (await http.request('GET', `/v1/orders/${accepted.orderId}`, { token: admin() })).body;
      expect(order.benefits.promotions).toEqual([{ promotionId: 'EARLIER', discountCents: 300 }]);
    } finally {
      await env.db.deleteFrom('promotions').where('promotion_id', '=', 'EARLIER').execute();
    }
  });

  it("prices a batch again when its own buyer's level, in force at the order's acceptance, was changed while it was priced", async () => {
    const placed = await checkout('hal', 'hal-1');
    expect(placed.status).toBe(202);
    const accepted = (await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!;
    // made gold through a host whose clock is behind: the change is in force for the order, though priced without it
    const pricings = await persistedWhile(accepted, async (pricing, n) => {
      if (n === 1) await pricing.setMember('hal', 'gold', async () => new Date(Date.parse(accepted.acceptedAt) - 1_000));
    });
    expect(pricings).toBe(2);
    const order = (await http.request('GET', `/v1/orders/${accepted.orderId}`, { token: admin() })).body;
    expect(order.benefits.member?.level).toBe('gold');
  });

  it("prices an order with the level its buyer was given, in force at its acceptance, while the batch's rules were being read", async () => {
    expect((await http.request('PUT', '/v1/admin/member-levels/bronze', { token: admin(), body: { discountPercent: 20, freeShipping: false } })).status).toBe(200);
    const placed = await checkout('ivy', 'ivy-1');
    expect(placed.status).toBe(202);
    const accepted = (await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!;
    // the rules' reads run side by side on a pool's connections, in no set order: here the levels'
    // definitions are read first, then ivy is made bronze (in force for the order), then the buyers' levels
    const { pool } = createDb(env.config.MYSQL_URL, 4);
    const driver = new MysqlDialect({ pool }).createDriver();
    let definitionsRead!: () => void;
    const definitions = new Promise<void>((resolve) => (definitionsRead = resolve));
    let changed = false;
    const connections = new Map<DatabaseConnection, DatabaseConnection>();
    const racing: Driver = {
      init: () => driver.init(),
      acquireConnection: async () => {
        const connection = await driver.acquireConnection();
        const wrapped: DatabaseConnection = {
          executeQuery: async <R>(query: CompiledQuery) => {
            if (!changed && /from `member_history`/.test(query.sql) && !query.sql.includes('member_level_history')) {
              changed = true;
              await Promise.race([definitions, new Promise((resolve) => setTimeout(resolve, 1_000))]);
              await new PricingRepository(worker.db).setMember('ivy', 'bronze', async () => new Date(Date.parse(accepted.acceptedAt) - 1_000));
            }
            const result = await connection.executeQuery<R>(query);
            if (query.sql.includes('member_level_history')) definitionsRead();
            return result;
          },
          streamQuery: (query, chunkSize) => connection.streamQuery(query, chunkSize),
        };
        connections.set(wrapped, connection);
        return wrapped;
      },
      beginTransaction: (connection, settings) => driver.beginTransaction(connections.get(connection)!, settings),
      commitTransaction: (connection) => driver.commitTransaction(connections.get(connection)!),
      rollbackTransaction: (connection) => driver.rollbackTransaction(connections.get(connection)!),
      releaseConnection: (connection) => driver.releaseConnection(connections.get(connection)!),
      destroy: () => driver.destroy(),
    };
    const db: OrderDb = new Kysely<Database>({
      dialect: { createAdapter: () => new MysqlAdapter(), createDriver: () => racing, createIntrospector: (on) => new MysqlIntrospector(on), createQueryCompiler: () => new MysqlQueryCompiler() },
    });
    try {
      await new OrderWriter({ ...worker, pricing: new PricingRepository(db) }, { batchSize: 500, batchWaitMs: 2, busyIntervalMs: 250 }).persist(accepted);
    } finally {
      await db.destroy();
    }
    expect(changed).toBe(true);
    const order = (await http.request('GET', `/v1/orders/${accepted.orderId}`, { token: admin() })).body;
    expect(order.benefits.member?.level).toBe('bronze');
  });

  it('dates a change of the rules that waited for a batch being written after that batch\'s orders, which were priced without it', async () => {
    // a batch being written holds the rules' version: the change waits for its commit
    const batch = await holdRow(env.db, 'pricing_rules_version', 'id', '1');
    let change: Promise<{ status: number }> | undefined;
    let acceptedAt: string;
    try {
      change = http.request('PUT', '/v1/admin/warehouses/wh-north/shipping', { token: admin(), body: { feeCents: 1_200 } });
      await waitFor(async () => (await rowLockWaits(env.db)).length > 0, { what: 'the fee change to wait for the batch' });
      const placed = await http.request('POST', '/v1/orders', { token: token('eli'), headers: { 'idempotency-key': 'eli-1' }, body: { items: [{ skuId: 'RUG', qty: 1 }], address: buyerAddress } });
      acceptedAt = (await worker.inventory.findAcceptedOrder(placed.body.orderId as string))!.acceptedAt;
    } finally {
      await batch.release();
    }
    expect((await change).status).toBe(200);
    const last = await env.db.selectFrom('shipping_fee_history').select(['fee_cents', 'effective_from']).where('warehouse_id', '=', 'wh-north').orderBy('change_id', 'desc').executeTakeFirstOrThrow();
    expect(Number(last.fee_cents)).toBe(1_200);
    expect(last.effective_from.getTime()).toBeGreaterThan(Date.parse(acceptedAt));
  });

  it('prices an order that waited with the shipping fee, member level and promotions of its acceptance, not with changes made while it waited', async () => {
    const waiting = await checkout('ann', 'ann-1');
    expect(waiting.status).toBe(202);

    const changes: Array<[string, string, unknown]> = [
      ['PUT', '/v1/admin/warehouses/wh-east/shipping', { feeCents: 3_000 }],
      ['PUT', '/v1/admin/member-levels/gold', { discountPercent: 0, freeShipping: false }],
      ['PUT', '/v1/admin/member-levels/platinum', { discountPercent: 50, freeShipping: false }],
      ['PUT', '/v1/admin/members/ann', { level: 'platinum' }],
      // created now, running since 2020
      ['POST', '/v1/admin/promotions', { promotionId: 'BACKDATED', title: '1,000 off', thresholdCents: 1, offCents: 1_000, ...always }],
    ];
    for (const [method, path, body] of changes) expect((await http.request(method, path, { token: admin(), body })).status).toBeLessThan(300);
    const afterChanges = await checkout('ann', 'ann-2');
    expect(afterChanges.status).toBe(202);

    workers = startWorkers(worker);
    const before = await persisted(waiting.body.orderId);
    expect(before.amounts).toMatchObject({ subtotalCents: 10_000, discountCents: 1_000, shippingCents: 500, payableCents: 9_500 });
    expect(before.benefits).toEqual({ member: { level: 'gold', discountCents: 1_000, freeShipping: false }, promotions: [], coupon: null });

    // the changes apply to the order accepted after them
    const after = await persisted(afterChanges.body.orderId);
    expect(after.amounts).toMatchObject({ subtotalCents: 10_000, discountCents: 6_000, shippingCents: 3_000, payableCents: 7_000 });
    expect(after.benefits).toEqual({ member: { level: 'platinum', discountCents: 5_000, freeShipping: false }, promotions: [{ promotionId: 'BACKDATED', discountCents: 1_000 }], coupon: null });
  });
});

import { createHmac } from 'node:crypto';
import { buildApp, connectApi } from '@orders/api';
import { priceOrder } from '@orders/domain';
import { CatalogRepository, OrderRepository, ProcessRepository, createDb, orderListOptionsOf, type OrderDb } from '@orders/persistence';
import { buyerAddress, createSku, createTestEnv, holdRow as holdRowOf, httpClient, rowLockWaits, signToken, waitFor, type HttpAnswer, type HttpClient, type TestEnv } from '@orders/testing';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { ulid } from 'ulid';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { collectLog } from './support/api-under-test.js';

describe('a callback whose rows another transaction holds locked (MySQL refuses it with a lock wait timeout, errno 1205)', () => {
  let env: TestEnv;
  let deps: Awaited<ReturnType<typeof connectApi>>;
  let db: OrderDb;
  let app: FastifyInstance;
  let http: HttpClient;
  const log = collectLog();
  const admin = () => signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });

  beforeAll(async () => {
    env = await createTestEnv('database_busy');
    deps = await connectApi(env.config);
    // the api's connections give up waiting for a row lock after 1 s (InnoDB's default is 50 s)
    const busy = createDb(env.config.MYSQL_URL, env.config.MYSQL_POOL_SIZE, env.config.MYSQL_QUERY_TIMEOUT_MS);
    busy.pool.on('connection', (connection) => void connection.query('SET SESSION innodb_lock_wait_timeout = 1'));
    db = busy.db;
    expect((await sql<{ seconds: number }>`SELECT @@innodb_lock_wait_timeout AS seconds`.execute(db)).rows[0]!.seconds).toBe(1);
    app = await buildApp({ ...deps, db, orders: new OrderRepository(db, orderListOptionsOf(env.config)), catalog: new CatalogRepository(db) }, { logger: { level: 'info', stream: log } });
    http = httpClient(await app.listen({ host: '127.0.0.1', port: 0 }));
    await createSku(http, admin(), { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await http?.close();
    await app?.close();
    await deps?.close();
    await db?.destroy();
    await env?.cleanup();
  });

  const signed = (system: 'payment' | 'warehouse', body: object) => {
    const raw = JSON.stringify(body);
    const secret = system === 'payment' ? env.config.PAYMENT_CALLBACK_SECRET : env.config.WAREHOUSE_CALLBACK_SECRET;
    return http.request('POST', `/v1/callbacks/${system}`, { body: raw, headers: { 'x-signature': `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}` } });
  };

  /** An order the worker wrote (PENDING_PAYMENT) and the payment its pay request opened. */
  async function awaitingPayment(buyer: string) {
    const orderId = ulid();
    const now = new Date();
    const items = [{ skuId: 'KETTLE', qty: 1 }];
    const orders = new OrderRepository(env.db);
    const priced = priceOrder('standard', items, await new CatalogRepository(env.db).findSkus(['KETTLE']), now);
    const accepted = { orderId, userId: buyer, type: 'standard' as const, items, address: buyerAddress, couponCode: null, acceptedAt: now.toISOString(), paymentDeadline: new Date(now.getTime() + 600_000).toISOString() };
    await orders.persistAcceptedOrders([{ accepted, priced }], now);
    const order = (await orders.findOrderRow(orderId))!;
    expect(order.status).toBe('PENDING_PAYMENT');
    const { payment } = await new ProcessRepository(env.db).openPayment({ orderId, purpose: 'full', method: 'card', amountCents: Number(order.payable_cents), at: now });
    const paid = { orderId, paymentId: payment.payment_id, transactionId: `tx-${orderId}`, status: 'SUCCEEDED', amountCents: Number(payment.amount_cents) };
    return { orderId, paymentId: payment.payment_id, paid: () => ({ ...paid, at: new Date().toISOString() }) };
  }

  /** What the order, its history and its payment say in MySQL. */
  async function written(orderId: string, paymentId: string) {
    const order = await env.db.selectFrom('orders').select('status').where('order_id', '=', orderId).executeTakeFirstOrThrow();
    const history = await env.db.selectFrom('order_history').select('action').where('order_id', '=', orderId).orderBy('version').execute();
    const payment = await env.db.selectFrom('payments').select('status').where('payment_id', '=', paymentId).executeTakeFirstOrThrow();
    return { order: order.status, history: history.map((step) => step.action), payment: payment.status };
  }

  /** Locks a test still holds, released after it whatever it found (the database is dropped at the end). */
  const held = new Set<() => Promise<void>>();
  afterEach(async () => {
    for (const release of held) await release();
    held.clear();
  });

  /** Other work holding a row, released after the test whatever it found. */
  async function holdRow(table: 'payments' | 'shipments', column: 'payment_id' | 'order_id', id: string) {
    const lock = await holdRowOf(env.db, table, column, id);
    held.add(lock.release);
    return lock;
  }

  /**
   * Once the request's first transaction was refused after its lock wait and a second one waits
   * in its place, or the request was answered: how many of its transactions waited.
   */
  async function refusedOnce(answer: Promise<HttpAnswer>): Promise<number> {
    const waits = new Set<string>();
    let answered = false;
    void answer.finally(() => (answered = true));
    await waitFor(
      async () => {
        for (const id of await rowLockWaits(env.db)) waits.add(id);
        return waits.size >= 2 || answered;
      },
      { what: 'a second lock wait of the callback', timeoutMs: 15_000, intervalMs: 200 },
    );
    return waits.size;
  }

  it("runs the payment callback's transaction again after the lock wait refused it, and pays the order once the lock is released: 200, not 500", async () => {
    const { orderId, paymentId, paid } = await awaitingPayment('ada');
    // the payment row is locked after the order row was moved and its history written: the refusal comes mid-transaction
    const lock = await holdRow('payments', 'payment_id', paymentId);
    const answer = signed('payment', paid());
    const lockWaitsMet = await refusedOnce(answer);
    await lock.release();

    const answered = await answer;
    expect([answered.status, answered.body]).toEqual([200, { changed: true, status: 'PAID' }]);
    expect(lockWaitsMet).toBe(2);
    expect(await written(orderId, paymentId)).toEqual({ order: 'PAID', history: ['checkout', 'persist', 'pay'], payment: 'SUCCEEDED' });
  });

  it('runs the warehouse callback again after the lock wait refused it, and ships the order once the lock is released', async () => {
    const imported = await http.request('POST', '/v1/admin/orders/import', {
      token: admin(),
      body: {
        channel: 'partner',
        orders: [{ externalOrderId: 'ext-1', userId: 'bo', placedAt: new Date().toISOString(), status: 'PAID', items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_999 }], address: buyerAddress }],
      },
    });
    expect(imported.status).toBe(200);
    const orderId: string = imported.body.results[0].orderId;
    // imported still to be shipped: its shipment waits at its warehouse
    const lock = await holdRow('shipments', 'order_id', orderId);
    const answer = signed('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-1', at: new Date().toISOString() });
    const lockWaitsMet = await refusedOnce(answer);
    await lock.release();

    const answered = await answer;
    expect([answered.status, answered.body]).toEqual([200, { changed: true, status: 'SHIPPED' }]);
    expect(lockWaitsMet).toBe(2);
    expect(await new ProcessRepository(env.db).shipment(orderId)).toMatchObject({ status: 'SHIPPED', tracking_no: 'TRK-1' });
  });

  it('answers 503 DATABASE_BUSY problem details with retry-after when the lock outlasts every attempt, having written nothing, and the sender\'s retry afterwards pays the order', async () => {
    const { orderId, paymentId, paid } = await awaitingPayment('cy');
    const lock = await holdRow('payments', 'payment_id', paymentId);
    const busy = await signed('payment', paid());
    await lock.release();

    expect(busy.status).toBe(503);
    expect(busy.headers['retry-after']).toBe('1');
    expect(String(busy.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(busy.body).toMatchObject({ type: 'urn:order-system:problem:database-busy', status: 503, code: 'DATABASE_BUSY', instance: '/v1/callbacks/payment' });
    // the order's move and its history step went back with the payment's refused update
    expect(await written(orderId, paymentId)).toEqual({ order: 'PENDING_PAYMENT', history: ['checkout', 'persist'], payment: 'PENDING' });
    const warning = log.lines.find((line) => /refused a transaction for now/.test(line.msg));
    expect(warning).toMatchObject({ level: 40, err: { code: 'ER_LOCK_WAIT_TIMEOUT', errno: 1205 } });

    const retried = await signed('payment', paid());
    expect([retried.status, retried.body]).toEqual([200, { changed: true, status: 'PAID' }]);
    expect(await written(orderId, paymentId)).toEqual({ order: 'PAID', history: ['checkout', 'persist', 'pay'], payment: 'SUCCEEDED' });
  });
});

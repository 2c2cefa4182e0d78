import { createHmac } from 'node:crypto';
import { buildApp, connectApi } from '@orders/api';
import { priceOrder, type OrderType } from '@orders/domain';
import { CatalogRepository, CouponRepository, OrderRepository, StockLedgerRepository } from '@orders/persistence';
import { buildPaymentSim, paymentSimOptions } from '@orders/payment-sim';
import { buyerAddress, createTestEnv, freePort, httpClient, signToken, waitFor, type HttpClient, type TestEnv } from '@orders/testing';
import { buildWarehouseSim, warehouseSimOptions } from '@orders/warehouse-sim';
import { StockReconciler, connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { pino } from 'pino';
import { ulid } from 'ulid';

export interface OrderSystem extends Pick<HttpClient, 'request'> {
  env: TestEnv;
  workers: RunningWorkers;
  api: FastifyInstance;
  /** the simulators' own HTTP (admin endpoints: faults, recorded payments, warehouse events) */
  paymentSim: HttpClient;
  warehouseSim: HttpClient;
  token(sub: string, role?: 'buyer' | 'merchant' | 'admin'): string;
  createSku(sku: {
    skuId: string;
    priceCents: number;
    merchantId: string;
    channel: 'self' | 'third_party';
    warehouseId: string;
    stock: number;
    deduction: 'placement' | 'payment';
    stockBuckets?: number;
    orderType?: 'standard' | 'presale' | 'virtual';
    flashSale?: { priceCents: number; startsAt: string; endsAt: string; perUserLimit: number };
  }): Promise<void>;
  checkout(buyer: string, items: Array<{ skuId: string; qty: number }>, key?: string, couponCode?: string): Promise<string>;
  /** The buyer's order of `items`, paid by card and shipped by the warehouse: SHIPPED. */
  shipped(buyer: string, items: Array<{ skuId: string; qty: number }>): Promise<string>;
  /**
   * The buyer's order of `items`, paid by card, and each of its parcels (the order's, or each child's when it
   * split) shipped and delivered by the warehouse: the order DELIVERED, and its parts' views.
   */
  delivered(buyer: string, items: Array<{ skuId: string; qty: number }>, couponCode?: string): Promise<{ orderId: string; order: any; parts: any[] }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The buyer's order of `items` of several merchants or warehouses, paid by card and split: its children, each IN_FULFILLMENT. */
  paidAndSplit(buyer: string, items: Array<{ skuId: string; qty: number }>, couponCode?: string): Promise<{ orderId: string; children: string[] }>;
  /** An order of any type put straight into MySQL, as the worker would write it, with no reservation in Redis. */
  persisted(type: OrderType, userId: string, items: Array<{ skuId: string; qty: number }>): Promise<string>;
  waitForStatus(orderId: string, status: string, timeoutMs?: number): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The order's payment deadline comes now by MySQL's clock, as if its buyer had let it pass: an expiry closes it from then on. */
  passPaymentDeadline(orderId: string): Promise<void>;
  /** The order's first refund (or return) once it has this status, SUCCEEDED when paid back: its refund job has run by then. */
  waitForRefund(orderId: string, status?: string, timeoutMs?: number): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /**
   * Once the worker's request for the payment has reached the payment system (its latency may
   * still hold the answer): only then can the payment system report on it, a failure included.
   * Reported before, the worker finds the payment settled and never asks.
   */
  paymentRequested(paymentId: string): Promise<void>;
  /**
   * Two buyers of a payment-time SKU's last units pay while the units are still on sale, both let
   * through by the pay route's stock check (202), and `winner`'s stock commit lands first: `loser`'s
   * commit at payment finds them gone, and the order is refunded as sold out. Resolves with the
   * loser's pay answer once the winner's commit has run; the loser's commit waits for it, and for
   * `loserCommitsAfter` when given.
   */
  payInRace(winner: Buyer, loser: Buyer & { method?: string }, loserCommitsAfter?: Promise<unknown>): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  order(orderId: string): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The SKU's stock as an admin reads it (`GET /v1/admin/skus/:skuId`): available, reserved, sold. */
  stockOf(skuId: string): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  signedCallback(system: 'payment' | 'warehouse', body: unknown, signature?: string): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** A reconciler as `npm run reconcile` builds one, in this process, on this system's database and key prefix. */
  reconciler(settleMs?: number): StockReconciler;
  /** Redis restarts without its data (no AOF): every key of this system is gone, reservation records with them. */
  loseRedisData(): Promise<void>;
  close(): Promise<void>;
}

/** A buyer's order, as they act on it. */
export interface Buyer {
  orderId: string;
  buyer: string;
}

/**
 * The whole system in this test process, each part over real HTTP on its own free port:
 * the api, a worker serving every queue, and both simulators; the test file's own
 * database, key prefix and queue prefix.
 */
export async function startOrderSystem(name: string, overrides: Record<string, string> = {}): Promise<OrderSystem> {
  const [apiPort, paymentPort, warehousePort] = [await freePort(), await freePort(), await freePort()];
  const env = await createTestEnv(name, {
    CALLBACK_BASE_URL: `http://127.0.0.1:${apiPort}`,
    PAYMENT_URL: `http://127.0.0.1:${paymentPort}`,
    WAREHOUSE_URL: `http://127.0.0.1:${warehousePort}`,
    WORKER_QUEUES: 'orders,timers,payments,fulfillment',
    PAYMENT_SIM_LATENCY_MS: '0',
    WAREHOUSE_SIM_LATENCY_MS: '0',
    WAREHOUSE_SIM_STEP_MS: '0',
    SIM_CALLBACK_RETRY_MS: '50',
    WORKER_CONCURRENCY: '16',
    ...overrides,
  });
  const { config } = env;
  // a part that fails to start (its port taken meanwhile, say) stops those started before it and
  // removes the database and keys: the test file's afterAll has no system to close
  const stopStarted: Array<() => Promise<unknown>> = [() => env.cleanup()];
  const started = async <T>(start: () => Promise<T>, stop: (part: T) => Promise<unknown>): Promise<T> => {
    try {
      const part = await start();
      stopStarted.unshift(() => stop(part));
      return part;
    } catch (error) {
      for (const stopPart of stopStarted) await stopPart().catch(() => {});
      throw error;
    }
  };
  const listening = async (app: FastifyInstance, port: number) => {
    await app.listen({ host: '127.0.0.1', port }).catch(async (error: unknown) => {
      await app.close();
      throw error;
    });
    return app;
  };
  const payment = await started(async () => listening(await buildPaymentSim(paymentSimOptions(config)), paymentPort), (sim) => sim.close());
  const warehouse = await started(async () => listening(await buildWarehouseSim(warehouseSimOptions(config)), warehousePort), (sim) => sim.close());
  const apiDeps = await started(() => connectApi(config), (deps) => deps.close());
  // the requests the api is serving: a close that outlives its grace names them
  const apiServing = new Map<string, string>();
  const api = await started(async () => {
    const app = await buildApp(apiDeps, { logger: false });
    app.addHook('onRequest', async (request) => void apiServing.set(request.id, `${request.method} ${request.url}`));
    app.addHook('onResponse', async (request) => void apiServing.delete(request.id));
    app.addHook('onRequestAbort', async (request) => void apiServing.delete(request.id));
    return listening(app, apiPort);
  }, (app) => app.close());
  const http = httpClient(`http://127.0.0.1:${apiPort}`, 50);
  const paymentSim = httpClient(`http://127.0.0.1:${paymentPort}`, 10);
  const warehouseSim = httpClient(`http://127.0.0.1:${warehousePort}`, 10);
  const workers = startWorkers(connectWorker(config, pino({ level: 'silent' })));
  const token = (sub: string, role: 'buyer' | 'merchant' | 'admin' = 'buyer') => signToken(config.AUTH_JWT_SECRET, { sub, role });
  const admin = token('ops', 'admin');
  /** The buyer's order of `items`, its payment by card asked for (202). */
  const paidByCard = async (buyer: string, items: Array<{ skuId: string; qty: number }>, couponCode?: string): Promise<string> => {
    const orderId = await system.checkout(buyer, items, undefined, couponCode);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const paid = await http.request('POST', `/v1/orders/${orderId}/pay`, { token: token(buyer), body: { method: 'card' } });
    if (paid.status !== 202) throw new Error(`pay: ${paid.status} ${JSON.stringify(paid.body)}`);
    return orderId;
  };

  const system: OrderSystem = {
    env,
    workers,
    api,
    paymentSim,
    warehouseSim,
    request: http.request,
    token,
    async createSku(sku) {
      const answer = await http.request('POST', '/v1/admin/skus', { token: admin, body: { title: sku.skuId, ...sku } });
      if (answer.status !== 201) throw new Error(`creating ${sku.skuId}: ${answer.status} ${JSON.stringify(answer.body)}`);
    },
    async checkout(buyer, items, key = `${buyer}-${items.map((i) => `${i.skuId}x${i.qty}`).join('-')}`, couponCode) {
      const answer = await http.request('POST', '/v1/orders', { token: token(buyer), headers: { 'idempotency-key': key }, body: { items, address: buyerAddress, ...(couponCode ? { couponCode } : {}) } });
      if (answer.status !== 202) throw new Error(`checkout: ${answer.status} ${JSON.stringify(answer.body)}`);
      return answer.body.orderId as string;
    },
    async shipped(buyer, items) {
      const orderId = await paidByCard(buyer, items);
      await system.waitForStatus(orderId, 'IN_FULFILLMENT');
      const shipped = await warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } });
      if (shipped.body.callbackStatus !== 200) throw new Error(`SHIPPED callback: ${JSON.stringify(shipped.body)}`);
      await system.waitForStatus(orderId, 'SHIPPED');
      return orderId;
    },
    async delivered(buyer, items, couponCode) {
      const orderId = await paidByCard(buyer, items, couponCode);
      const parts = await waitFor(
        async () => {
          const order = await system.order(orderId);
          if (order.status !== 'IN_FULFILLMENT') return false;
          const subs = order.subOrders.length === 0 ? [order] : await Promise.all(order.subOrders.map((id: string) => system.order(id)));
          return subs.every((sub) => sub.status === 'IN_FULFILLMENT') && subs;
        },
        { what: `order ${orderId} in fulfilment`, timeoutMs: 15_000, intervalMs: 200 },
      );
      for (const part of parts) {
        for (const event of ['SHIPPED', 'DELIVERED']) {
          const sent = await warehouseSim.request('POST', `/__admin/orders/${part.orderId}/events`, { body: { event } });
          if (sent.body.callbackStatus !== 200) throw new Error(`${event} callback: ${JSON.stringify(sent.body)}`);
        }
      }
      return { orderId, parts, order: await system.waitForStatus(orderId, 'DELIVERED') };
    },
    async paidAndSplit(buyer, items, couponCode) {
      const orderId = await paidByCard(buyer, items, couponCode);
      const children = await waitFor(
        async () => {
          const subOrders = (await system.order(orderId)).subOrders as string[];
          return subOrders.length > 1 && (await Promise.all(subOrders.map(async (child) => (await system.order(child)).status))).every((status) => status === 'IN_FULFILLMENT') && subOrders;
        },
        { what: `order ${orderId} split, its children in fulfilment`, timeoutMs: 15_000 },
      );
      return { orderId, children };
    },
    async persisted(type, userId, items) {
      const orderId = ulid();
      const now = new Date();
      const catalog = await new CatalogRepository(env.db).findSkus(items.map((i) => i.skuId));
      await new OrderRepository(env.db).persistAcceptedOrders(
        [
          {
            accepted: { orderId, userId, type, items, address: buyerAddress, couponCode: null, acceptedAt: now.toISOString(), paymentDeadline: new Date(now.getTime() + 60_000).toISOString() },
            priced: priceOrder(type, items, catalog, now),
          },
        ],
        now,
      );
      return orderId;
    },
    async payInRace(winner, loser, loserCommitsAfter) {
      const { inventory } = workers.deps;
      const commitStock = inventory.commitStock;
      let loserAnswered!: () => void;
      const answered = new Promise<void>((resolve) => (loserAnswered = resolve));
      let winnerCommitted!: () => void;
      const committed = new Promise<void>((resolve) => (winnerCommitted = resolve));
      inventory.commitStock = async (orderId) => {
        if (orderId === winner.orderId) {
          await answered;
          try {
            return await commitStock.call(inventory, orderId);
          } finally {
            winnerCommitted();
          }
        }
        if (orderId === loser.orderId) {
          await Promise.all([committed, loserCommitsAfter]);
          inventory.commitStock = commitStock;
        }
        return commitStock.call(inventory, orderId);
      };
      let loserPaid: { status: number; body: any } | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
      try {
        const winnerPaid = await http.request('POST', `/v1/orders/${winner.orderId}/pay`, { token: token(winner.buyer), body: { method: 'card' } });
        if (winnerPaid.status !== 202) throw new Error(`the winner's pay: ${winnerPaid.status} ${JSON.stringify(winnerPaid.body)}`);
        loserPaid = await http.request('POST', `/v1/orders/${loser.orderId}/pay`, { token: token(loser.buyer), body: { method: loser.method ?? 'card' } });
        return loserPaid;
      } finally {
        loserAnswered();
        // a loser not let through commits nothing: the commits are the system's own again
        if (loserPaid?.status !== 202) inventory.commitStock = commitStock;
        await committed;
      }
    },
    async order(orderId) {
      return (await http.request('GET', `/v1/orders/${orderId}`, { token: admin })).body;
    },
    async stockOf(skuId) {
      return (await http.request('GET', `/v1/admin/skus/${skuId}`, { token: admin })).body.stock;
    },
    async waitForStatus(orderId, status, timeoutMs = 15_000) {
      return waitFor(
        async () => {
          const order = await system.order(orderId);
          return order.status === status && order;
        },
        {
          what: `order ${orderId} to be ${status}`,
          timeoutMs,
          intervalMs: 250,
          // where the order stopped: its status, last steps and payments, for a run that timed out on a loaded box
          explain: async () =>
            system.order(orderId).then(
              (order) => JSON.stringify({ status: order.status, lastSteps: order.history?.slice(-3), payments: order.payments }),
              (error: unknown) => `not readable: ${String(error)}`,
            ),
        },
      );
    },
    async passPaymentDeadline(orderId) {
      await env.db.updateTable('orders').set({ payment_deadline: sql<Date>`UTC_TIMESTAMP(3)` }).where('order_id', '=', orderId).execute();
    },
    async waitForRefund(orderId, status = 'SUCCEEDED', timeoutMs = 30_000) {
      return waitFor(
        async () => {
          const [refund] = (await http.request('GET', `/v1/orders/${orderId}/refunds`, { token: admin })).body.items;
          return refund?.status === status && refund;
        },
        { what: `the first refund of order ${orderId} to be ${status}`, timeoutMs, intervalMs: 50 },
      );
    },
    async paymentRequested(paymentId) {
      await waitFor(async () => ((await paymentSim.request('GET', '/__admin/payments')).body.requested as string[]).includes(paymentId), {
        what: `the request for payment ${paymentId} at the payment system`,
        intervalMs: 20,
      });
    },
    async signedCallback(kind, body, signature) {
      const raw = JSON.stringify(body);
      const secret = kind === 'payment' ? config.PAYMENT_CALLBACK_SECRET : config.WAREHOUSE_CALLBACK_SECRET;
      return http.request('POST', `/v1/callbacks/${kind}`, {
        body: raw,
        headers: { 'x-signature': signature ?? `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}` },
      });
    },
    reconciler(settleMs = 100) {
      const { redis, db } = env;
      const ledger = new StockLedgerRepository(db);
      return new StockReconciler({ redis, inventory: workers.deps.inventory, ledger, catalog: new CatalogRepository(db), coupons: new CouponRepository(db), log: pino({ level: 'silent' }) }, { settleMs });
    },
    async loseRedisData() {
      let cursor = '0';
      do {
        const [next, keys] = await env.redis.scan(cursor, 'MATCH', `${config.REDIS_KEY_PREFIX}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await env.redis.unlink(...keys);
      } while (cursor !== '0');
    },
    async close() {
      // a close that hangs fails the file's afterAll a minute later without a word: say what it waits for
      let part = 'the workers';
      // of the parts closed together, those still closing
      const pending = new Set<string>();
      const closeNamed = async (named: string, close: () => Promise<unknown>) => {
        pending.add(named);
        await close();
        pending.delete(named);
      };
      const waitingFor = () => (part === 'the workers' ? (workers.waitingFor() ?? part) : pending.size > 0 ? [...pending].join(', ') : part);
      const slow = setInterval(() => console.error(`order system ${name}: still closing ${waitingFor()}`), 15_000);
      try {
        // as the worker process exits once SHUTDOWN_GRACE_MS is over, whatever it still waits for
        // (a job, BullMQ's connections): the rest of the system closes and the database goes
        let graceOver: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (graceOver = setTimeout(resolve, config.SHUTDOWN_GRACE_MS)));
        await Promise.race([workers.close(), grace]);
        clearTimeout(graceOver);
        const left = workers.waitingFor();
        if (left) console.error(`order system ${name}: the workers' shutdown grace (${config.SHUTDOWN_GRACE_MS} ms) ran out, still waiting for ${left}`);
        part = "the test's http client";
        await http.close();
        part = 'the api';
        // as the api process exits once SHUTDOWN_GRACE_MS is over with requests still in flight (apps/api/src/main.ts)
        let apiGraceOver: NodeJS.Timeout | undefined;
        const apiGrace = new Promise<'over'>((resolve) => (apiGraceOver = setTimeout(() => resolve('over'), config.SHUTDOWN_GRACE_MS)));
        const apiClosed = api.close();
        if ((await Promise.race([apiClosed, apiGrace])) === 'over') {
          console.error(`order system ${name}: the api's shutdown grace (${config.SHUTDOWN_GRACE_MS} ms) ran out serving ${[...apiServing.values()].join(', ') || 'no request (an open connection)'}; its connections closed`);
          api.server.closeAllConnections();
          await apiClosed;
        }
        clearTimeout(apiGraceOver);
        part = "the api's connections";
        await apiDeps.close();
        part = 'the simulators';
        await Promise.all([
          closeNamed('the payment simulator', () => payment.close()),
          closeNamed('the warehouse simulator', () => warehouse.close()),
          closeNamed("the test's client of the payment simulator", () => paymentSim.close()),
          closeNamed("the test's client of the warehouse simulator", () => warehouseSim.close()),
        ]);
        part = 'the database and keys';
        await env.cleanup();
      } finally {
        clearInterval(slow);
      }
    },
  };
  return system;
}

import { QUEUE } from '@orders/queues';
import {
  buyerAddress,
  createSku,
  createTestEnv,
  freePort,
  httpClient,
  settledSaleInvariants,
  signToken,
  spawnApp,
  startApiProcess,
  startFailingRedisLink,
  startTcpProxy,
  waitFor,
  type ApiProcess,
  type FailingRedisLink,
  type HttpAnswer,
  type HttpClient,
  type SpawnedProcess,
  type TcpProxy,
  type TestEnv,
} from '@orders/testing';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A flash sale with its faults combined rather than one at a time: 1,000 buyers for 300 units
 * (PHONE in its flash sale, CASE at list price) on two api processes and three worker processes.
 * During the sale: one api's Redis link breaks right after a reservation ran (its buyers retry
 * under the same Idempotency-Key, on the other api); the workers' MySQL link first holds its
 * answers (commits run, their answers lost), a worker is SIGKILLed then, the link freezes, then
 * is cut, then comes back; the payment system fails every call (breakers open) while buyers
 * pay, then recovers, then goes away while buyers cancel paid orders and ask refunds; a worker
 * is restarted; unpaid orders expire (20 s deadline). Once every fault is over and things settle,
 * the sale's promises are checked.
 */
const BUYERS = 1_000;
const STOCK = { PHONE: 200, CASE: 100 } as const;
const DEADLINE_MS = 20_000;
const FINAL = ['EXPIRED', 'CANCELLED', 'REFUNDED', 'IN_FULFILLMENT'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a flash sale with faults combined: api Redis link, worker SIGKILL, MySQL frozen and cut, payment system failing, restarts', () => {
  let env: TestEnv;
  let mysqlLink: TcpProxy;
  let redisLink: FailingRedisLink;
  let apis: ApiProcess[] = [];
  const workers: SpawnedProcess[] = [];
  let paymentSim: { process: SpawnedProcess; admin: HttpClient; port: number };
  let warehouseSim: { process: SpawnedProcess; admin: HttpClient; port: number };
  let queues: Queue[] = [];
  let workerEnv: Record<string, string>;

  const startSim = async (app: 'payment-sim' | 'warehouse-sim', callbackBase: string) => {
    const port = await freePort();
    const process = spawnApp(app, { ...env.env, PAYMENT_SIM_PORT: String(port), WAREHOUSE_SIM_PORT: String(port), CALLBACK_BASE_URL: callbackBase });
    const admin = httpClient(`http://127.0.0.1:${port}`, 4);
    await waitFor(async () => (await admin.request('GET', '/health/live').catch(() => ({ status: 0 }))).status === 200, { what: `${app} to listen` });
    return { process, admin, port };
  };
  const startWorker = () => {
    const worker = spawnApp('worker', workerEnv);
    workers.push(worker);
    return worker;
  };

  beforeAll(async () => {
    env = await createTestEnv('chaos_sale', {
      PAYMENT_TIMEOUT_MS: String(DEADLINE_MS),
      FLASH_SALE_PAYMENT_TIMEOUT_MS: String(DEADLINE_MS),
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      WORKER_CONCURRENCY: '16',
      PERSIST_BATCH_SIZE: '50',
      STRANDED_ORDER_AFTER_MS: '3000',
      SWEEP_INTERVAL_MS: '1000',
      MYSQL_QUERY_TIMEOUT_MS: '1000',
      REDIS_COMMAND_TIMEOUT_MS: '1000',
      SHUTDOWN_GRACE_MS: '3000',
      PAYMENT_SIM_LATENCY_MS: '0',
      WAREHOUSE_SIM_LATENCY_MS: '0',
      WAREHOUSE_SIM_STEP_MS: '0',
      SIM_CALLBACK_RETRY_MS: '100',
      // a provider retries a callback for hours: with 50 tries (5 s) a slow CI run's settle timed out, refunds
      // left SENT (REFUND_CONFIRMATION_WAIT_MS, their backstop, is 30 min), likely callbacks given up under load
      SIM_CALLBACK_ATTEMPTS: '600',
      PAYMENT_BREAKER_VOLUME_THRESHOLD: '3',
      PAYMENT_BREAKER_TIMEOUT_MS: '1500',
      PAYMENT_BREAKER_RESET_MS: '500',
      WAREHOUSE_BREAKER_TIMEOUT_MS: '1500',
      WAREHOUSE_BREAKER_RESET_MS: '500',
      EXTERNAL_RETRY_DELAY_MS: '200',
      JOB_ATTEMPTS: '3',
      // nothing leans on the overdue sweep's backstop
      OVERDUE_SWEEP_INTERVAL_MS: '0',
      // five processes at 16 connections each, beside three other files' systems, passed MariaDB's 151
      MYSQL_POOL_SIZE: '4',
    });
    mysqlLink = await startTcpProxy({ host: '127.0.0.1', port: 3306 });
    redisLink = await startFailingRedisLink({ host: '127.0.0.1', port: 6379 });
    const throughRedisLink = new URL(env.env.REDIS_URL!);
    throughRedisLink.port = String(redisLink.port);
    apis = [await startApiProcess(env.env, 100), await startApiProcess({ ...env.env, REDIS_URL: throughRedisLink.toString() }, 100)];
    paymentSim = await startSim('payment-sim', apis[0]!.url);
    warehouseSim = await startSim('warehouse-sim', apis[0]!.url);
    const throughMysqlLink = new URL(env.env.MYSQL_URL!);
    throughMysqlLink.port = String(mysqlLink.port);
    workerEnv = {
      ...env.env,
      MYSQL_URL: throughMysqlLink.toString(),
      WORKER_METRICS_PORT: '0',
      CALLBACK_BASE_URL: apis[0]!.url,
      PAYMENT_URL: `http://127.0.0.1:${paymentSim.port}`,
      WAREHOUSE_URL: `http://127.0.0.1:${warehouseSim.port}`,
    };
    queues = [QUEUE.orders, QUEUE.timers, QUEUE.payments, QUEUE.fulfillment, QUEUE.deadLetter].map((name) => new Queue(name, { connection: env.redis, prefix: env.config.QUEUE_PREFIX }));
  });

  afterAll(async () => {
    mysqlLink?.thaw();
    await Promise.all(workers.map((w) => w.killAll()));
    await Promise.all(apis.map((a) => a.close().catch(() => a.process.killAll())));
    await Promise.all([paymentSim, warehouseSim].map(async (sim) => sim && (await sim.process.killAll(), await sim.admin.close())));
    await Promise.all(queues.map((q) => q.close()));
    await mysqlLink?.close();
    await redisLink?.close();
    await env?.cleanup();
  });

  it('sells no unit twice, keeps every 202 once, pays back no refund twice and leaves Redis equal to the ledger', { timeout: 150_000 }, async () => {
    const started = Date.now();
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    const now = Date.now();
    await createSku(apis[0]!, admin, {
      skuId: 'PHONE', title: 'Phone', priceCents: 49_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: STOCK.PHONE, deduction: 'placement',
      flashSale: { priceCents: 19_900, startsAt: new Date(now - 3_600_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 1 },
    });
    await createSku(apis[0]!, admin, { skuId: 'CASE', title: 'Case', priceCents: 1_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: STOCK.CASE, deduction: 'placement' });
    for (let i = 0; i < 3; i++) startWorker();
    const [ordersQueue, timersQueue, paymentsQueue, fulfillmentQueue, deadLetters] = queues as [Queue, Queue, Queue, Queue, Queue];

    // ---- status of every accepted order, read from MySQL by one poller (not 1,500 buyers polling the api)
    const statuses = new Map<string, string>();
    const acceptedByKey = new Map<string, Set<string>>();
    const answersByStatus = new Map<string, number>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const rows = await env.db.selectFrom('orders').select(['order_id', 'status']).where('parent_order_id', 'is', null).execute().catch(() => []);
        for (const row of rows) statuses.set(row.order_id, row.status);
        await sleep(250);
      }
    })();
    const untilStatus = async (orderId: string, wanted: string[], timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const status = statuses.get(orderId);
        if (status && wanted.includes(status)) return status;
        await sleep(200);
      }
      return statuses.get(orderId) ?? 'NOT_IN_MYSQL';
    };

    // ---- the buyers
    const token = (i: number) => signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' });
    const cartOf = (i: number) =>
      i % 3 === 0 ? [{ skuId: 'PHONE', qty: 1 }] : i % 3 === 1 ? [{ skuId: 'PHONE', qty: 1 }, { skuId: 'CASE', qty: 1 }] : [{ skuId: 'CASE', qty: 2 }];
    const send = (i: number, attempt: number): Promise<HttpAnswer> =>
      apis[(i + attempt) % 2]!.request('POST', '/v1/orders', { token: token(i), headers: { 'idempotency-key': `sale-${i}` }, body: { items: cartOf(i), address: buyerAddress } }).catch(
        (error: Error) => ({ status: 0, headers: {}, body: { code: 'NO_ANSWER', detail: error.message } }),
      );
    /** Checks out, retrying under the same key after 5xx, 429, no answer, or no answer within 1.5 s (the first still in flight). */
    const checkout = async (i: number): Promise<string | null> => {
      const key = `sale-${i}`;
      const inFlight: Promise<HttpAnswer>[] = [];
      const record = (answer: HttpAnswer) => {
        answersByStatus.set(`${answer.status} ${answer.body?.code ?? ''}`, (answersByStatus.get(`${answer.status} ${answer.body?.code ?? ''}`) ?? 0) + 1);
        if (answer.status === 202) {
          const ids = acceptedByKey.get(key) ?? new Set<string>();
          ids.add(answer.body.orderId as string);
          acceptedByKey.set(key, ids);
        }
        return answer;
      };
      for (let attempt = 0; attempt < 8; attempt++) {
        const sent = send(i, attempt).then(record);
        inFlight.push(sent);
        const answer = await Promise.race([sent, sleep(1_500).then(() => null)]);
        if (answer === null) continue; // impatient: sent again, the first left running
        if (answer.status === 202) break;
        if (answer.status === 0 || answer.status >= 500 || answer.status === 429) {
          await sleep(200 + Math.random() * 300);
          continue;
        }
        // sold out (or another refusal): one more look a few seconds later, as a buyer refreshing the page
        if (attempt === 0 && i % 4 === 0) {
          await sleep(3_000 + Math.random() * 3_000);
          continue;
        }
        break;
      }
      await Promise.all(inFlight);
      const ids = acceptedByKey.get(key);
      return ids ? [...ids][0]! : null;
    };
    const pay = (i: number, orderId: string) => apis[i % 2]!.request('POST', `/v1/orders/${orderId}/pay`, { token: token(i), body: { method: 'card' } }).catch(() => ({ status: 0, body: {} }) as HttpAnswer);
    const cancel = (i: number, orderId: string) => apis[i % 2]!.request('POST', `/v1/orders/${orderId}/cancel`, { token: token(i), body: { reason: 'changed my mind' } }).catch(() => ({ status: 0, body: {} }) as HttpAnswer);
    const refund = (i: number, orderId: string, items?: Array<{ skuId: string; qty: number }>) =>
      apis[i % 2]!.request('POST', `/v1/orders/${orderId}/refunds`, { token: token(i), headers: { 'idempotency-key': `refund-${i}` }, body: { reason: 'not needed', ...(items ? { items } : {}) } }).catch(
        () => ({ status: 0, body: {} }) as HttpAnswer,
      );
    /** Retries a step answered 5xx/409-with-retry-after/no answer, for up to 15 s. */
    const untilAnswered = async (step: () => Promise<HttpAnswer>) => {
      let answer: HttpAnswer = { status: 0, headers: {}, body: {} };
      for (const until = Date.now() + 15_000; Date.now() < until; ) {
        answer = await step();
        if (answer.status === 0 || answer.status >= 500 || (answer.status === 409 && answer.headers?.['retry-after'])) {
          await sleep(300);
          continue;
        }
        break;
      }
      return answer;
    };

    const buyer = async (i: number) => {
      await sleep(Math.random() * 1_000); // the rush: everyone within the first second
      const orderId = await checkout(i);
      if (!orderId) return;
      const role = i % 10;
      if (role >= 8) return; // never pays: expires
      if ((await untilStatus(orderId, ['PENDING_PAYMENT', ...FINAL], 25_000)) !== 'PENDING_PAYMENT') return;
      if (role === 6) {
        await untilAnswered(() => cancel(i, orderId));
        return;
      }
      await untilAnswered(() => pay(i, orderId));
      if (role === 7) await untilAnswered(() => pay(i, orderId)); // a double click: the same payment
      if (role === 4) {
        await untilStatus(orderId, ['PAID', 'IN_FULFILLMENT', 'EXPIRED'], 15_000);
        await untilAnswered(() => cancel(i, orderId));
      }
      if (role === 5) {
        if ((await untilStatus(orderId, ['IN_FULFILLMENT', 'EXPIRED'], 15_000)) !== 'IN_FULFILLMENT') return;
        await untilAnswered(() => refund(i, orderId, i % 3 === 1 ? [{ skuId: 'CASE', qty: 1 }] : i % 3 === 2 ? [{ skuId: 'CASE', qty: 1 }] : undefined));
      }
    };

    // ---- faults
    const paymentFaults = (body: Record<string, unknown>) => paymentSim.admin.request('PUT', '/__admin/faults', { body });
    await paymentFaults({ failureRate: 1 });
    // the second api's Redis link breaks right after the reservation of buyer 1001 ran (its answer lost), for 1.5 s
    const redisBreak = redisLink.breakAfter('sale-1001', 1_500);

    const sale = Promise.all(Array.from({ length: BUYERS }, (_, i) => buyer(i)));

    const faults = (async () => {
      // the workers start with the sale: on a loaded box they took more than 10 s to take their first job
      await waitFor(async () => (await ordersQueue.getJobCounts('active')).active! > 0, { what: 'persist jobs active', timeoutMs: 45_000, intervalMs: 10 });
      mysqlLink.holdAnswers();
      await sleep(300);
      await workers[0]!.kill();
      mysqlLink.freeze();
      await sleep(2_500);
      await mysqlLink.cut();
      await sleep(2_500);
      await mysqlLink.restore();
      mysqlLink.thaw();
      startWorker();
      await sleep(Math.max(0, 9_000 - (Date.now() - started)));
      await paymentFaults({ failureRate: 0 });
      await sleep(3_000);
      const stopping = workers[1]!.stop('SIGTERM');
      startWorker();
      await stopping;
      await sleep(Math.max(0, 15_000 - (Date.now() - started)));
      await paymentFaults({ outage: true });
      await sleep(5_000);
      await paymentFaults({ outage: false });
    })();

    await Promise.all([faults, sale]);
    await Promise.race([redisBreak, sleep(100)]);

    // ---- settle: every order final, no refund open, queues drained
    const acceptedIds = [...acceptedByKey.values()].flatMap((ids) => [...ids]);
    const notFinal = async () =>
      env.db.selectFrom('orders').select(['order_id', 'status']).where('parent_order_id', 'is', null).where('status', 'not in', FINAL).execute();
    const openRefunds = async () => env.db.selectFrom('refunds').select(['refund_id', 'status']).where('status', 'not in', ['SUCCEEDED', 'WITHDRAWN']).execute();
    const jobCounts = async () => Object.fromEntries(await Promise.all(queues.map(async (q) => [q.name, await q.getJobCounts('active', 'waiting', 'delayed', 'failed', 'prioritized', 'waiting-children')])));
    await waitFor(
      async () => {
        const [persisted, pending, refunds] = [await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).where('parent_order_id', 'is', null).executeTakeFirstOrThrow(), await notFinal(), await openRefunds()];
        return Number(persisted.n) === acceptedIds.length && pending.length === 0 && refunds.length === 0;
      },
      {
        what: 'every accepted order in MySQL and final, every refund closed',
        timeoutMs: 45_000,
        intervalMs: 500,
        explain: async () =>
          `not final: ${JSON.stringify((await notFinal()).slice(0, 10))}; open refunds: ${JSON.stringify((await openRefunds()).slice(0, 10))}; jobs: ${JSON.stringify(await jobCounts())}; callbacks given up: ${JSON.stringify(
            [paymentSim, warehouseSim].flatMap((sim) => sim.process.output().split('\n').filter((line) => line.includes('given up'))).slice(0, 10),
          )}`,
      },
    );
    polling = false;
    await poller;

    // ---- the promises
    // one order per Idempotency-Key, whatever the retries
    const keysWithTwoOrders = [...acceptedByKey].filter(([, ids]) => ids.size > 1);
    expect(keysWithTwoOrders).toEqual([]);
    // every 202 exactly once in MySQL, Redis == ledger per SKU, totals == opening stock, no unpaid past deadline, late payments given back
    const invariants = await settledSaleInvariants({ db: env.db, redis: env.redis, keyPrefix: env.config.REDIS_KEY_PREFIX, acceptedOrderIds: acceptedIds, initialStock: { ...STOCK }, paymentWaitMs: env.config.PAYMENT_TIMEOUT_MS }, 20_000);
    expect(invariants.violations).toEqual([]);
    // sold units are exactly those of live orders, never more than the stock
    const live = await env.db
      .selectFrom('order_items')
      .innerJoin('orders', 'orders.order_id', 'order_items.order_id')
      .select(['order_items.sku_id as sku', (eb) => eb.fn.sum<string>(eb('order_items.qty', '-', eb.ref('order_items.refunded_qty'))).as('units')])
      .where('orders.status', '=', 'IN_FULFILLMENT')
      .groupBy('order_items.sku_id')
      .execute();
    for (const [sku, stock] of Object.entries(STOCK)) {
      const counters = invariants.stock[sku]!.redis;
      expect(counters.reserved, `${sku} reserved`).toBe(0);
      expect(counters.sold + counters.reserved, `${sku} sold + reserved`).toBeLessThanOrEqual(stock);
      expect(counters.sold, `${sku} sold == live units in MySQL`).toBe(Number(live.find((row) => row.sku === sku)?.units ?? 0));
    }
    // the payment system: no payment charged twice, no refund paid twice, nothing paid back beyond a payment
    const recorded = (await paymentSim.admin.request('GET', '/__admin/payments')).body as { payments: Array<{ paymentId: string; charges: number; amountCents: number; refundedCents: number }>; refunds: Array<{ refundId: string; paymentId: string; amountCents: number }> };
    expect(recorded.payments.filter((p) => p.charges > 1)).toEqual([]);
    expect(recorded.payments.filter((p) => p.refundedCents > p.amountCents)).toEqual([]);
    const parts = await env.db.selectFrom('refund_parts').select(['part_id', 'payment_id', 'amount_cents', 'status']).execute();
    expect(parts.filter((p) => p.status !== 'SUCCEEDED')).toEqual([]);
    expect(recorded.refunds.map((r) => r.refundId).sort()).toEqual(parts.map((p) => p.part_id).sort());
    expect(recorded.refunds.reduce((sum, r) => sum + r.amountCents, 0)).toBe(parts.reduce((sum, p) => sum + Number(p.amount_cents), 0));
    const orderMoney = await env.db.selectFrom('orders').select(['order_id', 'status', 'payable_cents', 'refunded_cents']).where('refunded_cents', '>', 0).execute();
    expect(orderMoney.filter((o) => Number(o.refunded_cents) > Number(o.payable_cents))).toEqual([]);
    // the warehouse holds exactly the live orders
    const handedOver = ((await warehouseSim.admin.request('GET', '/__admin/orders')).body.orders as Array<{ orderId: string; cancelled: boolean }>).filter((o) => !o.cancelled);
    const inFulfilment = (await env.db.selectFrom('orders').select('order_id').where('status', '=', 'IN_FULFILLMENT').execute()).map((o) => o.order_id);
    expect(handedOver.map((o) => o.orderId).sort()).toEqual([...inFulfilment].sort());
    // nothing failed for good, nothing waits in a queue but timers of live orders
    const counts = await jobCounts();
    expect(await deadLetters.getJobCounts('waiting', 'delayed', 'active', 'failed', 'completed')).toEqual({ waiting: 0, delayed: 0, active: 0, failed: 0, completed: 0 });
    for (const q of [ordersQueue, paymentsQueue, fulfillmentQueue, timersQueue]) expect((counts as Record<string, Record<string, number>>)[q.name]!.failed, `${q.name} failed`).toBe(0);

    // the faults did happen
    expect(workers[0]!.child.signalCode).toBe('SIGKILL');
    expect(answersByStatus.get('202 ')).toBeGreaterThan(0);
    expect(acceptedIds.length).toBeGreaterThan(200);
  });
});

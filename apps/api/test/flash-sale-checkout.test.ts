import { firstOrderIdAt } from '@orders/domain';
import { buyerAddress, createTestEnv, ledgerAvailable, spawnApp, waitFor, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { sql } from 'kysely';
import { QUEUE } from '@orders/queues';
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('flash-sale checkout', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let worker: SpawnedProcess;
  let admin: string;

  beforeAll(async () => {
    // a sold-out SKU is answered from the api's memory for the rest of the file; a presale's balance is due 30 days after its deposit
    env = await createTestEnv('flash_sale_checkout', { SOLD_OUT_MEMORY_MS: '60000', PRESALE_BALANCE_TIMEOUT_MS: String(30 * DAY) });
    api = await startApi(env, { connections: 200 });
    worker = spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0', WORKER_CONCURRENCY: '64' });
    admin = api.token('ops', 'admin');
  });

  afterAll(async () => {
    await worker?.stop();
    await api?.close();
    await env?.cleanup();
  });

  async function createFlashSku(skuId: string, stock: number, perUserLimit: number, window = { from: -HOUR, to: HOUR }) {
    const now = Date.now();
    const response = await api.request('POST', '/v1/admin/skus', {
      token: admin,
      body: {
        skuId,
        title: `Flash ${skuId}`,
        priceCents: 99_900,
        merchantId: 'shop',
        channel: 'self',
        warehouseId: 'wh-east',
        stock,
        deduction: 'placement',
        flashSale: { priceCents: 49_900, startsAt: new Date(now + window.from).toISOString(), endsAt: new Date(now + window.to).toISOString(), perUserLimit },
      },
    });
    expect(response.status).toBe(201);
  }

  const checkout = (buyer: string, idempotencyKey: string, body: unknown) =>
    api.request('POST', '/v1/orders', { token: api.token(buyer), body, headers: { 'idempotency-key': idempotencyKey } });

  const ordersOf = async (skuId: string) =>
    Number(
      (
        await env.db
          .selectFrom('order_items')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('sku_id', '=', skuId)
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('sells exactly the stock when 2,000 buyers race for 100 units', async () => {
    await createFlashSku('HOT-100', 100, 1);
    const answers = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => checkout(`buyer-${i}`, `key-${i}`, { items: [{ skuId: 'HOT-100', qty: 1 }], address: buyerAddress })),
    );
    const accepted = answers.filter((a) => a.status === 202);
    const soldOut = answers.filter((a) => a.status === 409);
    expect(accepted).toHaveLength(100);
    expect(soldOut).toHaveLength(1900);
    expect(soldOut.every((a) => a.body.code === 'OUT_OF_STOCK' && String(a.headers['content-type']).startsWith('application/problem+json'))).toBe(true);

    // after the sell-out: each winner's retry gets its own 202 again, while 200 latecomers are refused
    const winners = answers.flatMap((a, i) => (a.status === 202 ? [i] : []));
    const [retries, latecomers] = await Promise.all([
      Promise.all(winners.map((i) => checkout(`buyer-${i}`, `key-${i}`, { items: [{ skuId: 'HOT-100', qty: 1 }], address: buyerAddress }))),
      Promise.all(Array.from({ length: 200 }, (_, i) => checkout(`late-${i}`, `late-${i}`, { items: [{ skuId: 'HOT-100', qty: 1 }], address: buyerAddress }))),
    ]);
    expect(retries.map((r) => [r.status, r.body.orderId])).toEqual(accepted.map((a) => [202, a.body.orderId]));
    expect(latecomers.every((a) => a.status === 409 && a.body.code === 'OUT_OF_STOCK')).toBe(true);

    await waitFor(async () => (await ordersOf('HOT-100')) === 100, { what: '100 orders in MySQL' });
    const orders = await env.db.selectFrom('orders').select(['order_id', 'status', 'type', 'payable_cents']).execute();
    expect(new Set(orders.map((o) => o.order_id))).toEqual(new Set(accepted.map((a) => a.body.orderId)));
    expect(orders.every((o) => o.status === 'PENDING_PAYMENT' && o.type === 'flash_sale' && Number(o.payable_cents) === 49_900)).toBe(true);

    const sku = await api.request('GET', '/v1/admin/skus/HOT-100', { token: admin });
    expect(sku.body.stock).toEqual({ available: 0, reserved: 100, sold: 0 });
    const ledger = await env.db
      .selectFrom('stock_ledger')
      .select(['kind', sql<number>`SUM(qty)`.as('units'), sql<number>`COUNT(*)`.as('rows')])
      .where('sku_id', '=', 'HOT-100')
      .groupBy('kind')
      .execute();
    const byKind = Object.fromEntries(ledger.map((row) => [row.kind, { units: Number(row.units), rows: Number(row.rows) }]));
    // opening stock 100, then one reservation of one unit per order: the ledger balances at 0 available
    expect(byKind).toEqual({ adjust: { units: 100, rows: 1 }, reserve: { units: -100, rows: 100 } });
    expect(await ledgerAvailable(env.db, 'HOT-100')).toBe(0);
  });

  it('holds the units of a sale that opens in an hour: a buyer firing 50 checkouts before it gets 422 SALE_NOT_ACTIVE and no unit', async () => {
    await createFlashSku('SOON', 1000, 2, { from: HOUR, to: 2 * HOUR });
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => checkout('early-bot', `early-${i}`, { items: [{ skuId: 'SOON', qty: 20 }], address: buyerAddress })),
    );
    expect(answers.every((a) => a.status === 422 && a.body.code === 'SALE_NOT_ACTIVE' && String(a.headers['content-type']).startsWith('application/problem+json'))).toBe(true);
    const sale = await api.request('GET', '/v1/admin/skus/SOON', { token: admin });
    // the answer says when to come back, in its detail and as a member a client reads without parsing it
    expect(answers[0]!.body.opensAt).toBe(sale.body.flashSale.startsAt);
    expect(answers[0]!.body.detail).toBe(`The flash sale of SKU SOON opens at ${sale.body.flashSale.startsAt}: its units are not sold before`);
    // asked for a standard order, at list price, it is refused alike
    const standard = await checkout('early-bot', 'early-standard', { items: [{ skuId: 'SOON', qty: 1 }], address: buyerAddress, orderType: 'standard' });
    expect([standard.status, standard.body.code]).toEqual([422, 'SALE_NOT_ACTIVE']);
    expect((await api.request('GET', '/v1/admin/skus/SOON', { token: admin })).body.stock).toEqual({ available: 1000, reserved: 0, sold: 0 });
    expect(await ordersOf('SOON')).toBe(0);
  });

  it('sells what is left after a sale ended at the list price, as a standard order without the limit', async () => {
    await createFlashSku('AFTER', 10, 1, { from: -2 * HOUR, to: -HOUR });
    const answer = await checkout('late-buyer', 'after-sale', { items: [{ skuId: 'AFTER', qty: 3 }], address: buyerAddress });
    expect(answer.status).toBe(202);
    await waitFor(async () => (await ordersOf('AFTER')) === 1, { what: 'the order in MySQL' });
    const order = await env.db.selectFrom('orders').select(['type', 'payable_cents']).where('order_id', '=', answer.body.orderId).executeTakeFirstOrThrow();
    expect([order.type, Number(order.payable_cents)]).toEqual(['standard', 3 * 99_900]);
  });

  it('lets one buyer firing 50 checkouts at once buy only their limit of 2', async () => {
    await createFlashSku('LIMITED', 1000, 2);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => checkout('greedy-buyer', `greedy-${i}`, { items: [{ skuId: 'LIMITED', qty: 1 }], address: buyerAddress })),
    );
    expect(answers.filter((a) => a.status === 202)).toHaveLength(2);
    expect(answers.filter((a) => a.status === 422 && a.body.code === 'LIMIT_EXCEEDED')).toHaveLength(48);
    const sku = await api.request('GET', '/v1/admin/skus/LIMITED', { token: admin });
    expect(sku.body.stock.available).toBe(998);
  });

  it('answers the same Idempotency-Key sent 20 times at once with one order', async () => {
    await createFlashSku('IDEMPOTENT', 50, 5);
    const body = { items: [{ skuId: 'IDEMPOTENT', qty: 2 }], address: buyerAddress };
    const answers = await Promise.all(Array.from({ length: 20 }, () => checkout('careful-buyer', 'double-click', body)));
    expect(answers.every((a) => a.status === 202)).toBe(true);
    expect(new Set(answers.map((a) => JSON.stringify(a.body))).size).toBe(1);
    const sku = await api.request('GET', '/v1/admin/skus/IDEMPOTENT', { token: admin });
    expect(sku.body.stock.available).toBe(48);
    await waitFor(async () => (await ordersOf('IDEMPOTENT')) === 1, { what: 'the order in MySQL' });
    // the same key with the keys of the body in another order is the same request
    const reordered = await checkout('careful-buyer', 'double-click', { address: buyerAddress, items: [{ qty: 2, skuId: 'IDEMPOTENT' }] });
    expect(reordered.body).toEqual(answers[0]!.body);

    const conflict = await checkout('careful-buyer', 'double-click', { items: [{ skuId: 'IDEMPOTENT', qty: 3 }], address: buyerAddress });
    expect(conflict.status).toBe(422);
    expect(conflict.body.code).toBe('IDEMPOTENCY_CONFLICT');
    // keys are scoped per buyer: another buyer's identical key is a new order
    const otherBuyer = await checkout('other-buyer', 'double-click', body);
    expect(otherBuyer.status).toBe(202);
    expect(otherBuyer.body.orderId).not.toBe(answers[0]!.body.orderId);
    await waitFor(async () => (await ordersOf('IDEMPOTENT')) === 2, { what: 'both orders in MySQL' });
    expect((await api.request('GET', '/v1/admin/skus/IDEMPOTENT', { token: admin })).body.stock.available).toBe(46);
  });

  it('takes an Idempotency-Key of any printable characters, spaces and a comma inside included (API.md: 1–255 chars), and replays it', async () => {
    await createFlashSku('SPACED', 10, 5);
    const body = { items: [{ skuId: 'SPACED', qty: 1 }], address: buyerAddress };
    const first = await checkout('spacey-buyer', 'cart 42, try #1 (mobile)', body);
    expect(first.status).toBe(202);
    const again = await checkout('spacey-buyer', 'cart 42, try #1 (mobile)', body);
    expect(again.body).toEqual(first.body);
    expect((await api.request('GET', '/v1/admin/skus/SPACED', { token: admin })).body.stock.available).toBe(9);
  });

  it('records the same hash of a body as every earlier release, so a retry across a rolling deploy is a replay', async () => {
    await createFlashSku('GOLDEN', 10, 5);
    // keys out of order, two lines of one SKU, text JSON escapes differently: the hash's inputs that a rewrite could change
    const body = {
      orderType: 'flash_sale',
      items: [
        { skuId: 'GOLDEN', qty: 1 },
        { qty: 2, skuId: 'GOLDEN' },
      ],
      address: { postalCode: '211 20', name: 'Zoë "Zo" Ångström', phone: '+46 40 123 45', line1: "1 Rue de l'Église\\B", city: 'Malmö', country: 'SE' },
    };
    const accepted = await checkout('golden-buyer', 'rolling-deploy', body);
    expect(accepted.status).toBe(202);
    const recorded = await env.redis.hget(`${env.config.REDIS_KEY_PREFIX}{g0}:idem:golden-buyer:rolling-deploy`, 'h');
    // pinned: an api of the next release must hash this body to what this one stored with the key
    expect(recorded).toBe('u87uXDgmq6390TtL60ZmXI54GJGmsOPLfOPbaAk52HA');
    expect((await checkout('golden-buyer', 'rolling-deploy', body)).body).toEqual(accepted.body);
  });

  it('shows a queued order as ACCEPTED to its buyer, then its persisted state', async () => {
    await createFlashSku('STATUS', 10, 0);
    const accepted = await checkout('status-buyer', 'status-1', { items: [{ skuId: 'STATUS', qty: 1 }], address: buyerAddress });
    expect(accepted.status).toBe(202);
    expect(accepted.headers.location).toBe(accepted.body.statusUrl);
    const order = await waitFor(
      async () => {
        const view = await api.request('GET', accepted.body.statusUrl, { token: api.token('status-buyer') });
        expect(view.status).toBe(200);
        expect(['ACCEPTED', 'PENDING_PAYMENT']).toContain(view.body.status);
        return view.body.status === 'PENDING_PAYMENT' && view.body;
      },
      { what: 'PENDING_PAYMENT' },
    );
    expect(order.buyerStatus).toBe('To pay');
    expect(order.amounts).toEqual({ subtotalCents: 49_900, discountCents: 0, shippingCents: 0, payableCents: 49_900, refundedCents: 0 });
    expect(order.history.map((h: { action: string; actor: string }) => `${h.action} by ${h.actor}`)).toEqual(['checkout by buyer', 'persist by system']);

    const list = await api.request('GET', '/v1/orders?limit=1', { token: api.token('status-buyer') });
    expect(list.body.items.map((o: { orderId: string }) => o.orderId)).toEqual([accepted.body.orderId]);
    expect(list.body.nextCursor).toBeNull();
  });

  it('adds no persist job for retries of a checkout whose order is in MySQL already', async () => {
    await createFlashSku('RETRIED', 10, 0);
    const body = { items: [{ skuId: 'RETRIED', qty: 1 }], address: buyerAddress };
    const accepted = await checkout('retry-buyer', 'retry-1', body);
    await waitFor(async () => (await api.request('GET', accepted.body.statusUrl, { token: api.token('retry-buyer') })).body.status === 'PENDING_PAYMENT', { what: 'the order in MySQL' });
    const events = new QueueEvents(QUEUE.orders, { connection: env.redis.duplicate(), prefix: env.config.QUEUE_PREFIX });
    try {
      await events.waitUntilReady();
      const added: string[] = [];
      events.on('added', ({ jobId }) => added.push(jobId));
      for (let retry = 0; retry < 5; retry++) expect((await checkout('retry-buyer', 'retry-1', body)).body.orderId).toBe(accepted.body.orderId);
      // a job added would show within the event stream's next read
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(added).toEqual([]);
    } finally {
      await events.close();
    }
  });

  it('sells a cancelled last unit to the next buyer at once, though the api remembers the SKU sold out for a minute', async () => {
    await createFlashSku('LAST-ONE', 1, 1);
    const body = { items: [{ skuId: 'LAST-ONE', qty: 1 }], address: buyerAddress };
    const first = await checkout('first-buyer', 'last-1', body);
    expect(first.status).toBe(202);
    expect((await checkout('second-buyer', 'last-2', body)).body.code).toBe('OUT_OF_STOCK');
    await waitFor(async () => (await api.request('GET', first.body.statusUrl, { token: api.token('first-buyer') })).body.status === 'PENDING_PAYMENT', { what: 'the order in MySQL' });
    const cancelled = await api.request('POST', `${first.body.statusUrl}/cancel`, { token: api.token('first-buyer'), body: { reason: 'changed my mind' } });
    expect(cancelled.body.status).toBe('CANCELLED');
    const second = await checkout('second-buyer', 'last-3', body);
    expect(second.status).toBe(202);
    expect((await api.request('GET', '/v1/admin/skus/LAST-ONE', { token: admin })).body.stock).toEqual({ available: 0, reserved: 1, sold: 0 });
  });

  it('sells presale SKUs in a presale order that holds their units until its balance is due, and a flash-sale SKU with them in no order', async () => {
    await createFlashSku('FLASH-TV', 10, 0);
    for (const [skuId, stock] of [['PRE-TV', 10], ['PRE-SOUNDBAR', 10]] as const) {
      const created = await api.request('POST', '/v1/admin/skus', {
        token: admin,
        body: { skuId, title: skuId, priceCents: 120_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock, deduction: 'placement', orderType: 'presale' },
      });
      expect([created.status, created.body.orderType]).toEqual([201, 'presale']);
    }
    const mixed = await checkout('early-bird', 'tv-and-flash-tv', { items: [{ skuId: 'PRE-TV', qty: 1 }, { skuId: 'FLASH-TV', qty: 1 }], address: buyerAddress });
    expect([mixed.status, mixed.body.code, mixed.body.detail]).toEqual([
      422,
      'ORDER_TYPE_MISMATCH',
      'SKU PRE-TV is sold in presale orders and SKU FLASH-TV in standard orders: they are bought in separate orders',
    ]);
    const accepted = await checkout('early-bird', 'tv-and-soundbar', { items: [{ skuId: 'PRE-TV', qty: 1 }, { skuId: 'PRE-SOUNDBAR', qty: 2 }], address: buyerAddress, orderType: 'presale' });
    expect(accepted.status).toBe(202);
    for (const [skuId, stock] of [['PRE-TV', { available: 9, reserved: 1, sold: 0 }], ['PRE-SOUNDBAR', { available: 8, reserved: 2, sold: 0 }], ['FLASH-TV', { available: 10, reserved: 0, sold: 0 }]] as const) {
      expect((await api.request('GET', `/v1/admin/skus/${skuId}`, { token: admin })).body.stock, skuId).toEqual(stock);
    }
    const order = await waitFor(
      async () => {
        const view = (await api.request('GET', accepted.body.statusUrl, { token: api.token('early-bird') })).body;
        return view.status === 'PENDING_DEPOSIT' && view;
      },
      { what: 'the presale in MySQL' },
    );
    expect(order.type).toBe('presale');
    // its reservation outlives the latest balance deadline (a deposit paid at the payment deadline its checkout set) by the week
    // any reservation gets, less the time the order waited in the queue: its own deadline runs a payment window from its write
    const keptUntil = await env.redis.pexpiretime(`${env.config.REDIS_KEY_PREFIX}{g0}:order:${accepted.body.orderId}`);
    const checkoutDeadline = Date.parse(order.history[0].at) + env.config.PAYMENT_TIMEOUT_MS;
    expect(keptUntil).toBe(checkoutDeadline + 30 * DAY + 7 * DAY);
    expect(Date.parse(order.paymentDeadline) - checkoutDeadline).toBeLessThan(HOUR);
    // and up to its last moment the stock repair, which finishes in Redis what the ledger did to the orders whose record may be there, looks at it
    expect(accepted.body.orderId >= firstOrderIdAt(api.deps.inventory.reservationsKeptSince(new Date(keptUntil - 1)).getTime())).toBe(true);
    // its children are written when its balance is paid, up to its deposit's deadline and 30 days after its acceptance:
    // the admin search by date finds a row of it written 29 days after its deposit's deadline
    const writtenAt = new Date(new Date(order.paymentDeadline).getTime() + 29 * DAY);
    await sql`UPDATE orders SET created_at = ${writtenAt} WHERE order_id = ${accepted.body.orderId}`.execute(env.db);
    const search = await api.request('GET', `/v1/admin/orders?userId=early-bird&createdFrom=${new Date(writtenAt.getTime() - HOUR).toISOString()}`, { token: admin });
    expect(search.body.items.map((o: { orderId: string }) => o.orderId)).toEqual([accepted.body.orderId]);
  });

  it('reports checkouts, latency, queues and transitions on /metrics', async () => {
    const metrics = await api.request('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/checkouts_total\{[^}]*outcome="accepted"[^}]*\} \d+/);
    expect(metrics.body).toMatch(/checkouts_total\{[^}]*outcome="out_of_stock"[^}]*\} 2101/);
    expect(metrics.body).toMatch(/checkouts_total\{[^}]*outcome="limit_exceeded"[^}]*\} 48/);
    // 121 or 122 before the five retries of a persisted order's checkout
    expect(metrics.body).toMatch(/checkouts_total\{[^}]*outcome="idempotent_replay"[^}]*\} 12[67]/);
    expect(metrics.body).toMatch(/http_request_duration_seconds_bucket\{[^}]*route="\/v1\/orders"/);
    expect(metrics.body).toMatch(/queue_jobs\{[^}]*queue="orders"[^}]*state="waiting"/);
    expect(metrics.body).toContain('process_cpu_user_seconds_total');
  });
});

import { CatalogRepository, OrderRepository } from '@orders/persistence';
import { addDeadLetter } from '@orders/queues';
import { Inventory, checkoutTimeoutsOf } from '@orders/stock';
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The dead letters through the api, as an admin works them from the console: a job that failed
 * every attempt listed with the orders it carries and why, replayed once its cause is fixed.
 */
describe('the dead letters in the api', () => {
  let system: OrderSystem;
  const admin = () => system.token('ops', 'admin');

  beforeAll(async () => {
    system = await startOrderSystem('dead_letters_admin', { JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50' });
  });
  afterAll(async () => system?.close());

  it('lists an order the workers could not write with why, refuses to drop it, and writes it once replayed after the fix', async () => {
    // a SKU Redis sells and the catalog has never heard of: its orders cannot be written
    const inventory = new Inventory(system.env.redis, system.env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(system.env.config));
    await inventory.initSku({ skuId: 'GHOST', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    const orderId = await system.checkout('dora', [{ skuId: 'GHOST', qty: 1 }]);
    const listed = await waitFor(
      async () => {
        const letters = await system.request('GET', '/v1/admin/dead-letters', { token: admin() });
        return letters.body.total === 1 && letters.body;
      },
      { what: `order ${orderId} dead-lettered`, timeoutMs: 20_000 },
    );
    const [letter] = listed.items;
    expect(letter).toMatchObject({ queue: 'orders', orders: [orderId], attemptsMade: 2 });
    expect(letter.failedReason).toContain('GHOST');
    // the order's page finds it by the order; another order has none
    const ofOrder = await system.request('GET', `/v1/admin/dead-letters?orderId=${orderId}`, { token: admin() });
    expect([ofOrder.body.total, ofOrder.body.items.map((item: { letterId: string }) => item.letterId)]).toEqual([1, [letter.letterId]]);
    expect((await system.request('GET', '/v1/admin/dead-letters?orderId=01JDLQNOTHERE0000000000000', { token: admin() })).body).toEqual({ total: 0, items: [] });
    // an admin's alone
    expect((await system.request('GET', '/v1/admin/dead-letters', { token: system.token('shop', 'merchant') })).status).toBe(403);

    // its buyer was told the order is taken: dropping it would lose it
    const dropped = await system.request('DELETE', `/v1/admin/dead-letters/${letter.letterId}`, { token: admin() });
    expect([dropped.status, dropped.body.code]).toEqual([409, 'CONFLICT']);
    expect(dropped.body.detail).toContain('carries accepted orders');

    // the fix: the catalog has the SKU; the replay writes the order once
    await new CatalogRepository(system.env.db).createSku(
      { skuId: 'GHOST', title: 'Ghost lamp', priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', flashSale: null },
      10,
      'opening-GHOST',
      async () => undefined,
    );
    const replayed = await system.request('POST', `/v1/admin/dead-letters/${letter.letterId}/replay`, { token: admin() });
    expect(replayed.status).toBe(200);
    expect(replayed.body).toEqual({ letterId: letter.letterId, outcome: expect.stringContaining('retried job') });
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await new OrderRepository(system.env.db).findOrderRow(orderId))?.user_id).toBe('dora');
    expect((await system.request('GET', '/v1/admin/dead-letters', { token: admin() })).body).toEqual({ total: 0, items: [] });
    // replayed already (its answer lost, say): nothing is put back twice
    const again = await system.request('POST', `/v1/admin/dead-letters/${letter.letterId}/replay`, { token: admin() });
    expect([again.status, again.body.code]).toEqual([404, 'NOT_FOUND']);
  });

  it("drops a letter whose work was done another way", async () => {
    const letter = { queue: 'payments', name: 'refund-payments', jobId: 'refund-of-lost-order', data: { orderId: '01JDLQADMIN00000000000000A' }, failedReason: 'the payment system refused the refund', attemptsMade: 2, failedAt: new Date().toISOString() };
    await addDeadLetter(system.workers.deps.queues.deadLetter, 'payments-refund-of-lost-order', letter);
    // a body with fields neither takes is refused whole (API.md: unknown fields are 400), the letter left as it is
    for (const [method, path] of [
      ['POST', '/v1/admin/dead-letters/payments-refund-of-lost-order/replay'],
      ['DELETE', '/v1/admin/dead-letters/payments-refund-of-lost-order'],
    ] as const) {
      const refused = await system.request(method, path, { token: admin(), body: { force: true } });
      expect([method, refused.status, refused.body.code]).toEqual([method, 400, 'VALIDATION_FAILED']);
    }
    const dropped = await system.request('DELETE', '/v1/admin/dead-letters/payments-refund-of-lost-order', { token: admin() });
    expect([dropped.status, dropped.body.outcome]).toEqual([200, 'payments-refund-of-lost-order (payments/refund-payments, order 01JDLQADMIN00000000000000A)']);
    expect((await system.request('GET', '/v1/admin/dead-letters', { token: admin() })).body.total).toBe(0);
  });

  it('replays the oldest letters a request at a time after an outage, saying how many are left', async () => {
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const orderId = await system.checkout('ed', [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ed'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the order's refund job failed twice while the payment system was away: it had nothing to pay back
    const failedAt = new Date().toISOString();
    for (const n of [1, 2]) {
      const letter = { queue: 'payments', name: 'refund-payments', jobId: `refund-ed-${n}`, data: { orderId }, failedReason: 'the payment system was away', attemptsMade: 2, failedAt };
      await addDeadLetter(system.workers.deps.queues.deadLetter, `payments-refund-ed-${n}`, letter);
    }
    const first = await system.request('POST', '/v1/admin/dead-letters/replay', { token: admin(), body: { limit: 1 } });
    expect([first.status, first.body.replayed, first.body.left]).toEqual([200, [expect.stringMatching(/^payments-refund-ed-1 -> payments\/refund-payments/)], 1]);
    const rest = await system.request('POST', '/v1/admin/dead-letters/replay', { token: admin() });
    expect([rest.status, rest.body.replayed, rest.body.left]).toEqual([200, [expect.stringMatching(/^payments-refund-ed-2 -> /)], 0]);
    expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');
  });

  it('pages through the letters of a mass failure, oldest first, with offset and limit', async () => {
    const failedAt = new Date().toISOString();
    const ids = Array.from({ length: 5 }, (_, n) => `fulfillment-update-paged-${n}`);
    for (const [n, jobId] of ids.entries()) {
      const letter = { queue: 'fulfillment', name: 'update-fulfilment', jobId: `update-paged-${n}`, data: { orderId: `01JDLQPAGED00000000000000${n}` }, failedReason: 'the warehouse was away', attemptsMade: 2, failedAt };
      await addDeadLetter(system.workers.deps.queues.deadLetter, jobId, letter);
    }
    try {
      const page = async (params: string) => {
        const read = await system.request('GET', `/v1/admin/dead-letters?${params}`, { token: admin() });
        return [read.status, read.body.total, read.body.items.map((item: { letterId: string }) => item.letterId)];
      };
      expect(await page('limit=2')).toEqual([200, 5, ids.slice(0, 2)]);
      expect(await page('limit=2&offset=2')).toEqual([200, 5, ids.slice(2, 4)]);
      expect(await page('limit=2&offset=4')).toEqual([200, 5, ids.slice(4)]);
      expect(await page('limit=2&offset=5')).toEqual([200, 5, []]);
      // an order's letters page alike
      expect(await page(`orderId=01JDLQPAGED000000000000003&offset=1`)).toEqual([200, 1, []]);
      expect((await system.request('GET', '/v1/admin/dead-letters?offset=-1', { token: admin() })).status).toBe(400);
    } finally {
      for (const jobId of ids) await system.workers.deps.queues.deadLetter.remove(jobId);
    }
  });

  it("finds an order's letters however many letters a mass failure wrote before them, in the order they were written", async () => {
    const { deadLetter } = system.workers.deps.queues;
    const failedAt = new Date().toISOString();
    const letter = (jobId: string, orderId: string) => ({ queue: 'fulfillment', name: 'update-fulfilment', jobId, data: { orderId }, failedReason: 'the warehouse was away', attemptsMade: 2, failedAt });
    // 1,200 warehouse updates of other orders failed first
    const others = Array.from({ length: 1_200 }, (_, n) => `fulfillment-update-mass-${n}`);
    for (let n = 0; n < others.length; n += 100) {
      await Promise.all(others.slice(n, n + 100).map((jobId, i) => addDeadLetter(deadLetter, jobId, letter(jobId, `01JDLQMASS00000000000${String(n + i).padStart(5, '0')}`))));
    }
    const ofOrder = ['fulfillment-update-late-1', 'fulfillment-update-late-2'];
    for (const jobId of ofOrder) await addDeadLetter(deadLetter, jobId, letter(jobId, '01JDLQLATE0000000000000001'));
    try {
      const found = await system.request('GET', '/v1/admin/dead-letters?orderId=01JDLQLATE0000000000000001', { token: admin() });
      expect([found.status, found.body.total, found.body.items.map((item: { letterId: string }) => item.letterId)]).toEqual([200, 2, ofOrder]);
      // replayed or dropped since: gone from its order's letters too
      await deadLetter.remove(ofOrder[0]!);
      expect((await system.request('GET', '/v1/admin/dead-letters?orderId=01JDLQLATE0000000000000001', { token: admin() })).body.items.map((item: { letterId: string }) => item.letterId)).toEqual([ofOrder[1]]);
    } finally {
      await deadLetter.drain();
    }
  });

  it('finds the letters an earlier build wrote without an index, once, on the first look for an order', async () => {
    const { deadLetter } = system.workers.deps.queues;
    // as the build before wrote them: no index of their orders, and none marked done
    await system.env.redis.unlink(deadLetter.toKey('letters-index-complete'));
    const letter = { queue: 'payments', name: 'refund-payments', jobId: 'refund-old-build', data: { orderId: '01JDLQOLDBUILD000000000001' }, failedReason: 'the payment system was away', attemptsMade: 2, failedAt: new Date().toISOString() };
    await deadLetter.add('dead-letter', letter, { jobId: 'payments-refund-old-build' });
    try {
      const found = await system.request('GET', '/v1/admin/dead-letters?orderId=01JDLQOLDBUILD000000000001', { token: admin() });
      expect([found.body.total, found.body.items.map((item: { letterId: string }) => item.letterId)]).toEqual([1, ['payments-refund-old-build']]);
      expect(await system.env.redis.exists(deadLetter.toKey('letters-index-complete'))).toBe(1);
    } finally {
      await deadLetter.remove('payments-refund-old-build');
    }
  });

  it("shows a split order's page the letters of its children's jobs", async () => {
    await system.createSku({ skuId: 'RUG', priceCents: 9_900, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    const orderId = await system.checkout('flo', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('flo'), body: { method: 'card' } });
    const split = await waitFor(async () => ((await system.order(orderId)).subOrders.length === 2 ? system.order(orderId) : null), { what: `order ${orderId} split` });
    const [child] = split.subOrders;
    const letter = { queue: 'fulfillment', name: 'update-fulfilment', jobId: `update-${child}`, data: { orderId: child }, failedReason: 'the warehouse refused the change', attemptsMade: 2, failedAt: new Date().toISOString() };
    await addDeadLetter(system.workers.deps.queues.deadLetter, `fulfillment-update-${child}`, letter);
    try {
      const ofOrder = await system.request('GET', `/v1/admin/dead-letters?orderId=${orderId}`, { token: admin() });
      expect([ofOrder.body.total, ofOrder.body.items.map((item: { orders: string[] }) => item.orders)]).toEqual([1, [[child]]]);
    } finally {
      await system.workers.deps.queues.deadLetter.remove(`fulfillment-update-${child}`);
    }
  });
});

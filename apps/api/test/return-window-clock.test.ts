// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const WINDOW_MS = 5_000;
const MINUTES_10 = 10 * 60_000;
const body = { reason: 'too dim', items: [{ skuId: 'LAMP', qty: 1 }] };

/**
 * The buyer's after-sales window closes AFTER_SALES_WINDOW_MS after the order's last delivery
 * by MySQL's clock, the one the completion timer goes by: an api host whose clock runs ahead
 * refuses no return inside it, one whose clock runs behind takes none after it, and a return
 * racing the completion is either taken or refused as a closed window, never both.
 */
describe("the after-sales window of a return asked through api hosts whose clocks are off, by MySQL's clock", () => {
  let system: OrderSystem;
  let ahead: ApiUnderTest;
  let behind: ApiUnderTest;
  let timers: RunningWorkers | undefined;

  beforeAll(async () => {
    // no worker serves the timers until a test starts one: a delivered order stays DELIVERED past its window, its completion not run yet
    system = await startOrderSystem('return_window_clock', { WORKER_QUEUES: 'orders,payments,fulfillment', AFTER_SALES_WINDOW_MS: String(WINDOW_MS) });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    ahead = await startApi(system.env, { clock: () => new Date(Date.now() + MINUTES_10) });
    behind = await startApi(system.env, { clock: () => new Date(Date.now() - MINUTES_10) });
  }, 60_000);
  afterAll(async () => {
    await timers?.close();
    await ahead?.close();
    await behind?.close();
    await system?.close();
  });

  const mysqlNow = async () => (await sql<{ now: Date }>`SELECT UTC_TIMESTAMP(3) AS now`.execute(system.env.db)).rows[0]!.now.getTime();
  /** An order of two lamps, paid, shipped and delivered by the warehouse, and when its window closes by MySQL's clock. */
  async function delivered(buyer: string): Promise<{ orderId: string; closesAt: number }> {
    const orderId = await system.checkout(buyer, [{ skuId: 'LAMP', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
    const order = await system.waitForStatus(orderId, 'DELIVERED');
    return { orderId, closesAt: Date.parse(order.history.findLast((step: any) => step.to === 'DELIVERED').at) + WINDOW_MS };
  }
  const refundsOf = async (orderId: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items;

  it('takes a return asked through a host whose clock runs 10 minutes ahead while the window is open by MySQL’s clock', async () => {
    const { orderId, closesAt } = await delivered('amy');
    const asked = await ahead.request('POST', `/v1/orders/${orderId}/returns`, { token: ahead.token('amy'), body });
    expect(await mysqlNow()).toBeLessThan(closesAt);
    expect([asked.status, asked.body.code, asked.body.status]).toEqual([202, undefined, 'REQUESTED']);
    expect((await system.order(orderId)).status).toBe('RETURN_REQUESTED');
  });

  it('refuses a return asked through a host whose clock runs 10 minutes behind once the window closed by MySQL’s clock, before the completion timer ran; the timer completes the order', async () => {
    const { orderId, closesAt } = await delivered('bea');
    await waitFor(async () => (await mysqlNow()) >= closesAt, { what: 'the window to close by MySQL’s clock', timeoutMs: WINDOW_MS + 10_000 });
    expect((await system.order(orderId)).status).toBe('DELIVERED');
    const late = await behind.request('POST', `/v1/orders/${orderId}/returns`, { token: behind.token('bea'), body });
    expect([late.status, late.body.code]).toEqual([422, 'RETURN_WINDOW_CLOSED']);
    expect((await system.order(orderId)).status).toBe('DELIVERED');
    expect(await refundsOf(orderId)).toEqual([]);

    timers = startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'timers' }), pino({ level: 'silent' })));
    const completed = await system.waitForStatus(orderId, 'COMPLETED', 20_000);
    expect(completed.history.at(-1)).toMatchObject({ from: 'DELIVERED', action: 'complete', to: 'COMPLETED', actor: 'system' });
    expect(await refundsOf(orderId)).toEqual([]);
  });

  it('answers a return that found the window open, yet lost the order to the completion committed as it closed, 422 RETURN_WINDOW_CLOSED: the order completes with no return', async () => {
    const { orderId, closesAt } = await delivered('cal');
    // the return's write of the order, waiting for the row this test holds (InnoDB's trx_state does not always say LOCK WAIT)
    const waitingForLock = async () =>
      (
        await sql<{ waiting: number }>`SELECT COUNT(*) AS waiting FROM information_schema.PROCESSLIST
          WHERE COMMAND = 'Query' AND INFO LIKE ${`update \`orders\`%${orderId}%`}`.execute(system.env.db)
      ).rows[0]!.waiting > 0;
    const { asked } = await system.env.db.transaction().execute(async (trx) => {
      // the completion's transaction holds the order: the return, asked inside the window, waits for it to commit
      const order = await trx.selectFrom('orders').selectAll().where('order_id', '=', orderId).forUpdate().executeTakeFirstOrThrow();
      const asked = system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('cal'), body });
      await waitFor(waitingForLock, { what: 'the return to wait for the order', intervalMs: 20 });
      expect(await mysqlNow()).toBeLessThan(closesAt);
      await waitFor(async () => (await mysqlNow()) >= closesAt, { what: 'the window to close by MySQL’s clock', timeoutMs: WINDOW_MS + 10_000 });
      // the step the completion timer records, at MySQL's time
      await trx.updateTable('orders').set({ status: 'COMPLETED', version: order.version + 1, updated_at: sql<Date>`UTC_TIMESTAMP(3)` }).where('order_id', '=', orderId).execute();
      await trx
        .insertInto('order_history')
        .values({ order_id: orderId, version: order.version + 1, from_status: 'DELIVERED', action: 'complete', to_status: 'COMPLETED', actor: 'system', detail: 'after-sales window closed', at: sql<Date>`UTC_TIMESTAMP(3)` })
        .execute();
      // not awaited here: it waits for this transaction's commit
      return { asked };
    });
    const settled = await asked;
    expect([settled.status, settled.body.code]).toEqual([422, 'RETURN_WINDOW_CLOSED']);
    expect((await system.order(orderId)).status).toBe('COMPLETED');
    expect(await refundsOf(orderId)).toEqual([]);
  });
});

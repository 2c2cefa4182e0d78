// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { OrderRepository } from '@orders/persistence';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const WINDOW_MS = 3_000;
/** The sweep's interval, and its grace: a timer late by less (a loaded box: 2 s were not always enough) is not taken over. */
const SWEEP_MS = 5_000;

/** A read of the order in `status` by the timers worker, held after MySQL answered it until the test lets it go. */
interface HeldRead {
  orderId: string;
  status: string;
  taken: () => void;
  released: Promise<void>;
}

/**
 * The timers worker's database, through which the test holds the completion job's read of an order
 * under a return: the job has seen the order under review and runs on, active in Redis, while the
 * merchant refuses (or the warehouse receives part of) the return.
 */
class HoldsReads implements KyselyPlugin {
  private held: HeldRead | undefined;

  hold(orderId: string, status: string): { taken: Promise<void>; release: () => void } {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const taken = new Promise<void>((resolve) => (this.held = { orderId, status, taken: resolve, released }));
    return { taken, release };
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const held = this.held;
    if (held && args.result.rows.some((row) => row.order_id === held.orderId && row.status === held.status)) {
      this.held = undefined;
      held.taken();
      await held.released;
    }
    return args.result;
  }
}

/**
 * An order's first after-sales window closes while a return of it is under way: its completion job
 * runs then and finds it under review (or its parcel on the way back). When the merchant refuses the
 * return (or the warehouse receives part of it) while that job runs, the order is delivered again
 * and its window, given back (a refusal: a grace after it, here the whole window; a partial return: a
 * whole new one), must close by the order's own timer, once, the backstop sweep finding nothing
 * to make up for (no OrderTimersMissed). A 3 s window; the sweep looks every 5 s.
 */
describe('the completion timer of an order whose return ends while the timer runs', () => {
  let system: OrderSystem;
  let timerWorker: RunningWorkers;
  const reads = new HoldsReads();

  beforeAll(async () => {
    system = await startOrderSystem('completion_timer_refused_return', {
      WORKER_QUEUES: 'orders,payments,fulfillment',
      AFTER_SALES_WINDOW_MS: String(WINDOW_MS),
      OVERDUE_SWEEP_INTERVAL_MS: String(SWEEP_MS),
    });
    const deps = connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'timers' }), pino({ level: 'silent' }));
    const db = deps.db.withPlugin(reads);
    timerWorker = startWorkers({ ...deps, db, orders: new OrderRepository(db) });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  }, 60_000);
  afterAll(async () => {
    await timerWorker?.close();
    await system?.close();
  });

  const warehouse = async (orderId: string, event: string) => expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
  async function delivered(buyer: string, qty: number): Promise<string> {
    const orderId = await system.checkout(buyer, [{ skuId: 'LAMP', qty }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) await warehouse(orderId, event);
    return orderId;
  }
  async function returnOne(buyer: string, orderId: string): Promise<string> {
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token(buyer), body: { reason: 'too dim', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    return asked.body.returnId as string;
  }
  /** The order's completion job runs now, and is still running (active) when `ending` delivers the order again. */
  async function whileTheCompletionJobRuns(orderId: string, status: string, ending: () => Promise<void>): Promise<void> {
    const read = reads.hold(orderId, status);
    await read.taken;
    try {
      await ending();
      expect(await system.workers.deps.queues.timers.getJobState(`complete-${orderId}`)).toBe('active');
    } finally {
      read.release();
    }
  }
  /** The order completed WINDOW_MS after the step that delivered it again, once, by its own timer. */
  async function expectCompletedByItsTimer(orderId: string, deliveredAgainBy: string): Promise<void> {
    const completed = await system.waitForStatus(orderId, 'COMPLETED', 30_000);
    const at = (action: string) => Date.parse(completed.history.findLast((step: any) => step.action === action).at);
    expect(completed.history.filter((step: any) => step.action === 'complete')).toHaveLength(1);
    expect(at('complete') - at(deliveredAgainBy)).toBeGreaterThanOrEqual(WINDOW_MS);
    // the sweep completes an order SWEEP_MS past its window at the soonest
    expect(at('complete') - at(deliveredAgainBy)).toBeLessThan(WINDOW_MS + SWEEP_MS);
    const missed = (await timerWorker.deps.metrics.overdueOrderTimers.get()).values.find(({ labels }) => labels.timer === 'complete');
    expect(missed?.value).toBe(0);
  }

  it('completes a grace after the merchant refused the return while the first window’s job ran (a whole window here: RETURN_REVIEW_WINDOW_MS, 2 days, capped by it), by that job', async () => {
    const orderId = await delivered('lou', 1);
    const returnId = await returnOne('lou', orderId);

    await whileTheCompletionJobRuns(orderId, 'RETURN_REQUESTED', async () => {
      const refused = await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/refuse`, { token: system.token('shop', 'merchant') });
      expect([refused.status, refused.body.status]).toEqual([200, 'REFUSED']);
    });

    await expectCompletedByItsTimer(orderId, 'refuse_return');
  });

  it('completes a whole window after the warehouse received part of the return while the first window’s job ran, by that job', async () => {
    const orderId = await delivered('max', 2);
    const returnId = await returnOne('max', orderId);
    const approved = await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: system.token('shop', 'merchant') });
    expect([approved.status, approved.body.status]).toEqual([200, 'APPROVED']);

    await whileTheCompletionJobRuns(orderId, 'RETURNING', async () => {
      await warehouse(orderId, 'RETURN_RECEIVED');
      await system.waitForStatus(orderId, 'DELIVERED');
    });

    await waitFor(async () => (await system.order(orderId)).amounts.refundedCents === 2_400, { what: 'the returned lamp paid back' });
    await expectCompletedByItsTimer(orderId, 'receive_partial_return');
  });
});

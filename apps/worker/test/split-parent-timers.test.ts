// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Effect } from '@orders/domain';
import { enqueueEffects } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A split order's timers are its children's: each child is confirmed and completed on its own
 * clock, and the order's status follows theirs. Before the fix of lastStep (a split order's
 * derived steps enqueue nothing), a repeated callback enqueued the derived step's timer for the
 * order itself; such a job, still waiting in Redis (for days: AUTO_CONFIRM_MS, the after-sales
 * window), or replayed from the dead letters, must move nothing when it falls due. The overdue
 * sweep is off, so the children, whose own timer jobs the test holds back, stay where they are.
 */
describe("a split order's own timer jobs", () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // 4 s timers: the test takes the children's jobs away before they fall due, after shipping (delivering) both
    // children one after the other, which on a loaded box could take longer than the 1 s they once were
    system = await startOrderSystem('split_parent_timers', { AUTO_CONFIRM_MS: '4000', AFTER_SALES_WINDOW_MS: '4000', OVERDUE_SWEEP_INTERVAL_MS: '0' });
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 400, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-north', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const statuses = async (orderId: string, children: readonly string[]) => [(await system.order(orderId)).status, ...(await Promise.all(children.map(async (id) => (await system.order(id)).status)))];
  const warehouse = async (orderId: string, event: string) => expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);

  it('confirm nothing and complete nothing: the order stays SHIPPED, then DELIVERED, as its children are', async () => {
    const { queues, orders, config } = system.workers.deps;
    const { orderId, children } = await system.paidAndSplit('kim', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'MUG', qty: 1 }]);
    // the children's own timers are held back: their buyer has not confirmed, their window is open
    const holdBack = async (jobIdOf: (orderId: string) => string) => {
      for (const child of children) await (await waitFor(async () => queues.timers.getJob(jobIdOf(child)), { what: jobIdOf(child) })).remove();
    };
    // the order's own timer job, as the repeated callback enqueued it before the fix, falls due and runs
    const ownTimerRuns = async (effect: Effect, jobId: string) => {
      await enqueueEffects(queues, { orderId, userId: 'kim' }, [effect], () => orders.timersDue(orderId, [effect], config));
      expect(await queues.timers.getJob(jobId)).toBeDefined();
      await waitFor(async () => (await queues.timers.getJob(jobId)) === undefined, { what: `${jobId} run`, timeoutMs: 20_000 });
    };

    for (const child of children) await warehouse(child, 'SHIPPED');
    await holdBack((id) => `auto-confirm-${id}`);
    expect(await statuses(orderId, children)).toEqual(['SHIPPED', 'SHIPPED', 'SHIPPED']);
    await ownTimerRuns('scheduleAutoConfirm', `auto-confirm-${orderId}`);
    expect(await statuses(orderId, children)).toEqual(['SHIPPED', 'SHIPPED', 'SHIPPED']);

    for (const child of children) await warehouse(child, 'DELIVERED');
    await holdBack((id) => `complete-${id}`);
    expect(await statuses(orderId, children)).toEqual(['DELIVERED', 'DELIVERED', 'DELIVERED']);
    await ownTimerRuns('scheduleCompletion', `complete-${orderId}`);
    expect(await statuses(orderId, children)).toEqual(['DELIVERED', 'DELIVERED', 'DELIVERED']);

    // every step of the order's since its split is one its children took
    const history = (await system.order(orderId)).history as any[];
    const since = history.slice(history.findIndex((h) => h.action === 'split') + 1);
    expect(since.filter((h) => !h.detail?.startsWith('derived from child')).map((h) => h.action)).toEqual([]);
  });
});

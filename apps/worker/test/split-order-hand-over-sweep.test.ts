// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { enqueueSendToWarehouse } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ForwardLife } from '../src/processors/forward-life.js';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The overdue sweep reads a page of paid orders, then looks at each one in turn. An order split
 * meanwhile (its settlement job ran between the read and the look) reads PAID while its children
 * wait for their warehouses: its children are handed over by their own jobs, and the order
 * itself never is, which would ship every line a second time from its first line's warehouse.
 */
describe('a split order the hand-over sweep read before its split', () => {
  let system: OrderSystem;
  let fulfilment: RunningWorkers | undefined;

  beforeAll(async () => {
    system = await startOrderSystem('split_hand_over_sweep', { WORKER_QUEUES: 'orders,timers,payments', EXTERNAL_RETRY_DELAY_MS: '300', WAREHOUSE_BREAKER_VOLUME_THRESHOLD: '1000' });
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 700, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    await fulfilment?.close();
    await system?.close();
  });

  const warehouseDown = async (outage: boolean) => expect((await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage } })).status).toBe(200);
  const heldByWarehouse = async () => ((await system.warehouseSim.request('GET', '/__admin/orders')).body.orders as any[]).map((o) => o.orderId).sort();

  it('is not handed over itself, neither by the sweep nor by a hand-over job enqueued for it: only its children reach their warehouses', async () => {
    const orderId = await system.checkout('ann', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ann'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'PAID');

    // the warehouses are away: the order splits, and its children wait PAID for them
    await warehouseDown(true);
    fulfilment = startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the order split', timeoutMs: 15_000 })) as string[];
    expect((await system.order(orderId)).status).toBe('PAID');

    // the sweep's look at the order it read before the split: nothing of its own to hand over
    const life = new ForwardLife(system.workers.deps);
    expect(await life.handOverAgainIfLost(orderId)).toBe(false);
    // a hand-over job for the order itself (enqueued by a sweep before this release) hands nothing over
    await enqueueSendToWarehouse(system.workers.deps.queues, orderId);

    await warehouseDown(false);
    for (const child of children) await system.waitForStatus(child, 'IN_FULFILLMENT', 20_000);
    const fulfilmentJobsLeft = async () => Object.values(await system.workers.deps.queues.fulfillment.getJobCounts('waiting', 'active', 'delayed')).reduce((sum, n) => sum + n, 0);
    await waitFor(async () => (await fulfilmentJobsLeft()) === 0, { what: 'the fulfilment queue drained', timeoutMs: 15_000 });
    expect(await heldByWarehouse()).toEqual([...children].sort());
    expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');
  });
});

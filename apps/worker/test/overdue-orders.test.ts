import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('unpaid orders whose payment deadline job was lost', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // 2 s to pay; the backstop looks every 500 ms for orders 500 ms past their deadline
    system = await startOrderSystem('overdue_orders', { PAYMENT_TIMEOUT_MS: '2000', FLASH_SALE_PAYMENT_TIMEOUT_MS: '2000', OVERDUE_SWEEP_INTERVAL_MS: '500' });
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const stock = async () => (await system.request('GET', '/v1/admin/skus/KETTLE', { token: system.token('ops', 'admin') })).body.stock;

  it('are expired from MySQL by the backstop sweep, and their stock goes back on sale', async () => {
    const { timers } = system.workers.deps.queues;
    const orderId = await system.checkout('ned', [{ skuId: 'KETTLE', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // Redis loses the order's deadline job (a failover to a replica behind, a flushed queue)
    const deadlineJob = await waitFor(
      async () => (await timers.getDelayed()).find((job) => JSON.stringify(job.data).includes(orderId)),
      { what: 'the order’s deadline job' },
    );
    await deadlineJob.remove();
    expect(await stock()).toEqual({ available: 3, reserved: 2, sold: 0 });

    const expired = await system.waitForStatus(orderId, 'EXPIRED', 20_000);
    expect(expired.history.at(-1)).toMatchObject({ action: 'expire', actor: 'system' });
    expect(await stock()).toEqual({ available: 5, reserved: 0, sold: 0 });
    const counted = (await system.workers.deps.metrics.overdueOrdersExpired.get()).values[0]?.value;
    expect(counted).toBe(1);
  });
});

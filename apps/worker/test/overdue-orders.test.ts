import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('unpaid orders whose payment deadline job was lost', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // 2 s to pay; the backstop looks every 500 ms for orders 500 ms past their deadline
    system = await startOrderSystem('overdue_orders', { PAYMENT_TIMEOUT_MS: '2000', FLASH_SALE_PAYMENT_TIMEOUT_MS: '2000', PRESALE_BALANCE_TIMEOUT_MS: '1500', OVERDUE_SWEEP_INTERVAL_MS: '500' });
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

  it('closes a presale whose balance deadline job was lost as that job would have: the deposit kept', async () => {
    const { timers } = system.workers.deps.queues;
    const orderId = await system.persisted('presale', 'ona', [{ skuId: 'KETTLE', qty: 1 }]);
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ona'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    const balanceJob = await waitFor(async () => timers.getJob(`expire-balance-${orderId}`), { what: 'the balance deadline job' });
    await balanceJob.remove();
    const forfeited = await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', 20_000);
    expect(forfeited.history.at(-1)).toMatchObject({ action: 'expire_balance', actor: 'system' });
    expect((await system.workers.deps.metrics.overdueOrdersExpired.get()).values[0]?.value).toBe(2);
  });
});

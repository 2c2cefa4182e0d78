import { QUEUE } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('refunds while the payment system is down', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('refund_breaker', {
      PAYMENT_BREAKER_VOLUME_THRESHOLD: '2',
      PAYMENT_BREAKER_ERROR_THRESHOLD_PERCENT: '50',
      PAYMENT_BREAKER_RESET_MS: '300',
      PAYMENT_BREAKER_TIMEOUT_MS: '1000',
      EXTERNAL_RETRY_DELAY_MS: '100',
      // few attempts: an outage must not use them up
      JOB_ATTEMPTS: '2',
    });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('keeps 3 cancelled paid orders REFUNDING while the breaker is open and refunds each once when the payment system recovers', async () => {
    const buyers = ['ann', 'ben', 'cy'];
    const orderIds: string[] = [];
    for (const buyer of buyers) orderIds.push(await system.checkout(buyer, [{ skuId: 'LAMP', qty: 1 }]));
    for (const [i, orderId] of orderIds.entries()) {
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyers[i]!), body: { method: 'card' } })).status).toBe(202);
      await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    }

    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    for (const [i, orderId] of orderIds.entries()) {
      const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(buyers[i]!), body: { reason: 'no longer needed' } });
      expect([cancel.status, cancel.body.status]).toEqual([200, 'REFUNDING']);
    }
    const breakerOpen = async () => (await system.workers.deps.metrics.circuitBreakerState.get()).values.find((v) => v.labels.breaker === 'payment_refunds')?.value === 2;
    await waitFor(breakerOpen, { what: 'the refunds breaker (payment_refunds) to open', timeoutMs: 10_000, intervalMs: 20 });
    // waiting, not failed: the units are back on sale, the money not yet
    await new Promise((resolve) => setTimeout(resolve, 800));
    for (const orderId of orderIds) expect((await system.order(orderId)).status).toBe('REFUNDING');
    expect((await system.request('GET', '/v1/admin/skus/LAMP', { token: system.token('ops', 'admin') })).body.stock).toEqual({ available: 10, reserved: 0, sold: 0 });
    const payments = new Queue(QUEUE.payments, { connection: system.env.redis, prefix: system.env.config.QUEUE_PREFIX });
    expect(await payments.getJobCounts('failed')).toEqual({ failed: 0 });

    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    for (const orderId of orderIds) expect((await system.waitForStatus(orderId, 'REFUNDED', 20_000)).amounts.refundedCents).toBe(2_400);
    const refunds = (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as Array<{ amountCents: number }>;
    expect(refunds.map((r) => r.amountCents)).toEqual([2_400, 2_400, 2_400]);
    expect(await payments.getJobCounts('failed')).toEqual({ failed: 0 });
    expect(await system.workers.deps.queues.deadLetter.count()).toBe(0);
    await payments.close();
  });
});

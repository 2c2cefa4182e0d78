import { QUEUE } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('the payment system failing every request', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('payment_breaker', {
      PAYMENT_SIM_FAILURE_RATE: '1',
      // the breaker opens after 3 calls with more than half failed, probes again after 400 ms
      PAYMENT_BREAKER_VOLUME_THRESHOLD: '3',
      PAYMENT_BREAKER_ERROR_THRESHOLD_PERCENT: '50',
      PAYMENT_BREAKER_RESET_MS: '400',
      // the simulator's failures must count as failures, not as timeouts, however slow a loaded box answers
      PAYMENT_BREAKER_TIMEOUT_MS: '3000',
      EXTERNAL_RETRY_DELAY_MS: '100',
      // few attempts: an outage must not use them up
      JOB_ATTEMPTS: '2',
    });
    await system.createSku({ skuId: 'BOOK', priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const breakerState = async () => (await system.workers.deps.metrics.circuitBreakerState.get()).values.find((v) => v.labels.breaker === 'payment')?.value;
  const calls = async (outcome: string) =>
    (await system.workers.deps.metrics.externalCalls.get()).values.find((v) => v.labels.system === 'payment' && v.labels.outcome === outcome)?.value ?? 0;

  it('opens the breaker, keeps 6 orders waiting instead of failing, and pays each exactly once when the system recovers', async () => {
    const orderIds: string[] = [];
    for (let i = 1; i <= 6; i++) orderIds.push(await system.checkout(`reader-${i}`, [{ skuId: 'BOOK', qty: 1 }]));
    await Promise.all(orderIds.map((id) => system.waitForStatus(id, 'PENDING_PAYMENT')));
    for (const [i, orderId] of orderIds.entries()) {
      const pay = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(`reader-${i + 1}`), body: { method: 'card' } });
      expect(pay.status).toBe(202);
    }

    await waitFor(async () => (await breakerState()) === 2, { what: 'the payment breaker to open', timeoutMs: 10_000, intervalMs: 20 });
    const scrape = await system.workers.deps.metrics.registry.metrics();
    expect(scrape).toMatch(/circuit_breaker_state\{breaker="payment",app="worker"\} 2/);
    expect(await calls('failure')).toBeGreaterThanOrEqual(3);
    await waitFor(async () => (await calls('rejected')) > 0, { what: 'calls rejected by the open breaker' });

    // waiting, not failed: no order moved, no job failed or dead-lettered
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (const orderId of orderIds) expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');
    const payments = new Queue(QUEUE.payments, { connection: system.env.redis, prefix: system.env.config.QUEUE_PREFIX });
    expect(await payments.getJobCounts('failed')).toEqual({ failed: 0 });
    expect(await system.workers.deps.queues.deadLetter.count()).toBe(0);

    // the payment system recovers
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { failureRate: 0 } });
    await Promise.all(orderIds.map((id) => system.waitForStatus(id, 'IN_FULFILLMENT', 20_000)));
    await waitFor(async () => (await breakerState()) === 0, { what: 'the payment breaker to close' });

    const recorded = (await system.paymentSim.request('GET', '/__admin/payments')).body.payments as Array<{ orderId: string; charges: number; status: string }>;
    expect(recorded).toHaveLength(6);
    expect(recorded.every((p) => p.charges === 1 && p.status === 'SUCCEEDED')).toBe(true);
    expect(new Set(recorded.map((p) => p.orderId))).toEqual(new Set(orderIds));
    const rows = await system.env.db.selectFrom('payments').select(['order_id', 'status']).execute();
    expect(rows.filter((r) => r.status === 'SUCCEEDED')).toHaveLength(6);
    expect(await payments.getJobCounts('failed')).toEqual({ failed: 0 });
    await payments.close();
  });
});

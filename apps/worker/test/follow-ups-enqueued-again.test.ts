import { loadConfig } from '@orders/config';
import { JOB } from '@orders/queues';
import { buyerAddress } from '@orders/testing';
import { connectWorker, startWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A request whose step committed, but whose answer was lost, and with it perhaps its follow-up
 * jobs (the api died, or Redis failed, between the commit and the enqueue; the client saw a 5xx),
 * and which the client sends again: the repeat changes nothing and enqueues them again, as a
 * repeated callback does. Nothing else would: the warehouse would ship refunded units, or to the
 * old address, and an order paid with nothing to collect would never be handed over.
 */
describe('a request sent again after its answer was lost', () => {
  let system: OrderSystem;
  const buyer = 'rosa';

  beforeAll(async () => {
    // the warehouse's jobs (settle, hand-over, updates) run only while a test starts their worker
    system = await startOrderSystem('follow_ups_enqueued_again', { WORKER_QUEUES: 'orders,timers,payments' });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 700, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    const coupon = { code: 'FREE', kind: 'percent', percentOff: 100, minSpendCents: 0, perBuyerLimit: 5, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
  });
  afterAll(async () => system?.close());

  const fulfillment = () => system.workers.deps.queues.fulfillment;
  /** The order's jobs of this name waiting for the warehouse's worker. */
  const waitingJobs = async (orderId: string, name: string) => (await fulfillment().getJobs(['waiting', 'prioritized', 'delayed'])).filter((job) => job.name === name && job.data.orderId === orderId);
  /** As if the api had died before enqueueing them: the order's waiting jobs of this name are gone. */
  const lose = async (orderId: string, name: string) => {
    const jobs = await waitingJobs(orderId, name);
    expect(jobs).toHaveLength(1);
    await Promise.all(jobs.map((job) => job.remove()));
  };
  /** Runs the warehouse's worker until `done` holds. */
  const withWarehouseWorker = async <T>(done: () => Promise<T>): Promise<T> => {
    const workers = startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
    try {
      return await done();
    } finally {
      await workers.close();
    }
  };
  const atWarehouse = async (orderId: string) => ((await system.warehouseSim.request('GET', '/__admin/orders')).body.orders as Array<{ orderId: string; items: unknown; address: { line1: string }; changes: number }>).find((o) => o.orderId === orderId);
  const paid = async (qty: number, { couponCode, rugs = 0 }: { couponCode?: string; rugs?: number } = {}) => {
    const items = [{ skuId: 'LAMP', qty }, ...(rugs > 0 ? [{ skuId: 'RUG', qty: rugs }] : [])];
    const answer = await system.request('POST', '/v1/orders', {
      token: system.token(buyer),
      headers: { 'idempotency-key': `${buyer}-${Math.random()}` },
      body: { items, address: buyerAddress, ...(couponCode ? { couponCode } : {}) },
    });
    expect(answer.status).toBe(202);
    const orderId = answer.body.orderId as string;
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'PAID');
    return orderId;
  };
  const inFulfilment = async (qty: number) => {
    const orderId = await paid(qty);
    await withWarehouseWorker(() => system.waitForStatus(orderId, 'IN_FULFILLMENT'));
    return orderId;
  };
  const eventually = <T>(check: () => Promise<T>) => expect.poll(check, { timeout: 15_000, interval: 50 });

  it('a refund sent again tells the warehouse to ship one lamp of two', async () => {
    const orderId = await inFulfilment(2);
    const refund = () => system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), body: { reason: 'one is enough', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect((await refund()).status).toBe(202);
    await lose(orderId, JOB.updateFulfilment);
    expect((await refund()).status).toBe(202);
    await withWarehouseWorker(() => eventually(async () => (await atWarehouse(orderId))?.items).toEqual([{ skuId: 'LAMP', qty: 1 }]));
  });

  it('an address change sent again tells the warehouse the new address', async () => {
    const orderId = await inFulfilment(1);
    const address = { ...buyerAddress, line1: '9 New Street' };
    const change = () => system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token(buyer), body: { address } });
    expect((await change()).status).toBe(200);
    await lose(orderId, JOB.updateFulfilment);
    expect((await change()).status).toBe(200);
    await withWarehouseWorker(() => eventually(async () => (await atWarehouse(orderId))?.address.line1).toBe('9 New Street'));
  });

  it('a payment of nothing sent again hands the order to the warehouse', async () => {
    const orderId = await paid(1, { couponCode: 'FREE' });
    await lose(orderId, JOB.settlePayment);
    const again = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    expect([again.status, again.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    await withWarehouseWorker(() => system.waitForStatus(orderId, 'IN_FULFILLMENT'));
  });

  it('a payment callback sent again after a refund of some units hands the order to the warehouse: its settle job had been lost', async () => {
    const orderId = await paid(2);
    await lose(orderId, JOB.settlePayment);
    // a step after the payment's: the order's last step is now the refund's, whose jobs are not the payment's
    const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), body: { reason: 'one is enough', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(refund.status).toBe(202);
    const payment = await system.env.db.selectFrom('payments').selectAll().where('order_id', '=', orderId).where('status', '=', 'SUCCEEDED').executeTakeFirstOrThrow();
    const callback = { orderId, paymentId: payment.payment_id, transactionId: payment.transaction_id, status: 'SUCCEEDED', amountCents: Number(payment.amount_cents), at: payment.paid_at!.toISOString() };
    const again = await system.signedCallback('payment', callback);
    expect([again.status, again.body.changed]).toEqual([200, false]);
    await withWarehouseWorker(async () => {
      await system.waitForStatus(orderId, 'IN_FULFILLMENT');
      await eventually(async () => (await atWarehouse(orderId))?.items).toEqual([{ skuId: 'LAMP', qty: 1 }]);
    });
  });

  it('a refund sent again after the order split answers the refund it opened, not another of the same units', async () => {
    const orderId = await paid(2, { rugs: 1 });
    const refund = () => system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), body: { reason: 'two lamps are too many', items: [{ skuId: 'LAMP', qty: 1 }] } });
    const first = await refund();
    expect([first.status, first.body.replayed]).toEqual([202, false]);
    // the warehouse's worker splits the order (a lamp and a rug, two warehouses) before the refund is sent again
    await withWarehouseWorker(() => eventually(async () => (await system.order(orderId)).subOrders.length).toBe(2));
    const again = await refund();
    expect([again.status, again.body.replayed, again.body.refundId]).toEqual([202, true, first.body.refundId]);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer) })).body.items).toHaveLength(1);
    await eventually(async () => (await system.order(orderId)).amounts.refundedCents).toBe(2_400);
  });
});

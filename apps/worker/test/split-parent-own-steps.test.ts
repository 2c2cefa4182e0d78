// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { enqueueRefundPayments } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * Once split, an order's status is its children's: the steps its history takes from them
 * (derived) are theirs, as are the refunds they open. Only a refund opened before the split
 * is the parent's own. The fulfillment queue is served only once a test asks for it, so a
 * refund can land before the split; a refund the payment system cannot take now waits
 * EXTERNAL_RETRY_DELAY_MS (the breaker stays closed) before its job asks again.
 */
describe('a split order acts on its own steps only, never on those it derives from its children', () => {
  let system: OrderSystem;
  let fulfilment: RunningWorkers | undefined;

  beforeAll(async () => {
    system = await startOrderSystem('split_parent_own_steps', { WORKER_QUEUES: 'orders,timers,payments', EXTERNAL_RETRY_DELAY_MS: '3000', PAYMENT_BREAKER_VOLUME_THRESHOLD: '1000' });
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 400, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-north', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 700, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    await fulfilment?.close();
    await system?.close();
  });

  const paymentSystemDown = async (outage: boolean) => expect((await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage } })).status).toBe(200);
  const chargeOf = async (orderId: string) => {
    const { payments, refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    const [charge] = payments.filter((p: any) => p.orderId === orderId);
    return { charge, refunds: refunds.filter((r: any) => r.paymentId === charge.paymentId).map((r: any) => [r.refundId, r.amountCents]) };
  };
  const serveFulfilment = () => {
    fulfilment ??= startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
  };
  const childrenOnceSplit = async (orderId: string, inFulfilment: number) => {
    const children = (await waitFor(
      async () => {
        const order = await system.order(orderId);
        const subs = await Promise.all(order.subOrders.map((id: string) => system.order(id)));
        return subs.length === 3 && subs.filter((s) => s.status === 'IN_FULFILLMENT').length === inFulfilment && subs;
      },
      { what: `order ${orderId} split, ${inFulfilment} children in fulfilment`, timeoutMs: 15_000 },
    )) as any[];
    return ['LAMP', 'MUG', 'RUG'].map((sku) => children.find((c) => c.items[0].skuId === sku));
  };
  const paid = async (buyer: string) => {
    const orderId = await system.checkout(buyer, [{ skuId: 'LAMP', qty: 1 }, { skuId: 'MUG', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    // by its history: once the fulfilment queue is served, the order may be split before a look finds it PAID
    await waitFor(async () => (await system.order(orderId)).history.some((h: any) => h.to === 'PAID'), { what: `order ${orderId} paid`, timeoutMs: 15_000 });
    return orderId;
  };

  it("keeps the order REFUNDING while a child's refund is owed and another child is on its way, when the refund from before its split is confirmed", async () => {
    const ann = system.token('ann');
    const orderId = await paid('ann');
    const { charge } = await chargeOf(orderId);

    // the payment system goes down: no refund is paid back (nor confirmed) from here
    await paymentSystemDown(true);
    const lamp = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: ann, body: { reason: 'no lamp', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect([lamp.status, lamp.body.refunds.map((r: any) => [r.orderId, r.amountCents])]).toEqual([202, [[orderId, 1_000]]]);
    serveFulfilment();
    const [lampChild, mugChild, rugChild] = await childrenOnceSplit(orderId, 2);
    // every lamp refunded before the split, its money not back yet
    expect(lampChild.status).toBe('REFUNDING');

    // the rug's merchant cancels its part: its 700 is owed while the payment system is down, the mug still ships
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('weaver', 'merchant'), body: { reason: 'out of rugs' } })).status).toBe(200);
    expect([(await system.order(rugChild.orderId)).status, (await system.order(orderId)).status]).toEqual(['REFUNDING', 'REFUNDING']);

    // the payment system confirms the lamp's refund, opened on the order before its split
    const [lampRefund] = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: ann })).body.items.filter((r: any) => r.orderId === orderId);
    const [part] = lampRefund.parts;
    const confirmed = await system.signedCallback('payment', {
      orderId,
      paymentId: charge.paymentId,
      refundId: part.partId,
      transactionId: `rfd_${part.partId}`,
      status: 'SUCCEEDED',
      amountCents: part.amountCents,
      at: new Date().toISOString(),
    });
    expect(confirmed.status).toBe(200);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: ann })).body.items.find((r: any) => r.refundId === lampRefund.refundId).status).toBe('SUCCEEDED');

    // the lamp's child closes; the rug's 700 is still owed and the mug is on its way: the order is not closed
    const order = await system.order(orderId);
    expect([order.status, ...(await Promise.all([lampChild, mugChild, rugChild].map(async (child) => (await system.order(child.orderId)).status)))]).toEqual([
      'REFUNDING',
      'REFUNDED',
      'IN_FULFILLMENT',
      'REFUNDING',
    ]);
    expect(order.history.filter((h: any) => !h.detail?.startsWith('derived from child')).map((h: any) => h.action)).not.toContain('refund_succeeded');

    // once the payment system is back the rug's refund is paid, and the order reads as its mug does
    await paymentSystemDown(false);
    await system.waitForStatus(rugChild.orderId, 'REFUNDED', 30_000);
    expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');
  });

  it("gives back only the cancelled child's 700 of a 2,100 payment when the payment system sends the payment's callback again after that cancel", async () => {
    const orderId = await paid('bob');
    serveFulfilment();
    const [, , rugChild] = await childrenOnceSplit(orderId, 3);
    const { charge } = await chargeOf(orderId);
    expect(charge.amountCents).toBe(2_100);

    // the rug's merchant cancels its part while the payment system is down: its refund waits 3 s before asking again
    await paymentSystemDown(true);
    const { queues } = system.workers.deps;
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('weaver', 'merchant'), body: { reason: 'out of rugs' } })).status).toBe(200);
    await waitFor(async () => (await queues.payments.getDelayedCount()) === 1, { what: "the rug's refund job waiting for the payment system" });
    await paymentSystemDown(false);

    // the payment system delivers the payment's callback again (it never saw our answer): nothing of the order changes
    const again = await system.signedCallback('payment', { orderId, paymentId: charge.paymentId, transactionId: charge.transactionId, status: 'SUCCEEDED', amountCents: 2_100, at: charge.at });
    expect([again.status, again.body.changed]).toEqual([200, false]);

    // the rug's 700 goes back, and nothing more: the lamp and the mug are still on their way
    await waitFor(async () => (await chargeOf(orderId)).charge.refundedCents > 0, { what: 'money given back', timeoutMs: 15_000 });
    const { charge: after, refunds } = await chargeOf(orderId);
    expect([after.refundedCents, refunds]).toEqual([700, [[`${rugChild.orderId}-cancel`, 700]]]);
    await system.waitForStatus(rugChild.orderId, 'REFUNDED', 30_000);
    await waitFor(async () => Object.values(await queues.payments.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).every((count) => count === 0), { what: 'no payment job left' });
    expect((await chargeOf(orderId)).charge.refundedCents).toBe(700);
    expect((await system.order(orderId)).amounts.refundedCents).toBe(700);
    expect(await queues.deadLetter.count()).toBe(0);
  });

  it('refuses to give a split order\'s payment back whole: a refund job for the order itself (no refund order of its own) goes to the dead letters, nothing paid back', async () => {
    const orderId = await paid('cy');
    serveFulfilment();
    await childrenOnceSplit(orderId, 3);
    const { queues } = system.workers.deps;

    // what a derived step once enqueued for the order (a child's cancel copied onto it): its refund job, as an unsplit order's
    await enqueueRefundPayments(queues, orderId);
    const letter = (await waitFor(async () => (await queues.deadLetter.getJobs(['waiting', 'delayed', 'prioritized'])).find((job) => (job.data.data as { orderId?: string }).orderId === orderId), {
      what: 'the refund job in the dead letters',
      timeoutMs: 15_000,
    }))!;
    expect(letter.data.failedReason).toBe(`order ${orderId} is split: its payments are not given back whole (a child's refund order gives back its share)`);
    expect((await chargeOf(orderId)).charge.refundedCents).toBe(0);
    expect([(await system.order(orderId)).status, (await system.order(orderId)).amounts.refundedCents]).toEqual(['IN_FULFILLMENT', 0]);
  });
});

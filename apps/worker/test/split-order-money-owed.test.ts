// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/** the after-sales window: a child delivered completes on its own this long after */
const WINDOW_MS = 2_000;

/**
 * A split order (LAMP from shop's wh-east, RUG from weaver's wh-west) whose buyer is owed money
 * the payment system declined to pay back: neither the order nor a child of it reads closed
 * until an admin asks again and the payment system pays. The fulfillment queue is served only
 * where a test says so, so a refund asked right after the payment comes before the split.
 */
describe('a split order whose buyer is still owed a refund the payment system declined', () => {
  let system: OrderSystem;
  let fulfilment: RunningWorkers | undefined;
  let admin: string;

  const serveFulfilment = () => (fulfilment ??= startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' }))));
  const refundsOf = async (orderId: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: admin })).body.items;
  const declineRefunds = async (declined: boolean) => system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: declined } });

  /** The buyer's paid order of `items`, one lamp refunded while it is unsplit and that refund declined by the payment system. */
  async function paidThenLampDeclined(buyer: string, items: Array<{ skuId: string; qty: number }>): Promise<{ orderId: string; refundId: string }> {
    const orderId = await system.checkout(buyer, items);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'PAID');
    await declineRefunds(true);
    const lamp = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), body: { reason: 'no lamp', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(lamp.status).toBe(202);
    await waitFor(async () => (await refundsOf(orderId))[0]?.parts?.[0]?.status === 'FAILED', { what: `the lamp refund of order ${orderId} declined`, timeoutMs: 15_000 });
    await declineRefunds(false);
    return { orderId, refundId: lamp.body.refunds[0].refundId };
  }

  /** The order's children once split and each where `ready` says. */
  async function splitInto(orderId: string, ready: (child: any) => boolean): Promise<any[]> {
    return (await waitFor(
      async () => {
        const subs = await Promise.all((await system.order(orderId)).subOrders.map((id: string) => system.order(id)));
        return subs.length === 2 && subs.every(ready) && subs;
      },
      { what: `order ${orderId} split`, timeoutMs: 15_000 },
    )) as any[];
  }

  const askAgain = async (orderId: string, refundId: string) => {
    const asked = await system.request('POST', `/v1/orders/${orderId}/refunds/${refundId}/ask-again`, { token: admin, body: {} });
    expect(asked.status).toBe(200);
  };

  beforeAll(async () => {
    system = await startOrderSystem('split_order_money_owed', { WORKER_QUEUES: 'orders,timers,payments', AFTER_SALES_WINDOW_MS: String(WINDOW_MS), REFUND_CONFIRMATION_WAIT_MS: '60000' });
    admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 700, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    await fulfilment?.close();
    await system?.close();
  });

  it('starts the child whose whole parcel was refunded before the split REFUNDING while that refund is owed, and REFUNDED once it is paid', async () => {
    const { orderId, refundId } = await paidThenLampDeclined('bo', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    serveFulfilment();
    const children = await splitInto(orderId, (child) => child.items[0].skuId === 'LAMP' || child.status === 'IN_FULFILLMENT');
    // the split of the next order waits for its refund
    await fulfilment?.close();
    fulfilment = undefined;
    const [lampChild, rugChild] = ['LAMP', 'RUG'].map((sku) => children.find((c) => c.items[0].skuId === sku));
    expect((await refundsOf(orderId)).map((r: any) => [r.orderId, r.parts.map((p: any) => p.status)])).toEqual([[orderId, ['FAILED']]]);
    expect([lampChild.status, lampChild.history.map((h: any) => [h.action, h.to])]).toEqual(['REFUNDING', [['split', 'REFUNDING']]]);
    expect((await system.order(orderId)).status).toBe('REFUNDING');

    await askAgain(orderId, refundId);
    await system.waitForStatus(lampChild.orderId, 'REFUNDED', 20_000);
    // nothing owed any more: the order reads as its rug, at its warehouse
    expect((await system.waitForStatus(orderId, 'IN_FULFILLMENT')).status).toBe(rugChild.status);
  });

  it('reads REFUNDING, not REFUNDED, while its own refund from before the split is owed once both children are refunded, and REFUNDED once it is paid', async () => {
    const { orderId, refundId } = await paidThenLampDeclined('ann', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'RUG', qty: 1 }]);
    serveFulfilment();
    const children = await splitInto(orderId, (child) => child.status === 'IN_FULFILLMENT');
    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ann'), body: { reason: 'changed my mind' } });
    expect(cancel.status).toBe(200);
    for (const child of children) await system.waitForStatus(child.orderId, 'REFUNDED', 20_000);
    const owed = (await refundsOf(orderId)).filter((r: any) => r.status !== 'SUCCEEDED');
    expect(owed.map((r: any) => [r.orderId, r.parts.map((p: any) => p.status)])).toEqual([[orderId, ['FAILED']]]);
    expect((await system.order(orderId)).status).toBe('REFUNDING');

    await askAgain(orderId, refundId);
    const closed = await system.waitForStatus(orderId, 'REFUNDED', 20_000);
    expect(closed.history.at(-1)).toMatchObject({ action: 'refund_succeeded', from: 'REFUNDING', to: 'REFUNDED', actor: 'payment' });
  });

  it('does not complete while the money of a return received is owed, and completes once it is paid', async () => {
    const bea = system.token('bea');
    serveFulfilment();
    const orderId = await system.checkout('bea', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: bea, body: { method: 'card' } })).status).toBe(202);
    const children = await splitInto(orderId, (child) => child.status === 'IN_FULFILLMENT');
    for (const child of children) {
      for (const event of ['SHIPPED', 'DELIVERED']) {
        expect((await system.warehouseSim.request('POST', `/__admin/orders/${child.orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
      }
    }
    const [lampChild, rugChild] = ['LAMP', 'RUG'].map((sku) => children.find((c) => c.items[0].skuId === sku));
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: bea, body: { reason: 'too dim', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    const approved = await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/approve`, { token: system.token('shop', 'merchant') });
    expect(approved.status).toBe(200);
    await system.waitForStatus(rugChild.orderId, 'COMPLETED', 20_000);
    await system.waitForStatus(orderId, 'RETURNING');

    await declineRefunds(true);
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${lampChild.orderId}/events`, { body: { event: 'RETURN_RECEIVED' } })).body.callbackStatus).toBe(200);
    const declined = await waitFor(
      async () => {
        const lampReturn = (await refundsOf(orderId)).find((r: any) => r.refundId === asked.body.returnId);
        return lampReturn?.parts?.[0]?.status === 'FAILED' && lampReturn;
      },
      { what: 'the return declined', timeoutMs: 15_000 },
    );
    await declineRefunds(false);
    expect((await system.order(lampChild.orderId)).status).toBe('RETURNED');
    // both children closed, the lamp's money still owed: after-sales, not completed
    expect((await system.order(orderId)).status).toBe('REFUNDING');

    await askAgain(declined.orderId, declined.refundId);
    const completed = await system.waitForStatus(orderId, 'COMPLETED', 20_000);
    // one COMPLETED of the order, once paid back: a loyalty system awards its points once
    expect(completed.history.filter((h: any) => h.to === 'COMPLETED').map((h: any) => [h.from, h.action, h.actor])).toEqual([['REFUNDING', 'refund_succeeded', 'payment']]);
  });
});

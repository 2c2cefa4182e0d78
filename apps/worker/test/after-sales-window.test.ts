// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { loadConfig } from '@orders/config';
import { waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const WINDOW_MS = 3_000;
/** the time the shop has to review a return, and the grace a refusal near the window's end leaves the buyer */
const REVIEW_MS = 2_000;
/** how often an order whose completion a refund owed holds looks again */
const REFUND_LOOKED_AT_EVERY_MS = 4_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const refundsOf = async (system: OrderSystem, orderId: string, buyer: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer) })).body.items;

/** The order's refund that `open` opens while the payment system declines every refund (the buyer's card blocked), once declined. */
async function declinedRefund(system: OrderSystem, orderId: string, buyer: string, open: () => Promise<void>): Promise<any> {
  await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: true } });
  try {
    await open();
    const [declined] = await waitFor(
      async () => {
        const listed = await refundsOf(system, orderId, buyer);
        return listed[0]?.parts[0]?.status === 'FAILED' && listed;
      },
      { what: `a refund of order ${orderId} declined` },
    );
    return declined;
  } finally {
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
  }
}

describe('the after-sales window', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('after_sales_window', { AFTER_SALES_WINDOW_MS: String(WINDOW_MS), RETURN_REVIEW_WINDOW_MS: String(REVIEW_MS), REFUND_CONFIRMATION_WAIT_MS: String(REFUND_LOOKED_AT_EVERY_MS) });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('does not start again when a return is refused: the order completes at the first deadline, not a whole window after the refusal', async () => {
    const orderId = await system.checkout('lou', [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('lou'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
    // the order says when it completes by itself: a window after its delivery
    const stepAt = (order: any, action: string) => Date.parse(order.history.findLast((h: any) => h.action === action).at);
    const delivered = await system.order(orderId);
    expect(delivered.nextTimer).toEqual({ action: 'complete', dueAt: new Date(stepAt(delivered, 'deliver') + WINDOW_MS).toISOString(), refundsOwed: [] });
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('lou'), body: { reason: 'too dim', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    // under review: approved by the system once RETURN_REVIEW_WINDOW_MS has passed
    const requested = await system.order(orderId);
    expect(requested.nextTimer).toEqual({ action: 'approve_return', dueAt: new Date(stepAt(requested, 'request_return') + REVIEW_MS).toISOString() });
    // a moment later the merchant refuses: the buyer gets back what was left of the delivery's window, not a whole new
    // one (before, a whole window from each refusal let returns never sent keep the order open for ever)
    await sleep(WINDOW_MS / 6);
    const refused = await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/refuse`, { token: system.token('shop', 'merchant') });
    expect([refused.status, refused.body.status]).toEqual([200, 'REFUSED']);
    const again = await system.order(orderId);
    // the window's end, or the grace after the refusal where a loaded box made that come later
    const dueAt = Math.max(stepAt(again, 'deliver') + WINDOW_MS, stepAt(again, 'refuse_return') + REVIEW_MS);
    expect(again.nextTimer).toEqual({ action: 'complete', dueAt: new Date(dueAt).toISOString(), refundsOwed: [] });

    const completed = await system.waitForStatus(orderId, 'COMPLETED', 20_000);
    expect(stepAt(completed, 'complete') - stepAt(completed, 'deliver')).toBeGreaterThanOrEqual(WINDOW_MS);
    expect(stepAt(completed, 'complete') - stepAt(completed, 'refuse_return')).toBeLessThan(WINDOW_MS);
    expect(completed.nextTimer).toBeNull();
  });

  it('holds the completion while the buyer is still owed a refund the payment system declined, and completes once an admin settles it', async () => {
    const orderId = await system.shipped('ned', [{ skuId: 'LAMP', qty: 2 }]);
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'DELIVERED' } })).body.callbackStatus).toBe(200);
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('ned'), body: { reason: 'one too many', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/approve`, { token: system.token('shop', 'merchant') });
    // the buyer's card is blocked: the payment system declines the lamp's money back
    const declined = await declinedRefund(system, orderId, 'ned', async () => {
      expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'RETURN_RECEIVED' } })).body.callbackStatus).toBe(200);
    });
    const delivered = await system.order(orderId);
    const deliveredAgainAt = Date.parse(delivered.history.findLast((h: any) => h.action === 'receive_partial_return').at);
    expect(delivered.status).toBe('DELIVERED');

    // the window has closed, and its timer has looked (a whole window at most after the return's receipt, then its deadline)
    await sleep(deliveredAgainAt + 2 * WINDOW_MS + 1_000 - Date.now());
    // the order says what its completion, due a while ago, waits for
    const held = await system.order(orderId);
    expect(held.status).toBe('DELIVERED');
    expect(held.nextTimer).toEqual({ action: 'complete', dueAt: new Date(deliveredAgainAt + WINDOW_MS).toISOString(), refundsOwed: [declined.refundId] });
    expect(Date.parse(held.nextTimer.dueAt)).toBeLessThan(Date.now());
    // the operators' gauge of money still owed after a decline says so until it is settled
    const owed = async () => Number(/^refunds_declined_owed\{[^}]*\} (\S+)$/m.exec(await system.workers.deps.metrics.exposition())?.[1]);
    await expect.poll(owed).toBe(1);
    const settledAt = Date.now();
    const settled = await system.request('POST', `/v1/orders/${orderId}/refunds/${declined.refundId}/settle-by-hand`, { token: system.token('ops', 'admin'), body: { reference: 'SEPA-0077' } });
    expect(settled.status).toBe(200);
    await expect.poll(owed).toBe(0);
    const completed = await system.waitForStatus(orderId, 'COMPLETED', REFUND_LOOKED_AT_EVERY_MS + 10_000);
    expect(Date.parse(completed.history.findLast((h: any) => h.action === 'complete').at)).toBeGreaterThanOrEqual(settledAt - 1_000);
    expect((await refundsOf(system, orderId, 'ned'))[0].status).toBe('SUCCEEDED');
  });

  it('holds the completion while a second payment the order could not take waits to go back, the payment system declining it', async () => {
    const orderId = await system.checkout('dee', [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const pay = async () => (await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('dee'), body: { method: 'card' } })).body.paymentId as string;
    // the payment system is slow: the first attempt reads failed early, and is then taken all the same beside the second
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 1_500 } });
    let first: string, second: string;
    try {
      first = await pay();
      await system.paymentRequested(first);
      await system.signedCallback('payment', { orderId, paymentId: first, transactionId: 'tx-early-failure', status: 'FAILED', amountCents: 2_400, at: new Date().toISOString() });
      second = await pay();
      await system.paymentRequested(second);
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: true } });
      await system.waitForStatus(orderId, 'IN_FULFILLMENT', 20_000);
      await waitFor(async () => ((await system.paymentSim.request('GET', '/__admin/payments')).body.declined as unknown[]).length > 0, { what: "the second payment's refund declined", timeoutMs: 20_000 });
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
    try {
      for (const event of ['SHIPPED', 'DELIVERED']) expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
      const deliveredAt = Date.parse((await system.order(orderId)).history.findLast((h: any) => h.action === 'deliver').at);
      await sleep(deliveredAt + WINDOW_MS + 1_500 - Date.now());
      // the one of the two that did not pay the order is owed back
      const held = await system.order(orderId);
      expect([held.status, held.nextTimer.refundsOwed.length]).toEqual(['DELIVERED', 1]);
      expect([`${first}-refund`, `${second}-refund`]).toContain(held.nextTimer.refundsOwed[0]);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    }
  });

  it('says what happens by itself next while the order waits for its buyer: expiry unpaid at the payment deadline, receipt confirmed AUTO_CONFIRM_MS after shipping', async () => {
    const orderId = await system.checkout('meg', [{ skuId: 'LAMP', qty: 1 }]);
    const unpaid = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect(unpaid.nextTimer).toEqual({ action: 'expire', dueAt: unpaid.paymentDeadline });
    // a new address leaves the deadline as it was
    const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('meg'), body: { address: { ...unpaid.address, line1: '2 New Street' } } });
    expect([moved.status, moved.body.nextTimer]).toEqual([200, { action: 'expire', dueAt: unpaid.paymentDeadline }]);
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('meg'), body: { method: 'card' } });
    const handedOver = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the warehouse has it: nothing moves the order on by itself
    expect(handedOver.nextTimer).toBeNull();
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } })).body.callbackStatus).toBe(200);
    const shipped = await system.order(orderId);
    const shippedAt = Date.parse(shipped.history.findLast((h: any) => h.action === 'ship').at);
    expect(shipped.nextTimer).toEqual({ action: 'auto_confirm', dueAt: new Date(shippedAt + system.env.config.AUTO_CONFIRM_MS).toISOString() });
  });
});

/**
 * A refund of a whole parcel opened before the order was split, declined by the payment system: it
 * is the order's, and the child that ships the rest completes only once it is paid back. The
 * fulfillment queue is served only after the refund, so the split comes after it.
 */
describe("the after-sales window of a split order's child, while a refund from before the split is owed", () => {
  let system: OrderSystem;
  let fulfilment: RunningWorkers | undefined;

  beforeAll(async () => {
    system = await startOrderSystem('after_sales_window_split', {
      AFTER_SALES_WINDOW_MS: String(WINDOW_MS),
      REFUND_CONFIRMATION_WAIT_MS: String(REFUND_LOOKED_AT_EVERY_MS),
      WORKER_QUEUES: 'orders,timers,payments',
    });
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 700, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await fulfilment?.close();
    await system?.close();
  });

  it('holds the completion of the child that shipped until the refund declined before the split is settled', async () => {
    const orderId = await system.checkout('ada', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'RUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ada'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'PAID');
    const declined = await declinedRefund(system, orderId, 'ada', async () => {
      const lamp = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ada'), body: { reason: 'no lamp', items: [{ skuId: 'LAMP', qty: 1 }] } });
      expect(lamp.status).toBe(202);
    });

    fulfilment = startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
    const rugChild = await waitFor(
      async () => {
        const children = await Promise.all((await system.order(orderId)).subOrders.map((id: string) => system.order(id)));
        return children.find((child) => child.items[0].skuId === 'RUG' && child.status === 'IN_FULFILLMENT');
      },
      { what: `order ${orderId} split, its rug in fulfilment`, timeoutMs: 15_000 },
    );
    for (const event of ['SHIPPED', 'DELIVERED']) expect((await system.warehouseSim.request('POST', `/__admin/orders/${rugChild.orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
    const delivered = await system.order(rugChild.orderId);
    const deliveredAt = Date.parse(delivered.history.findLast((h: any) => h.action === 'deliver').at);

    await sleep(deliveredAt + WINDOW_MS + 2_000 - Date.now());
    // the child names its order's refund as what holds it
    const held = await system.order(rugChild.orderId);
    expect([held.status, held.nextTimer.refundsOwed]).toEqual(['DELIVERED', [declined.refundId]]);
    // the rug's merchant is not told of a refund of the shop's lamp: the child's due time, nothing it cannot read
    const asWeaver = await system.request('GET', `/v1/orders/${rugChild.orderId}`, { token: system.token('weaver', 'merchant') });
    expect([asWeaver.status, asWeaver.body.nextTimer]).toEqual([200, { ...held.nextTimer, refundsOwed: [] }]);
    const settledAt = Date.now();
    const settled = await system.request('POST', `/v1/orders/${orderId}/refunds/${declined.refundId}/settle-by-hand`, { token: system.token('ops', 'admin'), body: { reference: 'SEPA-0078' } });
    expect(settled.status).toBe(200);
    expect((await system.order(rugChild.orderId)).nextTimer.refundsOwed).toEqual([]);
    const completed = await system.waitForStatus(rugChild.orderId, 'COMPLETED', REFUND_LOOKED_AT_EVERY_MS + 10_000);
    expect(Date.parse(completed.history.findLast((h: any) => h.action === 'complete').at)).toBeGreaterThanOrEqual(settledAt - 1_000);
  });
});

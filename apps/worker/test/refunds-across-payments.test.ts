// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { enqueuePersistOrder } from '@orders/queues';
import { buyerAddress, ledgerAvailable, waitFor } from '@orders/testing';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * Refunds of an order paid in several payments (a presale: deposit, then balance),
 * a refund job that failed for good, and a cancel that overtakes the settle job; over
 * the real payment simulator, which refuses to refund more than a payment took.
 */
describe('refunds drawn across the payments of an order', () => {
  let system: OrderSystem;
  let admin: string;

  beforeAll(async () => {
    system = await startOrderSystem('refunds_across_payments', {
      PRESALE_DEPOSIT_PERCENT: '60',
      PRESALE_BALANCE_TIMEOUT_MS: '600000',
      // a refund the payment system refuses fails for good after 2 attempts
      JOB_ATTEMPTS: '2',
      JOB_BACKOFF_MS: '50',
    });
    admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'CONSOLE', priceCents: 50_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'SPEAKER', priceCents: 30_000, merchantId: 'weaver', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const stock = async (skuId: string) => (await system.request('GET', `/v1/admin/skus/${skuId}`, { token: admin })).body.stock;
  const atPaymentSystem = async () => (await system.paymentSim.request('GET', '/__admin/payments')).body as { payments: any[]; refunds: any[] };
  const pay = async (buyer: string, orderId: string) => {
    const answer = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    expect(answer.status).toBe(202);
    return answer.body;
  };

  /** A presale reserved in Redis as the intake does and persisted by the worker (checkout itself takes standard and flash-sale orders only). */
  async function paidPresale(buyer: string, items: Array<{ skuId: string; qty: number }>, paid: { deposit: number; balance: number }): Promise<string> {
    const { inventory, queues } = system.workers.deps;
    const { order } = await inventory.reserveStock({
      orderId: ulid(),
      userId: buyer,
      idempotencyKey: `${buyer}-presale`,
      bodyHash: `${buyer}-presale`,
      requestedType: null,
      items,
      payload: { address: buyerAddress, couponCode: null },
      now: new Date(),
    });
    await enqueuePersistOrder(queues, { ...order, type: 'presale' });
    await system.waitForStatus(order.orderId, 'PENDING_DEPOSIT');
    expect(await pay(buyer, order.orderId)).toMatchObject({ purpose: 'deposit', amountCents: paid.deposit });
    await system.waitForStatus(order.orderId, 'DEPOSIT_PAID');
    expect(await pay(buyer, order.orderId)).toMatchObject({ purpose: 'balance', amountCents: paid.balance });
    await system.waitForStatus(order.orderId, 'IN_FULFILLMENT');
    return order.orderId;
  }

  it('cancels a 50,000 presale paid 30,000 + 20,000 by refunding each payment in full, one refund per payment, and closes it', async () => {
    const orderId = await paidPresale('ivy', [{ skuId: 'CONSOLE', qty: 1 }], { deposit: 30_000, balance: 20_000 });
    expect(await stock('CONSOLE')).toEqual({ available: 9, reserved: 0, sold: 1 });

    const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ivy'), body: { reason: 'bought it elsewhere' } });
    expect([cancel.status, cancel.body.status]).toEqual([200, 'REFUNDING']);
    const refunded = await system.waitForStatus(orderId, 'REFUNDED');
    expect(refunded.amounts).toMatchObject({ payableCents: 50_000, refundedCents: 50_000 });

    // the balance first, then the deposit, each under an id derived from the refund's
    const sim = await atPaymentSystem();
    const payments = sim.payments.filter((p) => p.orderId === orderId);
    expect(payments.map((p) => [p.amountCents, p.refundedCents])).toEqual([
      [30_000, 30_000],
      [20_000, 20_000],
    ]);
    const [deposit, balance] = payments;
    expect(sim.refunds.filter((r) => r.paymentId === balance.paymentId || r.paymentId === deposit.paymentId).map((r) => [r.refundId, r.paymentId, r.amountCents])).toEqual([
      [`${orderId}-cancel`, balance.paymentId, 20_000],
      [`${orderId}-cancel-2`, deposit.paymentId, 30_000],
    ]);
    const [refund] = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ivy') })).body.items;
    expect([refund.status, refund.amountCents]).toEqual(['SUCCEEDED', 50_000]);
    expect(refund.parts.map((p: any) => [p.paymentId, p.amountCents, p.status])).toEqual([
      [balance.paymentId, 20_000, 'SUCCEEDED'],
      [deposit.paymentId, 30_000, 'SUCCEEDED'],
    ]);
    expect(await stock('CONSOLE')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect(await ledgerAvailable(system.env.db, 'CONSOLE')).toBe(10);
    expect(await system.workers.deps.queues.deadLetter.count()).toBe(0);
  });

  it('refunds one of two units (50,000) from the 40,000 balance and 10,000 of the deposit, then the other from what the deposit has left', async () => {
    const orderId = await paidPresale('jon', [{ skuId: 'CONSOLE', qty: 2 }], { deposit: 60_000, balance: 40_000 });
    const jon = system.token('jon');
    const first = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: jon, body: { reason: 'one is enough', items: [{ skuId: 'CONSOLE', qty: 1 }] } });
    expect([first.status, first.body.refunds[0].amountCents]).toEqual([202, 50_000]);
    await system.waitForRefund(orderId);
    const partly = await system.order(orderId);
    expect([partly.status, partly.amounts.refundedCents]).toEqual(['IN_FULFILLMENT', 50_000]);

    const second = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: jon, body: { reason: 'the other one too', items: [{ skuId: 'CONSOLE', qty: 1 }] } });
    expect([second.status, second.body.refunds[0].amountCents]).toEqual([202, 50_000]);
    const closed = await system.waitForStatus(orderId, 'REFUNDED');
    expect(closed.amounts.refundedCents).toBe(100_000);

    const sim = await atPaymentSystem();
    const [deposit, balance] = sim.payments.filter((p) => p.orderId === orderId);
    expect([deposit.amountCents, deposit.refundedCents, balance.amountCents, balance.refundedCents]).toEqual([60_000, 60_000, 40_000, 40_000]);
    const listed = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: jon })).body.items;
    expect(listed.map((r: any) => r.parts.map((p: any) => [p.paymentId, p.amountCents]))).toEqual([
      [
        [balance.paymentId, 40_000],
        [deposit.paymentId, 10_000],
      ],
      [[deposit.paymentId, 50_000]],
    ]);
    expect(await system.workers.deps.queues.deadLetter.count()).toBe(0);
  });

  it("refunds a split presale's two children cancelled by their merchants at the same moment from both payments, never more from one than it took", async () => {
    // 50,000 + 30,000 paid 48,000 + 32,000; whichever child goes first, the other draws what the balance has left, then the deposit
    const items = [{ skuId: 'CONSOLE', qty: 1 }, { skuId: 'SPEAKER', qty: 1 }];
    const orders = await Promise.all(['nia', 'ned', 'noa'].map((buyer) => paidPresale(buyer, items, { deposit: 48_000, balance: 32_000 })));
    const cancels = await Promise.all(
      orders.flatMap((orderId) => ['shop', 'weaver'].map((merchant) => system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(merchant, 'merchant'), body: { reason: 'out of stock' } }))),
    );
    expect(cancels.map((c) => c.status)).toEqual([200, 200, 200, 200, 200, 200]);
    for (const orderId of orders) {
      // what the two refunds draw from each payment, as an admin lists them: each payment once in full
      const refunds = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: admin })).body.items;
      const drawn = new Map<string, number>();
      for (const part of refunds.flatMap((r: any) => r.parts)) drawn.set(part.paymentId, (drawn.get(part.paymentId) ?? 0) + part.amountCents);
      expect([refunds.length, [...drawn.values()].sort((a, b) => a - b)]).toEqual([2, [32_000, 48_000]]);
      expect((await system.waitForStatus(orderId, 'REFUNDED')).amounts.refundedCents).toBe(80_000);
    }
    const paidBack = (await atPaymentSystem()).payments.filter((p) => orders.includes(p.orderId));
    expect(paidBack.map((p) => [p.amountCents, p.refundedCents]).sort((a, b) => a[0] - b[0])).toEqual([
      [32_000, 32_000],
      [32_000, 32_000],
      [32_000, 32_000],
      [48_000, 48_000],
      [48_000, 48_000],
      [48_000, 48_000],
    ]);
    expect(await system.workers.deps.queues.deadLetter.count()).toBe(0);
  });

  it('carries out a later refund of an order whose refund job failed every attempt', async () => {
    const orderId = await system.checkout('kim', [{ skuId: 'LAMP', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await pay('kim', orderId);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const kim = system.token('kim');
    const { db } = system.env;
    // the payment system refuses this refund for good: it names a payment it has never seen
    const [payment] = (await atPaymentSystem()).payments.filter((p) => p.orderId === orderId);
    const sabotage = async (refundId: string) => db.updateTable('refund_parts').set({ payment_id: 'pay-unknown-to-the-payment-system' }).where('refund_id', '=', refundId).execute();

    // the refund job waits behind a paused payments queue until the sabotage is in place
    const { payments } = system.workers.deps.queues;
    await payments.pause();
    let first;
    try {
      first = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: kim, body: { reason: 'one broke', items: [{ skuId: 'LAMP', qty: 1 }] } });
      expect(first.status).toBe(202);
      await sabotage(first.body.refundId);
    } finally {
      await payments.resume();
    }
    const dead = await waitFor(async () => (await system.workers.deps.queues.deadLetter.getJobs(['waiting'])).find((letter) => letter.data.data && (letter.data.data as any).orderId === orderId), {
      what: 'the refund job to fail every attempt',
      timeoutMs: 30_000,
    });
    expect(dead!.data).toMatchObject({ name: 'refund-payments', attemptsMade: 2 });
    // the refund part is put right (an operator's fix); then the buyer refunds the other lamp
    await db.updateTable('refund_parts').set({ payment_id: payment.paymentId }).where('refund_id', '=', first.body.refundId).execute();

    const second = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: kim, body: { reason: 'the other broke too', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(second.status).toBe(202);
    const closed = await system.waitForStatus(orderId, 'REFUNDED');
    expect(closed.amounts.refundedCents).toBe(4_800);
    const listed = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: kim })).body.items;
    expect(listed.map((r: any) => [r.status, r.amountCents])).toEqual([
      ['SUCCEEDED', 2_400],
      ['SUCCEEDED', 2_400],
    ]);
    expect((await atPaymentSystem()).payments.find((p) => p.orderId === orderId).refundedCents).toBe(4_800);
    await dead!.remove();
  });

  it('accepts a cancel sent right after the payment callback, before the settle job committed the stock, and keeps the stock exact', async () => {
    const { queues } = system.workers.deps;
    const before = await stock('LAMP');
    const orderId = await system.checkout('lea', [{ skuId: 'LAMP', qty: 3 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // the settle job waits behind a paused fulfilment queue: the cancel reaches the order first
    await queues.fulfillment.pause();
    try {
      await pay('lea', orderId);
      await system.waitForStatus(orderId, 'PAID');
      expect(await stock('LAMP')).toEqual({ ...before, available: before.available - 3, reserved: before.reserved + 3 });
      const cancel = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('lea'), body: { reason: 'ordered the wrong colour' } });
      expect([cancel.status, cancel.body.status]).toEqual([200, 'REFUNDING']);
    } finally {
      await queues.fulfillment.resume();
    }
    const refunded = await system.waitForStatus(orderId, 'REFUNDED');
    expect(refunded.amounts.refundedCents).toBe(7_200);
    // the settle job that ran afterwards neither committed again nor sent the order to the warehouse
    expect(refunded.history.map((h: any) => h.action)).toEqual(['checkout', 'persist', 'pay', 'refund', 'refund_succeeded']);
    expect(await stock('LAMP')).toEqual(before);
    const ledger = await system.env.db.selectFrom('stock_ledger').select(['kind', 'qty', 'reason']).where('order_id', '=', orderId).orderBy('id').execute();
    expect(ledger.map((row) => [row.kind, Number(row.qty), row.reason])).toEqual([
      ['reserve', -3, 'checkout'],
      ['commit', 0, 'payment'],
      ['restock', 3, 'cancel'],
    ]);
    expect(await ledgerAvailable(system.env.db, 'LAMP')).toBe(before.available);
    const warehouse = (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders;
    expect(warehouse.map((o: any) => o.orderId)).not.toContain(orderId);

    const api = (await system.request('GET', '/metrics')).body as string;
    expect(api).toMatch(/order_cancellations_total\{[^}]*stage="after_payment"[^}]*\} [1-9]/);
    expect(api).toMatch(/order_refunds_total\{[^}]*kind="refund"[^}]*outcome="succeeded"[^}]*\} [1-9]/);
    expect(api).toMatch(/order_refunded_cents_total\{[^}]*kind="refund"[^}]*\} [1-9]\d*/);
  });
});

import { QUEUE, enqueueEffects } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { closeUnpaidOrder } from '@orders/worker';
import { UnrecoverableError, Worker } from 'bullmq';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/** Every payment deadline and order timer of the first describe, in ms. */
const TIMER_MS = 4_000;

describe('orders whose deadline or timer job was lost', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // 4 s for each deadline and timer: time to take its job away first on a slow box (at 1.5 s a balance job ran
    // before the test removed it, once); the backstop looks every 500 ms for orders 500 ms past their deadline or timer
    system = await startOrderSystem('overdue_orders', {
      PAYMENT_TIMEOUT_MS: String(TIMER_MS),
      FLASH_SALE_PAYMENT_TIMEOUT_MS: String(TIMER_MS),
      PRESALE_BALANCE_TIMEOUT_MS: String(TIMER_MS),
      AUTO_CONFIRM_MS: String(TIMER_MS),
      AFTER_SALES_WINDOW_MS: String(TIMER_MS),
      RETURN_PARCEL_WINDOW_MS: String(TIMER_MS),
      RETURN_REVIEW_WINDOW_MS: String(TIMER_MS),
      OVERDUE_SWEEP_INTERVAL_MS: '500',
    });
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
    await system.createSku({ skuId: 'LAST-TEA', priceCents: 1_200, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
    await system.createSku({ skuId: 'VOUCHER', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement', orderType: 'virtual' });
    await system.createSku({ skuId: 'LAMP', priceCents: 4_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
    await system.createSku({ skuId: 'VASE', priceCents: 1_800, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const stock = async () => (await system.request('GET', '/v1/admin/skus/KETTLE', { token: system.token('ops', 'admin') })).body.stock;
  // the sweep counts the orders it closed once its whole pass is done: an order may read closed a moment before it is counted
  const expiredCount = async (atLeast: number) => {
    const read = async () => (await system.workers.deps.metrics.overdueOrdersExpired.get()).values[0]?.value ?? 0;
    await waitFor(async () => (await read()) >= atLeast, { timeoutMs: 15_000, what: `${atLeast} orders counted as expired by the sweep` }).catch(() => undefined);
    return read();
  };

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
    // the units go back to Redis just after the expiry commits
    await expect.poll(stock, { timeout: 5_000 }).toEqual({ available: 5, reserved: 0, sold: 0 });
    expect(await expiredCount(1)).toBe(1);
  });

  it("sends a refund whose refund job was lost, with the warehouse's update lost beside it: the buyer is paid back, the parcel dropped, and the loss counted", async () => {
    const { payments, fulfillment } = system.workers.deps.queues;
    const paused = [payments, fulfillment].map((queue) => system.workers.workers.find((worker) => worker.name === queue.name)!);
    const orderId = await system.checkout('rae', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('rae'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    await Promise.all(paused.map((worker) => worker.pause()));
    try {
      expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('rae'), body: { reason: 'changed my mind' } })).status).toBe(202);
      // the refund committed and its jobs are lost (the api died before the adds, or Redis refused them)
      for (const [queue, what] of [
        [payments, 'the refund job'],
        [fulfillment, "the warehouse's update job"],
      ] as const) {
        const lost = await waitFor(async () => (await queue.getJobs(['waiting', 'prioritized', 'delayed'])).find((job) => job.data.orderId === orderId), { what });
        await lost.remove();
      }
    } finally {
      for (const worker of paused) worker.resume();
    }
    expect((await system.waitForStatus(orderId, 'REFUNDED', 20_000)).amounts.refundedCents).toBe(3_000);
    const restored = async () => (await system.workers.deps.metrics.refundJobsRestored.get()).values[0]?.value ?? 0;
    await expect.poll(restored, { timeout: 5_000 }).toBe(1);
    // the warehouse was told to drop the parcel: it does not ship the refunded kettle
    await expect.poll(async () => (await system.order(orderId)).shipments.map((shipment: { status: string }) => shipment.status), { timeout: 10_000 }).toEqual(['CANCELLED']);
  });

  /** An order of `skuId` paid, whose settlement job (stock commit, split and hand-over, or delivery) is then lost: Redis refused the add, or lost it. */
  async function paidWithSettlementLost(buyer: string, skuId: string): Promise<string> {
    const { fulfillment } = system.workers.deps.queues;
    const fulfilmentWorker = system.workers.workers.find((worker) => worker.name === fulfillment.name)!;
    const orderId = await system.checkout(buyer, [{ skuId, qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await fulfilmentWorker.pause();
    try {
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
      await system.waitForStatus(orderId, 'PAID');
      const settlement = await waitFor(async () => (await fulfillment.getJobs(['waiting', 'prioritized', 'delayed'])).find((job) => job.data.orderId === orderId), { what: 'the settlement job' });
      await settlement.remove();
    } finally {
      fulfilmentWorker.resume();
    }
    return orderId;
  }
  // two sweeps running at once (one outlasting its 500 ms interval on a loaded box) may both count the job they enqueue under one id
  const handOversRestored = async () => (await system.workers.deps.metrics.handOversRestored.get()).values[0]?.value ?? 0;

  it('hands over a paid order whose settlement job was lost: its stock committed, the warehouse has it, and the loss counted', async () => {
    const orderId = await paidWithSettlementLost('sol', 'KETTLE');
    const order = await system.waitForStatus(orderId, 'IN_FULFILLMENT', 20_000);
    expect(order.shipments).toEqual([expect.objectContaining({ status: 'ACCEPTED' })]);
    await expect.poll(handOversRestored, { timeout: 5_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(stock, { timeout: 5_000 }).toMatchObject({ reserved: 0, sold: 1 });
  });

  it('delivers a paid virtual order whose settlement job was lost: completed, its voucher sold, and the loss counted', async () => {
    const before = await handOversRestored();
    const orderId = await paidWithSettlementLost('una', 'VOUCHER');
    await system.waitForStatus(orderId, 'COMPLETED', 20_000);
    await expect.poll(handOversRestored, { timeout: 5_000 }).toBeGreaterThanOrEqual(before + 1);
    await expect.poll(async () => (await system.request('GET', '/v1/admin/skus/VOUCHER', { token: system.token('ops', 'admin') })).body.stock, { timeout: 5_000 }).toEqual({ available: 4, reserved: 0, sold: 1 });
  });

  it("pays back an order sold out at its payment whose refund job was lost, though an earlier attempt went back whole: the payment goes back whole, and the loss counted", async () => {
    const { payments } = system.workers.deps.queues;
    const paymentsWorker = system.workers.workers.find((worker) => worker.name === payments.name)!;
    // two buyers of the last tin, deducted at payment, both pay while it is on sale: the second's payment finds it sold
    const [first, second] = [await system.checkout('tam', [{ skuId: 'LAST-TEA', qty: 1 }]), await system.checkout('uma', [{ skuId: 'LAST-TEA', qty: 1 }])];
    await Promise.all([first, second].map((orderId) => system.waitForStatus(orderId, 'PENDING_PAYMENT')));
    const restoredBefore = (await system.workers.deps.metrics.refundJobsRestored.get()).values[0]?.value ?? 0;
    // its settlement waits until the refund's worker is held: the refund job it enqueues is then taken away
    let paymentsHeld!: () => void;
    const held = new Promise<void>((resolve) => (paymentsHeld = resolve));
    try {
      expect((await system.payInRace({ orderId: first, buyer: 'tam' }, { orderId: second, buyer: 'uma' }, held)).status).toBe(202);
      await system.waitForStatus(first, 'IN_FULFILLMENT');
      await system.waitForStatus(second, 'PAID');
      await paymentsWorker.pause();
    } finally {
      paymentsHeld();
    }
    try {
      await system.waitForStatus(second, 'REFUNDING');
      // the refund of the whole payment is lost (Redis refused the add, or lost it)
      const refundJob = await waitFor(async () => (await payments.getJobs(['waiting', 'prioritized', 'delayed'])).find((job) => job.data.orderId === second), { what: 'the refund job' });
      await refundJob.remove();
      // and an earlier attempt, taken for another amount, went back whole before: its refund row is not the order's refund
      const at = new Date();
      await system.env.db
        .insertInto('refunds')
        .values({ refund_id: `${second}-full-0-refund`, order_id: second, kind: 'refund', status: 'SUCCEEDED', version: 1, reason: 'late payment', amount_cents: 1_300, items: '[]', created_at: at, updated_at: at })
        .execute();
    } finally {
      paymentsWorker.resume();
    }
    expect((await system.waitForStatus(second, 'REFUNDED', 20_000)).amounts.refundedCents).toBe(1_200);
    const restored = async () => (await system.workers.deps.metrics.refundJobsRestored.get()).values[0]?.value ?? 0;
    await expect.poll(restored, { timeout: 5_000 }).toBeGreaterThanOrEqual(restoredBefore + 1);
  });

  it('gives back a payment taken after its order expired whose refund job was lost: the buyer is paid back once, and the loss counted', async () => {
    const { payments } = system.workers.deps.queues;
    const paymentsWorker = system.workers.workers.find((worker) => worker.name === payments.name)!;
    const orderId = await system.checkout('lou', [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const atPaymentSystem = async () => {
      const seen = (await system.paymentSim.request('GET', '/__admin/payments')).body;
      return { charges: seen.payments.filter((p: { orderId: string }) => p.orderId === orderId), refunds: seen.refunds.filter((r: { paymentId: string }) => r.paymentId.startsWith(orderId)) };
    };
    const restored = async () => (await system.workers.deps.metrics.refundJobsRestored.get()).values[0]?.value ?? 0;
    const restoredBefore = await restored();
    // the payment system takes the money 2.5 s after it is asked, and calls back 2.5 s after that
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 2_500 } });
    let paymentId: string;
    try {
      paymentId = (await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('lou'), body: { method: 'card' } })).body.paymentId;
      await waitFor(async () => (await atPaymentSystem()).charges.length === 1, { what: 'the charge', timeoutMs: 10_000, intervalMs: 20 });
      // the order expires before the callback, which records the payment as late and enqueues its refund: lost
      await system.passPaymentDeadline(orderId);
      await closeUnpaidOrder(system.workers.deps, { orderId, action: 'expire', actor: 'system', detail: 'payment deadline passed' });
      await paymentsWorker.pause();
      try {
        const refundJob = await waitFor(async () => (await payments.getJobs(['waiting', 'prioritized', 'delayed'])).find((job) => job.data.paymentId === paymentId), { what: 'the late payment’s refund job', timeoutMs: 10_000 });
        await refundJob.remove();
      } finally {
        paymentsWorker.resume();
      }
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
    const { refunds } = await waitFor(async () => {
      const seen = await atPaymentSystem();
      return seen.refunds.length > 0 && seen;
    }, { what: 'the late payment given back', timeoutMs: 20_000 });
    expect(refunds.map((r: { paymentId: string; amountCents: number }) => [r.paymentId, r.amountCents])).toEqual([[paymentId, 4_500]]);
    await expect.poll(restored, { timeout: 5_000 }).toBeGreaterThanOrEqual(restoredBefore + 1);
    // given back once: no longer due, so later sweeps leave it
    await expect.poll(async () => (await system.env.db.selectFrom('payments').select('refund_due_at').where('payment_id', '=', paymentId).executeTakeFirstOrThrow()).refund_due_at, { timeout: 5_000 }).toBeNull();
    const expired = await system.order(orderId);
    expect([expired.status, expired.amounts.refundedCents]).toEqual(['EXPIRED', 4_500]);
    expect((await atPaymentSystem()).refunds).toHaveLength(1);
  });

  /**
   * A `skuId` order of `buyer`, paid: in fulfilment. Its buyer has a minute to pay, not TIMER_MS: a box loaded
   * by the other test files may take longer than that between the checkout and the pay, which is then refused.
   */
  const paidOrder = async (buyer: string, skuId: string) => {
    const orderId = await system.checkout(buyer, [{ skuId, qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.env.db.updateTable('orders').set({ payment_deadline: sql<Date>`UTC_TIMESTAMP(3) + INTERVAL 1 MINUTE` }).where('order_id', '=', orderId).execute();
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    return orderId;
  };

  /** A delivered VASE order of `buyer` with a return requested: the order's id and the return's. */
  const returnRequested = async (buyer: string) => {
    const orderId = await paidOrder(buyer, 'VASE');
    for (const event of ['SHIPPED', 'DELIVERED']) expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
    const { returnId } = (await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token(buyer), body: { reason: 'chipped', items: [{ skuId: 'VASE', qty: 1 }] } })).body;
    return { orderId, returnId: returnId as string };
  };
  /** A delivered VASE order of `buyer` with its return approved by its merchant: the order's id and the return's. */
  const returnApproved = async (buyer: string) => {
    const { orderId, returnId } = await returnRequested(buyer);
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: system.token('shop', 'merchant') })).body.status).toBe('APPROVED');
    return { orderId, returnId: returnId as string };
  };
  /** The order once its return was closed by the system, with the close's and the approval's steps. */
  const closedBySystem = async (orderId: string) => {
    const order = await waitFor(async () => {
      const read = await system.order(orderId);
      return read.history.some((step: { action: string }) => step.action === 'close_return') && read;
    }, { what: `the return of ${orderId} closed`, timeoutMs: 20_000 });
    const stepOf = (action: string) => order.history.find((step: { action: string }) => step.action === action);
    return { order, closed: stepOf('close_return'), approved: stepOf('approve_return') };
  };

  it('closes an approved return whose parcel did not reach the warehouse in time: DELIVERED again, nothing paid back, and completed after its new window', async () => {
    const { orderId, returnId } = await returnApproved('vic');
    const { order, closed, approved } = await closedBySystem(orderId);
    expect(closed).toMatchObject({ from: 'RETURNING', to: 'DELIVERED', actor: 'system', detail: `return ${returnId} closed: its parcel did not reach the warehouse in time` });
    expect(Date.parse(closed.at) - Date.parse(approved.at)).toBeGreaterThanOrEqual(TIMER_MS);
    expect(order.amounts.refundedCents).toBe(0);
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items.map((r: { status: string }) => r.status)).toEqual(['CLOSED']);
    await system.waitForStatus(orderId, 'COMPLETED', 20_000);
  });

  it('closes an approved return whose parcel never came though its timer job was lost, and counts it', async () => {
    const { timers } = system.workers.deps.queues;
    const { orderId } = await returnApproved('wes');
    await (await waitFor(async () => timers.getJob(`close-return-${orderId}`), { what: 'the return’s close timer' })).remove();
    const { closed } = await closedBySystem(orderId);
    expect(closed).toMatchObject({ from: 'RETURNING', to: 'DELIVERED', actor: 'system' });
    const moved = async () => (await system.workers.deps.metrics.overdueOrderTimers.get()).values.find(({ labels }) => labels.timer === 'close_return')?.value;
    await expect.poll(moved, { timeout: 5_000 }).toBe(1);
  });

  /** The order once the system approved its return, with the approval's and the request's steps. */
  const approvedBySystem = async (orderId: string) => {
    const order = await waitFor(async () => {
      const read = await system.order(orderId);
      return read.history.some((step: { action: string; actor: string }) => step.action === 'approve_return' && step.actor === 'system') && read;
    }, { what: `the return of ${orderId} approved by the system`, timeoutMs: 20_000 });
    const stepOf = (action: string) => order.history.find((step: { action: string }) => step.action === action);
    return { approved: stepOf('approve_return'), requested: stepOf('request_return') };
  };

  it('approves a return the shop did not review in time: the buyer sends the parcel, whose own window then runs', async () => {
    const { orderId, returnId } = await returnRequested('xia');
    const { approved, requested } = await approvedBySystem(orderId);
    expect(approved).toMatchObject({ from: 'RETURN_REQUESTED', to: 'RETURNING', actor: 'system', detail: `return ${returnId} approved: the shop did not review it in time` });
    expect(Date.parse(approved.at) - Date.parse(requested.at)).toBeGreaterThanOrEqual(TIMER_MS);
    const returns = async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('xia') })).body.items.map((r: { status: string }) => r.status);
    expect(await returns()).toEqual(['APPROVED']);
    // a merchant approving it now is answered as a repeat; refusing it is too late
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: system.token('shop', 'merchant') })).status).toBe(200);
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/refuse`, { token: system.token('shop', 'merchant') })).body.code).toBe('ILLEGAL_TRANSITION');
    // the parcel comes back: received and paid back as after a merchant's approval
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'RETURN_RECEIVED', returnId } })).body.callbackStatus).toBe(200);
    const returned = await system.waitForStatus(orderId, 'RETURNED', 20_000);
    expect(returned.amounts.refundedCents).toBe(1_800);
  });

  it('approves a return left unreviewed though its timer job was lost, and counts it; one the shop refused in time stays refused', async () => {
    const { timers } = system.workers.deps.queues;
    const moved = async () => (await system.workers.deps.metrics.overdueOrderTimers.get()).values.find(({ labels }) => labels.timer === 'approve_return')?.value ?? 0;
    // the test before may have had its return approved by the sweep, its timer late on a loaded box: counted before this one's
    const movedBefore = await moved();
    const lost = await returnRequested('yan');
    await (await waitFor(async () => timers.getJob(`review-return-${lost.orderId}`), { what: 'the return’s review timer' })).remove();
    const refused = await returnRequested('zoe');
    expect((await system.request('POST', `/v1/orders/${refused.orderId}/returns/${refused.returnId}/refuse`, { token: system.token('shop', 'merchant') })).body.status).toBe('REFUSED');

    const { approved } = await approvedBySystem(lost.orderId);
    expect(approved).toMatchObject({ from: 'RETURN_REQUESTED', to: 'RETURNING', actor: 'system' });
    await expect.poll(async () => (await moved()) - movedBefore, { timeout: 5_000 }).toBe(1);
    // the refused one's review timer fires at its time and finds the return refused: nothing approved it after its window
    await new Promise((resolve) => setTimeout(resolve, TIMER_MS + 1_000));
    const order = await system.order(refused.orderId);
    expect(order.history.filter((step: { action: string }) => step.action === 'approve_return')).toEqual([]);
    expect((await system.request('GET', `/v1/orders/${refused.orderId}/refunds`, { token: system.token('zoe') })).body.items.map((r: { status: string }) => r.status)).toEqual(['REFUSED']);
  });

  it("approves in time a return asked for right after a refusal whose follow-up ran after it (a slow api, a callback sent again): the review timer stays", async () => {
    const { timers } = system.workers.deps.queues;
    const { orderId, returnId } = await returnRequested('amy');
    expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/refuse`, { token: system.token('shop', 'merchant') })).body.status).toBe('REFUSED');
    const again = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('amy'), body: { reason: 'chipped after all', items: [{ skuId: 'VASE', qty: 1 }] } });
    expect(again.status).toBe(202);
    // the refusal's follow-up, once more, after the new return's own
    await enqueueEffects(system.workers.deps.queues, { orderId, userId: 'amy' }, ['scheduleCompletion'], async () => ({ now: new Date(), dueAt: {} }));
    expect(await timers.getJob(`review-return-${orderId}`)).toBeDefined();
    const swept = async () => (await system.workers.deps.metrics.overdueOrderTimers.get()).values.find(({ labels }) => labels.timer === 'approve_return')?.value ?? 0;
    const sweptBefore = await swept();

    const { approved } = await approvedBySystem(orderId);
    expect(approved).toMatchObject({ from: 'RETURN_REQUESTED', to: 'RETURNING', actor: 'system' });
    const askedAgain = (await system.order(orderId)).history.findLast((step: { action: string }) => step.action === 'request_return');
    expect(Date.parse(approved.at) - Date.parse(askedAgain.at)).toBeGreaterThanOrEqual(TIMER_MS - 10);
    // by its own timer, not by the backstop sweep
    expect(await swept()).toBe(sweptBefore);
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
    expect(await expiredCount(2)).toBe(2);
  });

  it('leaves a presale whose balance, asked in time, was declined after its deadline to its own deadline job, which waited for it, and counts no job lost', async () => {
    const { timers } = system.workers.deps.queues;
    const faults = (body: Record<string, unknown>) => system.paymentSim.request('PUT', '/__admin/faults', { body });
    const pay = () => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('pia'), body: { method: 'card' } });
    const orderId = await system.persisted('presale', 'pia', [{ skuId: 'KETTLE', qty: 1 }]);
    expect((await pay()).status).toBe(202);
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    const expiredBefore = await expiredCount(0);
    await faults({ paymentsUndecided: true });
    let balance: { paymentId: string; amountCents: number };
    try {
      // the buyer asks to pay the balance in time; the payment system holds it undecided
      balance = (await pay()).body;
      await system.paymentRequested(balance.paymentId);
    } finally {
      await faults({ paymentsUndecided: false });
    }
    // its deadline passed a second ago, more than a sweep interval: the deadline job waits 3 s more for the balance's answer
    await system.env.db.updateTable('orders').set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL 1 SECOND` }).where('order_id', '=', orderId).execute();
    const deadlineJob = `expire-balance-${orderId}`;
    await (await waitFor(async () => timers.getJob(deadlineJob), { what: 'the balance deadline job' })).promote();
    await waitFor(
      async () => {
        const job = await timers.getJob(deadlineJob);
        return job?.processedOn !== undefined && (await job.getState()) === 'delayed';
      },
      { what: 'the balance deadline waiting for the balance' },
    );

    // the payment system declines the balance: the deadline job forfeits the deposit when it next looks, the sweeps meanwhile leave it to it
    const declined = await system.signedCallback('payment', { orderId, paymentId: balance.paymentId, transactionId: 'tx-balance-declined', status: 'FAILED', amountCents: balance.amountCents, at: new Date().toISOString() });
    expect(declined.body).toEqual({ changed: true, status: 'DEPOSIT_PAID' });
    const forfeited = await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', 20_000);
    expect(forfeited.history.at(-1)).toMatchObject({ action: 'expire_balance', actor: 'system' });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await expiredCount(0)).toBe(expiredBefore);
  });

  it('confirms a shipped order whose auto-confirm job was lost, and completes it when its after-sales window closes though that job was lost too', async () => {
    const { timers } = system.workers.deps.queues;
    const lose = async (jobId: string) => (await waitFor(async () => timers.getJob(jobId), { what: jobId })).remove();
    const moved = async () => {
      const counted = (await system.workers.deps.metrics.overdueOrderTimers.get()).values;
      return Object.fromEntries(['auto_confirm', 'complete'].map((timer) => [timer, counted.find(({ labels }) => labels.timer === timer)?.value ?? 0]));
    };
    const movedBefore = await moved();
    const orderId = await paidOrder('ida', 'KETTLE');
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } })).body.callbackStatus).toBe(200);
    await lose(`auto-confirm-${orderId}`);

    const delivered = await system.waitForStatus(orderId, 'DELIVERED', 20_000);
    expect(delivered.history.at(-1)).toMatchObject({ action: 'auto_confirm', actor: 'system' });
    await lose(`complete-${orderId}`);

    const completed = await system.waitForStatus(orderId, 'COMPLETED', 20_000);
    const at = (action: string) => Date.parse(completed.history.findLast((entry: { action: string }) => entry.action === action).at);
    expect(at('complete') - at('auto_confirm')).toBeGreaterThanOrEqual(TIMER_MS);
    // the sweep counts a timer just after its step commits: a read right after the order's status can come first.
    // At least one each: an earlier test's order back in DELIVERED may be completed by the sweep meanwhile, its own
    // job late by more than the sweep's 500 ms on a loaded box (a run counted 2)
    await expect.poll(async () => {
      const now = await moved();
      return now.auto_confirm! > movedBefore.auto_confirm! && now.complete! > movedBefore.complete!;
    }, { timeout: 15_000 }).toBe(true);
  });
});

describe('the overdue-order sweep and the stock check when Redis loses the queues while the workers run', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // 2 s to pay; the sweep every 500 ms, the stock check every second; one job at a time, so the jobs of a queue
    // that comes back run in the order they fell due
    system = await startOrderSystem('lost_queues', { PAYMENT_TIMEOUT_MS: '2000', FLASH_SALE_PAYMENT_TIMEOUT_MS: '2000', OVERDUE_SWEEP_INTERVAL_MS: '500', RECONCILE_INTERVAL_MS: '1000', WORKER_CONCURRENCY: '1' });
    await system.createSku({ skuId: 'TOASTER', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('are scheduled again, and close an unpaid order whose deadline job was lost with them, its stock back on sale', async () => {
    const { env, workers } = system;
    const orderId = await system.checkout('lee', [{ skuId: 'TOASTER', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // Redis loses every queue (a flushed database, a restart without its AOF); the workers stay connected
    let cursor = '0';
    do {
      const [next, keys] = await env.redis.scan(cursor, 'MATCH', `${env.config.QUEUE_PREFIX}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await env.redis.unlink(...keys);
    } while (cursor !== '0');

    const expired = await system.waitForStatus(orderId, 'EXPIRED', 20_000);
    expect(expired.history.at(-1)).toMatchObject({ action: 'expire', actor: 'system' });
    const stock = await system.request('GET', '/v1/admin/skus/TOASTER', { token: system.token('ops', 'admin') });
    expect(stock.body.stock).toEqual({ available: 5, reserved: 0, sold: 0 });
    const schedulers = await workers.deps.queues.timers.getJobSchedulers();
    expect(schedulers.map((scheduler) => scheduler.key).sort()).toEqual(['expire-overdue-orders', 'reconcile-stock']);
  });

  it('run one sweep at a time, whichever worker runs it: none while another holds the sweep, and the next closes an order whose deadline job was lost, counted once', async () => {
    const { env, workers } = system;
    const expired = async () => (await workers.deps.metrics.overdueOrdersExpired.get()).values[0]?.value ?? 0;
    const before = await expired();
    // another worker's sweep is running (a slow one: longer than the sweep interval)
    const lockKey = `${env.config.QUEUE_PREFIX}:overdue-sweep-lock`;
    // taken between two of this worker's own sweeps (one may hold the lock at this instant, and a CI run saw it)
    await waitFor(async () => (await env.redis.set(lockKey, 'worker-2 sweeping', 'PX', 60_000, 'NX')) === 'OK', { what: 'the sweep lock free between two sweeps', timeoutMs: 10_000, intervalMs: 10 });
    let orderId: string;
    try {
      orderId = await system.checkout('max', [{ skuId: 'TOASTER', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      await (await waitFor(async () => (await workers.deps.queues.timers.getDelayed()).find((job) => JSON.stringify(job.data).includes(orderId)), { what: 'the order’s deadline job' })).remove();
      // its deadline and several sweep intervals pass: this worker's sweeps leave it to the running one
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');
    } finally {
      await env.redis.del(lockKey);
    }
    await system.waitForStatus(orderId, 'EXPIRED', 10_000);
    await expect.poll(expired, { timeout: 5_000 }).toBe(before + 1);
    // later sweeps find nothing more to do
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await expired()).toBe(before + 1);
  });

  it('leave an order whose deadline passed while the timers went unserved to its own deadline job, which comes late, and count no job lost', async () => {
    const { timers } = system.workers.deps.queues;
    const expired = async () => (await system.workers.deps.metrics.overdueOrdersExpired.get()).values[0]?.value ?? 0;
    const before = await expired();
    const orderId = await system.checkout('kim', [{ skuId: 'TOASTER', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // no worker serves the timers for longer than the deadline and several sweep intervals (the timers workers away)
    await timers.pause();
    try {
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      // what an operator sees meanwhile: the timers' oldest job waiting, though no job starts to report its wait
      const oldestWaiting = /^queue_oldest_waiting_job_age_seconds\{queue="timers",app="worker"\} (\S+)$/m.exec(await system.workers.deps.metrics.exposition());
      expect(Number(oldestWaiting?.[1])).toBeGreaterThan(1);
    } finally {
      await timers.resume();
    }
    // the sweep due first runs first, before the deadline job
    const closed = await system.waitForStatus(orderId, 'EXPIRED', 10_000);
    expect(closed.history.at(-1)).toMatchObject({ action: 'expire', actor: 'system', detail: 'payment deadline passed' });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await expired()).toBe(before);
  });
});

describe('a paid order whose settlement job was lost behind more paid orders whose settlement failed for good than a sweep reads', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // the sweep reads two orders at a time
    system = await startOrderSystem('overdue_sweep_pages', { OVERDUE_SWEEP_INTERVAL_MS: '500', SWEEP_PAGE_SIZE: '2' });
    await system.createSku({ skuId: 'STOOL', priceCents: 2_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('is handed over by a later sweep, which reads on past them (they wait in the dead letters for the operator), and the loss counted', async () => {
    const { env, workers } = system;
    const { fulfillment } = workers.deps.queues;
    const fulfilmentWorker = workers.workers.find((worker) => worker.name === fulfillment.name)!;
    const settlementOf = (orderId: string) => waitFor(async () => (await fulfillment.getJobs(['waiting', 'prioritized', 'delayed'])).find((job) => job.data.orderId === orderId), { what: `the settlement job of ${orderId}` });
    const paid = async (buyer: string) => {
      const orderId = await system.checkout(buyer, [{ skuId: 'STOOL', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
      await system.waitForStatus(orderId, 'PAID');
      await settlementOf(orderId);
      return orderId;
    };
    await fulfilmentWorker.pause();
    // the two oldest paid orders' settlements fail for good (a warehouse refusing them, say)
    const refused = [await paid('amy'), await paid('ben')];
    const failing = new Worker(QUEUE.fulfillment, async () => Promise.reject(new UnrecoverableError('the warehouse refused the order')), { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
    await waitFor(async () => (await fulfillment.getJobCounts('failed')).failed === refused.length, { what: 'the oldest settlements failed' });
    await failing.close();
    // the next one's settlement job is lost
    const lost = await paid('cat');
    await (await settlementOf(lost)).remove();
    fulfilmentWorker.resume();

    await system.waitForStatus(lost, 'IN_FULFILLMENT', 20_000);
    expect((await workers.deps.metrics.handOversRestored.get()).values[0]?.value).toBe(1);
    for (const orderId of refused) expect((await system.order(orderId)).status).toBe('PAID');
  });
});

describe('an overdue-order sweep that meets an order it cannot move', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // 2 s to confirm receipt; the sweep every 500 ms; a statement waits 1 s at most
    system = await startOrderSystem('overdue_sweep_one_stuck', { AUTO_CONFIRM_MS: '2000', OVERDUE_SWEEP_INTERVAL_MS: '500', MYSQL_QUERY_TIMEOUT_MS: '1000' });
    await system.createSku({ skuId: 'RADIO', priceCents: 2_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('moves on the orders read after it, and that one once it can be moved', async () => {
    const { timers } = system.workers.deps.queues;
    const lose = async (orderId: string) => (await waitFor(async () => timers.getJob(`auto-confirm-${orderId}`), { what: `the auto-confirm job of ${orderId}` })).remove();
    // two shipped orders whose auto-confirm jobs were lost: the sweep reads the first shipped first
    const stuck = await system.shipped('kai', [{ skuId: 'RADIO', qty: 1 }]);
    await lose(stuck);

    // the first order's row held by another transaction (a long report, a stuck session) from before its receipt is
    // due (shipping the next order may take longer than that on a busy box): its step fails each sweep
    await system.env.db.transaction().execute(async (trx) => {
      await trx.selectFrom('orders').select('order_id').where('order_id', '=', stuck).forUpdate().execute();
      const next = await system.shipped('lou', [{ skuId: 'RADIO', qty: 1 }]);
      await lose(next);
      const delivered = await system.waitForStatus(next, 'DELIVERED', 20_000);
      expect(delivered.history.at(-1)).toMatchObject({ action: 'auto_confirm', actor: 'system' });
      expect((await system.order(stuck)).status).toBe('SHIPPED');
    });
    const delivered = await system.waitForStatus(stuck, 'DELIVERED', 20_000);
    expect(delivered.history.at(-1)).toMatchObject({ action: 'auto_confirm', actor: 'system' });
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { JOB, jobId } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { closeUnpaidOrder } from '@orders/worker';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApi } from '../../api/test/support/api-under-test.js';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * Money the payment system took when the order could no longer take it, or reported in an
 * order we did not expect: each payment is either the order's or given back, exactly once,
 * and no other payment of the order is touched.
 */
describe('payments that arrive late or change their outcome', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('late_payments', { PRESALE_DEPOSIT_PERCENT: '20' });
    await system.createSku({ skuId: 'TV', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'CONSOLE', priceCents: 50_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0, outage: false } });
    await system?.close();
  });

  const pay = (buyer: string, orderId: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
  const atPaymentSystem = async (orderId: string) => {
    const { payments, refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    return { charges: payments.filter((p: any) => p.orderId === orderId), refunds: refunds.filter((r: any) => r.paymentId.startsWith(orderId)) };
  };
  /** The refunds the payment system has made for the order, once it has made one. */
  const refundsPaidBack = async (orderId: string, what: string) =>
    (await waitFor(async () => {
      const seen = await atPaymentSystem(orderId);
      return seen.refunds.length > 0 && seen;
    }, { what, timeoutMs: 20_000 })).refunds;
  const paymentRows = (orderId: string) => system.env.db.selectFrom('payments').select(['payment_id', 'status']).where('order_id', '=', orderId).orderBy('attempt').execute();
  const slowPaymentSystem = (latencyMs: number) => system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs } });
  /**
   * How long the slow payment system takes to charge, and again to call back: what the test does
   * in between must come first, on a loaded box too; under PAYMENT_BREAKER_TIMEOUT_MS (3 s).
   */
  const SLOW_MS = 2_500;

  it('a payment reported failed and then succeeded pays its order', async () => {
    const orderId = await system.checkout('cy', [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      const { paymentId } = (await pay('cy', orderId)).body;
      const at = new Date().toISOString();
      const failed = await system.signedCallback('payment', { orderId, paymentId, transactionId: 'tx-declined', status: 'FAILED', amountCents: 10_000, at });
      expect([failed.status, failed.body.changed]).toEqual([200, true]);
      const succeeded = await system.signedCallback('payment', { orderId, paymentId, transactionId: 'tx-taken', status: 'SUCCEEDED', amountCents: 10_000, at });
      expect([succeeded.status, succeeded.body]).toEqual([200, { changed: true, status: 'PAID' }]);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    const paid = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(paid.payment).toMatchObject({ transactionId: 'tx-taken' });
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['SUCCEEDED']);
  });

  it('a payment whose callback comes 16 minutes after the money was taken (held up by an outage) pays its order, paid when it was taken; repeats and an old failure change nothing', async () => {
    const orderId = await system.checkout('fay', [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const takenAt = new Date(Date.now() - 16 * 60_000).toISOString();
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      const { paymentId } = (await pay('fay', orderId)).body;
      const late = { orderId, paymentId, transactionId: 'tx-late', status: 'SUCCEEDED', amountCents: 10_000, at: takenAt };
      const answer = await system.signedCallback('payment', late);
      expect([answer.status, answer.body]).toEqual([200, { changed: true, status: 'PAID' }]);
      const repeat = await system.signedCallback('payment', late);
      expect([repeat.status, repeat.body.changed]).toEqual([200, false]);
      // a failure reported for the same payment before it went through, delivered again now: the money stays taken
      const oldFailure = await system.signedCallback('payment', { ...late, transactionId: 'tx-declined', status: 'FAILED', at: new Date(Date.now() - 20 * 60_000).toISOString() });
      expect([oldFailure.status, oldFailure.body.changed]).toEqual([200, false]);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    const paid = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(paid.payment).toMatchObject({ transactionId: 'tx-late', paidAt: takenAt });
    expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['SUCCEEDED']);
  });

  it('a late payment whose refund the payment system declines is not recorded as given back: the refund is asked for again until it goes through', async () => {
    const orderId = await system.checkout('ida', [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await slowPaymentSystem(SLOW_MS);
    let paymentId = '';
    try {
      paymentId = (await pay('ida', orderId)).body.paymentId;
      const charge = await waitFor(async () => (await atPaymentSystem(orderId)).charges[0], { what: 'the charge', timeoutMs: 10_000, intervalMs: 20 });
      await system.passPaymentDeadline(orderId);
      await closeUnpaidOrder(system.workers.deps, { orderId, action: 'expire', actor: 'system', detail: 'payment deadline passed' });
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: true } });
      await system.signedCallback('payment', { orderId, paymentId, transactionId: charge.transactionId, status: 'SUCCEEDED', amountCents: 10_000, at: new Date().toISOString() });
      // declined twice: the first FAILED answer was not taken for the money going back
      await waitFor(async () => ((await system.paymentSim.request('GET', '/__admin/payments')).body.declined as any[]).filter((refund) => refund.paymentId === paymentId).length >= 2, {
        what: 'the refund asked for again after it was declined',
        timeoutMs: 20_000,
      });
      const recorded = await system.env.db.selectFrom('refunds').select(['refund_id', 'status']).where('order_id', '=', orderId).execute();
      expect(recorded).toEqual([]);
      expect((await system.order(orderId)).amounts.refundedCents).toBe(0);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
      await slowPaymentSystem(0);
    }
    const refunds = await refundsPaidBack(orderId, 'the late payment refunded once the payment system takes it');
    expect(refunds.map((r: any) => [r.paymentId, r.amountCents])).toEqual([[paymentId, 10_000]]);
    const recorded = await waitFor(async () => {
      const rows = await system.env.db.selectFrom('refunds').select(['refund_id', 'status', 'amount_cents']).where('order_id', '=', orderId).execute();
      return rows.length > 0 && rows;
    }, { what: 'the refund recorded' });
    expect(recorded.map((r) => [r.status, Number(r.amount_cents)])).toEqual([['SUCCEEDED', 10_000]]);
  });

  it('an order cancelled before a late payment went back refunds the payment that paid it, and the late one goes back on its own: everything the buyer paid comes back', async () => {
    const orderId = await system.checkout('eli', [{ skuId: 'CONSOLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const reported = (paymentId: string, status: 'FAILED' | 'SUCCEEDED', transactionId: string) =>
      system.signedCallback('payment', { orderId, paymentId, transactionId, status, amountCents: 50_000, at: new Date().toISOString() });
    // the payment system takes a while to take the money
    await slowPaymentSystem(SLOW_MS);
    try {
      const first = (await pay('eli', orderId)).body.paymentId as string;
      await system.paymentRequested(first);
      await reported(first, 'FAILED', 'tx-early-failure');
      const second = (await pay('eli', orderId)).body.paymentId as string;
      await waitFor(async () => (await atPaymentSystem(orderId)).charges.length === 2, { what: 'both charges', timeoutMs: 10_000, intervalMs: 20 });
      // both went through: the first pays the order, the second is late and waits to go back while refunds wait out an outage
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
      expect((await reported(first, 'SUCCEEDED', 'tx-1')).body).toEqual({ changed: true, status: 'PAID' });
      expect((await reported(second, 'SUCCEEDED', 'tx-2')).body.changed).toBe(false);
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('eli'), body: { reason: 'paid twice, want none' } });
      expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
      const [refund] = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('eli') })).body.items;
      expect(refund.parts.map((p: any) => [p.paymentId, p.amountCents])).toEqual([[first, 50_000]]);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0, outage: false } });
    }
    const refunded = await waitFor(
      async () => {
        const order = await system.order(orderId);
        return order.status === 'REFUNDED' && order.amounts.refundedCents === 100_000 && order;
      },
      { what: 'both payments given back', timeoutMs: 20_000 },
    );
    expect(refunded.payments.map((p: any) => [p.amountCents, p.status])).toEqual([
      [50_000, 'SUCCEEDED'],
      [50_000, 'SUCCEEDED'],
    ]);
    const { charges, refunds } = await atPaymentSystem(orderId);
    expect(charges.map((c: any) => [c.amountCents, c.refundedCents])).toEqual([
      [50_000, 50_000],
      [50_000, 50_000],
    ]);
    expect(refunds.length).toBe(2);
  });

  it('a decline the payment system reports for another amount is recorded, counted, and the buyer pays again', async () => {
    const orderId = await system.checkout('lia', [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    let first: string;
    try {
      first = (await pay('lia', orderId)).body.paymentId;
      // nothing was taken, whatever amount the decline names
      const decline = { orderId, paymentId: first, transactionId: 'tx-declined', status: 'FAILED', amountCents: 10_001, at: new Date().toISOString() };
      const declined = await system.signedCallback('payment', decline);
      expect([declined.status, declined.body.changed]).toEqual([200, true]);
      // sent again (our answer lost): a repeat, counted once
      const repeated = await system.signedCallback('payment', decline);
      expect([repeated.status, repeated.body.changed]).toEqual([200, false]);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    expect((await system.request('GET', '/metrics')).body).toMatch(/^payment_amount_mismatches_total\{[^}]*outcome="declined"[^}]*\} 1$/m);
    const again = (await pay('lia', orderId)).body;
    expect(again.paymentId).not.toBe(first);
    const paid = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(paid.payments.map((p: any) => [p.paymentId, p.status])).toEqual([
      [first, 'FAILED'],
      [again.paymentId, 'SUCCEEDED'],
    ]);
  });

  it('a payment the payment system took for another amount goes back whole, counted, and the buyer pays again: the order is paid once, for its price', async () => {
    const orderId = await system.checkout('kim', [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // the payment system charges, and reports, 1.00 more than it was asked
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { amountSkewCents: 100 } });
    let first: string;
    try {
      first = (await pay('kim', orderId)).body.paymentId;
      const refunds = await refundsPaidBack(orderId, 'the overcharge given back');
      expect(refunds.map((r: any) => [r.paymentId, r.amountCents])).toEqual([[first, 10_100]]);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { amountSkewCents: 0 } });
    }
    const unpaid = await system.order(orderId);
    expect(unpaid.status).toBe('PENDING_PAYMENT');
    expect(unpaid.payments.map((p: any) => [p.paymentId, p.status, p.amountCents])).toEqual([[first, 'SUCCEEDED', 10_100]]);
    expect((await system.request('GET', '/metrics')).body).toMatch(/^payment_amount_mismatches_total\{[^}]*outcome="given_back"[^}]*\} 1$/m);

    const again = (await pay('kim', orderId)).body;
    expect([again.paymentId === first, again.amountCents]).toEqual([false, 10_000]);
    const paid = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(paid.amounts.refundedCents).toBe(10_100);
    const { charges, refunds } = await atPaymentSystem(orderId);
    expect(charges.map((c: any) => [c.paymentId, c.amountCents, c.refundedCents])).toEqual([
      [first, 10_100, 10_100],
      [again.paymentId, 10_000, 0],
    ]);
    expect(refunds).toHaveLength(1);
    // the payment system's callback of the overcharge again: recorded already, nothing more goes back
    const [overcharge] = charges;
    const repeat = await system.signedCallback('payment', { orderId, paymentId: first, transactionId: overcharge.transactionId, status: 'SUCCEEDED', amountCents: 10_100, at: overcharge.at });
    expect([repeat.status, repeat.body.changed]).toEqual([200, false]);
    // and the one that paid, reported for another amount: refused, and counted
    const conflicting = await system.signedCallback('payment', { orderId, paymentId: again.paymentId, transactionId: charges[1].transactionId, status: 'SUCCEEDED', amountCents: 9_000, at: charges[1].at });
    expect([conflicting.status, conflicting.body.code]).toEqual([422, 'AMOUNT_MISMATCH']);
    expect((await system.request('GET', '/metrics')).body).toMatch(/^payment_amount_mismatches_total\{[^}]*outcome="refused"[^}]*\} 1$/m);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await atPaymentSystem(orderId)).refunds).toHaveLength(1);
  });

  it('a payment asked for after its deadline, before the expiry ran, is refused: the order, and a presale whose balance is overdue, are left to expire', async () => {
    const overdue = (orderId: string, deadline: 'payment_deadline' | 'balance_deadline') =>
      system.env.db.updateTable('orders').set({ [deadline]: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL 1 SECOND` }).where('order_id', '=', orderId).execute();

    const orderId = await system.checkout('jo', [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await overdue(orderId, 'payment_deadline');
    const late = await pay('jo', orderId);
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ code: 'ILLEGAL_TRANSITION', detail: expect.stringMatching(/^The payment was due by \S+: no payment is taken after it$/) });
    expect(await paymentRows(orderId)).toEqual([]);

    // a presale: its deposit in time, its balance after the balance deadline (its first attempt failed in time)
    const presale = await system.persisted('presale', 'kim', [{ skuId: 'CONSOLE', qty: 1 }]);
    await pay('kim', presale);
    await system.waitForStatus(presale, 'DEPOSIT_PAID');
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { declineRate: 1 } });
    try {
      const failed = (await pay('kim', presale)).body;
      await waitFor(async () => (await paymentRows(presale)).find((row) => row.payment_id === failed.paymentId)?.status === 'FAILED', { what: 'the first balance attempt declined', timeoutMs: 20_000 });
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { declineRate: 0 } });
    }
    await overdue(presale, 'balance_deadline');
    const lateBalance = await pay('kim', presale);
    expect(lateBalance.status).toBe(409);
    expect(lateBalance.body.detail).toMatch(/^The balance was due by \S+: no payment is taken after it$/);
    // no attempt was opened: the deposit and the balance's failed one are all there is
    expect((await paymentRows(presale)).map((row) => `${row.payment_id.slice(presale.length + 1)} ${row.status}`).sort()).toEqual(['balance-1 FAILED', 'deposit-1 SUCCEEDED']);
    await (await system.workers.deps.queues.timers.getJob(jobId.expireBalance(presale)))?.promote();
    await system.waitForStatus(presale, 'DEPOSIT_FORFEITED', 10_000);
  });

  describe('a payment asked for in time and not answered by the deadline (its request in the backlog after a sale, the payment system away)', () => {
    /** The order's payment opened in time while the payment system is away, then its deadline passed and its deadline job ran: it waits. */
    const unansweredAtDeadline = async (buyer: string) => {
      const orderId = await system.checkout(buyer, [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
      const opened = await pay(buyer, orderId);
      expect(opened.status).toBe(202);
      await system.env.db.updateTable('orders').set({ payment_deadline: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL 1 SECOND` }).where('order_id', '=', orderId).execute();
      const deadlineJob = await system.workers.deps.queues.timers.add(JOB.expireOrder, { orderId, userId: buyer }, { jobId: `deadline-${orderId}` });
      await waitFor(async () => (await deadlineJob.getState()) === 'delayed', { what: 'the deadline job to wait for the payment under way' });
      expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');
      // nor does the overdue sweep take it from its job
      expect(await system.workers.deps.orders.overdueUnpaidOrderIds(0, 0, system.env.config.PAYMENT_TIMEOUT_MS, 60_000, 1_000)).not.toContain(orderId);
      return { orderId, paymentId: opened.body.paymentId as string, deadlineJob };
    };
    afterEach(async () => system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } }));

    it('is waited for, and once taken pays the order: the buyer who paid in time keeps it', async () => {
      const { orderId, paymentId, deadlineJob } = await unansweredAtDeadline('ned');
      const taken = await system.signedCallback('payment', { orderId, paymentId, transactionId: 'tx-in-time', status: 'SUCCEEDED', amountCents: 10_000, at: new Date().toISOString() });
      expect([taken.status, taken.body]).toEqual([200, { changed: true, status: 'PAID' }]);
      await deadlineJob.promote();
      // looked again, it is done with the order (completed, and removed as completed jobs are)
      await waitFor(async () => !['waiting', 'active', 'delayed', 'prioritized'].includes(await deadlineJob.getState()), { what: 'the deadline job to look again' });
      const paid = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
      expect(paid.history.map((step: any) => step.action)).not.toContain('expire');
      expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['SUCCEEDED']);
    });

    it('declined after the deadline, lets the order expire at the next look', async () => {
      const { orderId, paymentId, deadlineJob } = await unansweredAtDeadline('ola');
      const declined = await system.signedCallback('payment', { orderId, paymentId, transactionId: 'tx-declined', status: 'FAILED', amountCents: 10_000, at: new Date().toISOString() });
      expect([declined.status, declined.body.changed]).toEqual([200, true]);
      await deadlineJob.promote();
      const expired = await system.waitForStatus(orderId, 'EXPIRED', 20_000);
      expect(expired.history.at(-1)).toMatchObject({ from: 'PENDING_PAYMENT', action: 'expire', to: 'EXPIRED', actor: 'system' });
      expect((await paymentRows(orderId)).map((p) => p.status)).toEqual(['FAILED']);
    });
  });

  describe.concurrent(`while the payment system takes ${SLOW_MS / 1_000} s to take the money, and as long again to call back`, () => {
    // the payment system's faults hold for every order: these tests set no other, so they run side by side
    beforeAll(async () => slowPaymentSystem(SLOW_MS));
    afterAll(async () => slowPaymentSystem(0));

    it('a payment reported 16 minutes late for an order that expired meanwhile is recorded and goes back', async ({ expect }) => {
      const orderId = await system.checkout('gus', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      // the payment system's own callback comes SLOW_MS after the charge: ours, sent at once, is the first
      const takenAt = new Date(Date.now() - 16 * 60_000).toISOString();
      const { paymentId } = (await pay('gus', orderId)).body;
      const {
        charges: [charge],
      } = await waitFor(async () => {
        const seen = await atPaymentSystem(orderId);
        return seen.charges.length === 1 && seen;
      }, { what: 'the charge', timeoutMs: 10_000, intervalMs: 20 });
      await system.passPaymentDeadline(orderId);
      await closeUnpaidOrder(system.workers.deps, { orderId, action: 'expire', actor: 'system', detail: 'payment deadline passed' });
      const late = await system.signedCallback('payment', { orderId, paymentId, transactionId: charge.transactionId, status: 'SUCCEEDED', amountCents: 10_000, at: takenAt });
      expect([late.status, late.body]).toEqual([200, { changed: false, status: 'EXPIRED' }]);
      const refunds = await refundsPaidBack(orderId, 'the late payment refunded');
      expect(refunds.map((r: any) => [r.paymentId, r.amountCents])).toEqual([[paymentId, 10_000]]);
      const expired = await system.order(orderId);
      expect(expired.status).toBe('EXPIRED');
      expect(expired.payments.map((p: any) => [p.status, p.paidAt])).toEqual([['SUCCEEDED', takenAt]]);
    });

    it('of two attempts that both took the money, the order keeps one and the other alone goes back', async ({ expect }) => {
      const orderId = await system.checkout('dee', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      const first = (await pay('dee', orderId)).body.paymentId as string;
      // a failure reported early; the payment system then takes the money anyway
      await system.paymentRequested(first);
      await system.signedCallback('payment', { orderId, paymentId: first, transactionId: 'tx-early-failure', status: 'FAILED', amountCents: 10_000, at: new Date().toISOString() });
      const second = (await pay('dee', orderId)).body.paymentId as string;
      expect(second).not.toBe(first);
      const sim = await waitFor(async () => {
        const seen = await atPaymentSystem(orderId);
        return seen.charges.length === 2 && seen.refunds.length === 1 && seen;
      }, { what: 'two charges and one refund', timeoutMs: 20_000 });
      const rows = await waitFor(async () => {
        const all = await paymentRows(orderId);
        return all.every((p) => p.status === 'SUCCEEDED') && all;
      }, { what: 'both payments recorded' });
      const order = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
      const kept = rows.find((p) => order.payment.transactionId === sim.charges.find((c: any) => c.paymentId === p.payment_id).transactionId)!;
      expect(sim.refunds.map((r: any) => [r.paymentId, r.amountCents])).toEqual([[rows.find((p) => p !== kept)!.payment_id, 10_000]]);
    });

    it('a presale balance paid after its deadline goes back, and the forfeited deposit stays kept', async ({ expect }) => {
      const orderId = await system.persisted('presale', 'ivy', [{ skuId: 'CONSOLE', qty: 1 }]);
      await pay('ivy', orderId);
      await system.waitForStatus(orderId, 'DEPOSIT_PAID');
      // the buyer pays the balance just before its deadline; the payment system takes the money, and calls back, after it
      const balance = (await pay('ivy', orderId)).body;
      expect(balance).toMatchObject({ purpose: 'balance', amountCents: 40_000 });
      await system.paymentRequested(balance.paymentId);
      // the deadline passes, and so does the wait for a balance asked for in time (PAYMENT_TIMEOUT_MS past it), the
      // request still at the payment system: its job is promoted
      const waitedMs = system.env.config.PAYMENT_TIMEOUT_MS + 1_000;
      await system.env.db.updateTable('orders').set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL ${waitedMs * 1000} MICROSECOND` }).where('order_id', '=', orderId).execute();
      await (await system.workers.deps.queues.timers.getJob(jobId.expireBalance(orderId)))?.promote();
      await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', 10_000);
      const refunds = await refundsPaidBack(orderId, 'the balance refunded');
      expect(refunds.map((r: any) => [r.paymentId, r.amountCents])).toEqual([[balance.paymentId, 40_000]]);
      expect((await system.order(orderId)).status).toBe('DEPOSIT_FORFEITED');
    });

    it('a balance asked for in time through an api host whose clock runs 10 minutes ahead is waited for at the deadline, and pays the order', { timeout: 60_000 }, async ({ expect }) => {
      const ahead = await startApi(system.env, { clock: () => new Date(Date.now() + 600_000) });
      try {
        const orderId = await system.persisted('presale', 'lou', [{ skuId: 'CONSOLE', qty: 1 }]);
        await pay('lou', orderId);
        await system.waitForStatus(orderId, 'DEPOSIT_PAID');
        await system.env.db.updateTable('orders').set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3) + INTERVAL 1 SECOND` }).where('order_id', '=', orderId).execute();
        // asked for before the deadline by MySQL's clock; the host that opens it writes a time after it
        const balance = await ahead.request('POST', `/v1/orders/${orderId}/pay`, { token: ahead.token('lou'), body: { method: 'card' } });
        expect([balance.status, balance.body.purpose]).toEqual([202, 'balance']);
        await system.paymentRequested(balance.body.paymentId);
        await waitFor(async () => (await sql<{ due: number }>`SELECT balance_deadline < UTC_TIMESTAMP(3) AS due FROM orders WHERE order_id = ${orderId}`.execute(system.env.db)).rows[0]!.due === 1, { what: 'the balance deadline to pass' });
        // the deadline's job runs while the payment system still holds the payment: the payment under way decides, not the deadline
        await (await system.workers.deps.queues.timers.getJob(jobId.expireBalance(orderId)))?.promote();
        await system.waitForStatus(orderId, 'IN_FULFILLMENT', 20_000);
      } finally {
        await ahead.close();
      }
    });

    it('a late payment recorded by a callback that died before asking for its refund is refunded when the callback comes again', async ({ expect }) => {
      const orderId = await system.checkout('hal', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      const { paymentId } = (await pay('hal', orderId)).body;
      await waitFor(async () => (await atPaymentSystem(orderId)).charges.length === 1, { what: 'the charge', timeoutMs: 10_000, intervalMs: 20 });
      // before the payment system calls back: the order expires, and a first callback records
      // the payment and dies before it asks for the refund
      await system.passPaymentDeadline(orderId);
      await closeUnpaidOrder(system.workers.deps, { orderId, action: 'expire', actor: 'system', detail: 'payment deadline passed' });
      await system.env.db.updateTable('payments').set({ status: 'SUCCEEDED', transaction_id: 'tx-first-callback', paid_at: new Date() }).where('payment_id', '=', paymentId).execute();
      const refunds = await refundsPaidBack(orderId, 'the late payment refunded');
      expect(refunds.map((r: any) => [r.paymentId, r.amountCents])).toEqual([[paymentId, 10_000]]);
      expect((await system.order(orderId)).status).toBe('EXPIRED');
    });
  });
});

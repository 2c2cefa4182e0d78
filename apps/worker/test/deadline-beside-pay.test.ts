// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { ProcessRepository } from '@orders/persistence';
import { jobId, ordersCarriedBy } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ForwardLife } from '../src/processors/forward-life.js';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A deadline job reads the payments its order awaits, then closes the order in a transaction of its
 * own: a buyer's pay request between the two, before the deadline, is a payment asked for in time,
 * and decides the order (the close reads it again in its transaction). Each test pauses the job
 * between its read and its close, as a GC pause or a loaded box does.
 */
describe('a deadline job beside a payment asked for in time', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('deadline_beside_pay', {
      PRESALE_DEPOSIT_PERCENT: '20',
      PRESALE_BALANCE_TIMEOUT_MS: '600000',
      OVERDUE_SWEEP_INTERVAL_MS: '0',
      RECONCILE_INTERVAL_MS: '0',
      EXTERNAL_RETRY_DELAY_MS: '100',
      PAYMENT_BREAKER_RESET_MS: '500',
    });
    const sku = { merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', orderType: 'presale' } as const;
    await system.createSku({ ...sku, skuId: 'REV-CONSOLE', priceCents: 50_000, stock: 10 });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0, outage: false } });
    await system?.close();
  });

  const pay = (orderId: string, buyer: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
  const atPaymentSystem = async (orderId: string) => {
    const { payments, refunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    return {
      charges: payments.filter((p: any) => p.orderId === orderId) as Array<{ paymentId: string; amountCents: number }>,
      refunds: refunds.filter((r: any) => r.paymentId.startsWith(orderId)) as Array<{ paymentId: string; amountCents: number }>,
    };
  };
  const sum = (rows: ReadonlyArray<{ amountCents: number }>) => rows.reduce((s, r) => s + r.amountCents, 0);
  const mysqlNow = async () => Number((await sql<{ now: Date }>`SELECT UTC_TIMESTAMP(3) AS now`.execute(system.env.db)).rows[0]!.now.getTime());
  const depositPaid = async (buyer: string) => {
    const orderId = await system.checkout(buyer, [{ skuId: 'REV-CONSOLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    expect((await pay(orderId, buyer)).body).toMatchObject({ purpose: 'deposit', amountCents: 10_000 });
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    return orderId;
  };

  it('a balance asked for before its deadline, while the deadline job was between its look at the payments and its forfeit, pays the presale: the deposit is not kept', async () => {
    const orderId = await depositPaid('rex');
    // the job of the real deadline is far off (10 min); the balance falls due in 2 s
    await (await system.workers.deps.queues.timers.getJob(jobId.expireBalance(orderId)))?.remove();
    await system.env.db.updateTable('orders').set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3) + INTERVAL 2000000 MICROSECOND` }).where('order_id', '=', orderId).execute();
    const deadline = Date.parse((await system.order(orderId)).balanceDeadline);

    // the deadline job's worker, paused (GC, a loaded box) between reading the payments awaited and firing the forfeit
    const life = new ForwardLife(system.workers.deps);
    const process = (life as any).process;
    const read = process.paymentsAskedInTimeFor.bind(process);
    let looked!: () => void;
    const lookedAt = new Promise<void>((resolve) => (looked = resolve));
    let resume!: () => void;
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    process.paymentsAskedInTimeFor = async (...args: any[]) => {
      const found = await read(...args);
      looked();
      await resumed;
      return found;
    };
    // the job runs a moment before the deadline (its worker's clock a little ahead), and looks: no balance asked yet
    const forfeit = life.forfeitDeposit(orderId);
    await lookedAt;

    // the buyer pays the balance before the deadline, the payment system slow to answer
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      const balance = await pay(orderId, 'rex');
      expect([balance.status, balance.body.purpose, balance.body.status]).toEqual([202, 'balance', 'PENDING']);
      expect(await mysqlNow()).toBeLessThan(deadline);
      // the deadline passes by MySQL's clock; the paused worker goes on
      await waitFor(async () => (await mysqlNow()) > deadline + 50, { what: 'the balance deadline passed', timeoutMs: 5_000, intervalMs: 50 });
      resume();
      await forfeit;
    } finally {
      resume();
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    const order = await waitFor(async () => {
      const seen = await system.order(orderId);
      return ['IN_FULFILLMENT', 'DEPOSIT_FORFEITED'].includes(seen.status) && seen;
    }, { what: `${orderId} decided`, timeoutMs: 20_000 });
    // once the balance's money has settled (charged, and given back if it came "late")
    const balanceDecided = await waitFor(async () => {
      const seen = await system.order(orderId);
      const balance = seen.payments.find((p: any) => p.purpose === 'balance');
      return balance && balance.status !== 'PENDING' && balance;
    }, { what: 'the balance decided', timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 1_000));
    const { charges, refunds } = await atPaymentSystem(orderId);
    const kept = { status: order.status, balance: balanceDecided.status, charged: sum(charges), refunded: sum(refunds), kept: sum(charges) - sum(refunds) };
    // README: the forfeit waits for a balance payment its buyer asked for before the deadline: paid in time, the buyer gets the console for 50,000
    expect(kept).toEqual({ status: 'IN_FULFILLMENT', balance: 'SUCCEEDED', charged: 50_000, refunded: 0, kept: 50_000 });
  });

  it("a deposit asked for before the payment deadline, while the deadline job was between its look at the payments and its expiry, pays the presale: it does not expire", async () => {
    const orderId = await system.checkout('sal', [{ skuId: 'REV-CONSOLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    await system.env.db.updateTable('orders').set({ payment_deadline: sql<Date>`UTC_TIMESTAMP(3) + INTERVAL 2000000 MICROSECOND` }).where('order_id', '=', orderId).execute();
    const deadline = Date.parse((await system.order(orderId)).paymentDeadline);
    const timers = system.workers.deps.queues.timers;
    const job = await waitFor(async () => (await timers.getDelayed()).find((j) => ordersCarriedBy(j.data).includes(orderId)), { what: 'the deadline job', timeoutMs: 5_000 });

    // the deadline job's worker, paused (GC, a loaded box) between reading the payments awaited and expiring the order
    const read = ProcessRepository.prototype.paymentsAskedInTimeFor;
    let looked!: () => void;
    const lookedAt = new Promise<void>((resolve) => (looked = resolve));
    let resume!: () => void;
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    ProcessRepository.prototype.paymentsAskedInTimeFor = async function (this: ProcessRepository, owing, orderIds, waitMs) {
      const found = await read.call(this, owing, orderIds, waitMs);
      if (owing === 'payment' && orderIds.includes(orderId)) {
        looked();
        await resumed;
      }
      return found;
    };
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      // the job runs a moment before the deadline (a clock a little ahead), and looks: no deposit asked yet
      await job!.promote();
      await lookedAt;
      // the buyer pays the deposit before the deadline, the payment system slow to answer
      const deposit = await pay(orderId, 'sal');
      expect([deposit.status, deposit.body.purpose, deposit.body.status]).toEqual([202, 'deposit', 'PENDING']);
      expect(await mysqlNow()).toBeLessThan(deadline);
      await waitFor(async () => (await mysqlNow()) > deadline + 50, { what: 'the payment deadline passed', timeoutMs: 5_000, intervalMs: 50 });
      resume();
      await new Promise((r) => setTimeout(r, 1_000));
      // README: "a payment asked for before paymentDeadline ... is waited for, up to PAYMENT_TIMEOUT_MS past the deadline"
      expect((await system.order(orderId)).status).toBe('PENDING_DEPOSIT');
    } finally {
      resume();
      ProcessRepository.prototype.paymentsAskedInTimeFor = read;
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    await system.waitForStatus(orderId, 'DEPOSIT_PAID', 20_000);
  });
});

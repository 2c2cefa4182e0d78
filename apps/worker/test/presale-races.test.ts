// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { jobId } from '@orders/queues';
import { buyerAddress, waitFor } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAYMENT_LOOKED_AT_EVERY_MS } from '../src/processors/forward-life.js';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A presale's deposit and balance callbacks racing its balance deadline, the overdue sweep,
 * the buyer's cancel, an operator's refund and each other, sent at once over real HTTP: each
 * presale ends paid (its units sold once) or closed (its units back on sale once), and the
 * buyer keeps exactly what the shop's rules say: nothing taken twice, nothing kept for goods
 * not sold but a forfeited deposit.
 *
 * The payment system's faults (slow, away) and the consoles' stock are the whole system's: each group's
 * tests run one after another on a system of the group's own, and the groups side by side.
 */
describe('a presale under racing callbacks, timers and cancels', () => {
  const started = async () => {
    const system = await startOrderSystem('presale_races', {
      PRESALE_DEPOSIT_PERCENT: '20',
      PRESALE_BALANCE_TIMEOUT_MS: '600000',
      OVERDUE_SWEEP_INTERVAL_MS: '200',
      RECONCILE_INTERVAL_MS: '0',
      EXTERNAL_RETRY_DELAY_MS: '100',
      // the breaker an outage opened lets a payment try again 0.5 s on, not at its default 10 s
      PAYMENT_BREAKER_RESET_MS: '500',
    });
    const sku = { merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', orderType: 'presale' } as const;
    await system.createSku({ ...sku, skuId: 'NEXT-CONSOLE', priceCents: 50_000, stock: 10 });
    await system.createSku({ ...sku, skuId: 'NEXT-PAD', priceCents: 3_333, stock: 10 });
    await system.createSku({ ...sku, skuId: 'NEXT-CABLE', priceCents: 999, stock: 10 });
    const coupon = { code: 'PRE-1001', kind: 'fixed', offCents: 1_001, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
    return system;
  };
  /**
   * How long the slow payment system takes to charge, and again to call back: what the test does
   * in between (its own callbacks, the next attempt) comes first, on a loaded box too.
   */
  const SLOW_MS = 2_500;
  /** Which way the balance deadline went: the forfeit or the payment, each once. */
  const decidedSteps = (order: any) => order.history.filter((h: any) => h.from === 'DEPOSIT_PAID').map((h: any) => `${h.action}->${h.to}`);

  /** What the tests do and read on their group's system. */
  const helpersOf = (the: () => OrderSystem) => {
    const pay = (orderId: string, buyer: string) => the().request('POST', `/v1/orders/${orderId}/pay`, { token: the().token(buyer), body: { method: 'card' } });
    const slowPaymentSystem = (latencyMs: number) => the().paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs } });
    const atPaymentSystem = async (orderId: string) => {
      const { payments, refunds } = (await the().paymentSim.request('GET', '/__admin/payments')).body;
      return {
        charges: payments.filter((p: any) => p.orderId === orderId) as Array<{ paymentId: string; transactionId: string; amountCents: number; refundedCents: number; at: string }>,
        refunds: refunds.filter((r: any) => r.paymentId.startsWith(orderId)) as Array<{ refundId: string; paymentId: string; amountCents: number }>,
      };
    };
    const ledgerOf = async (orderId: string) =>
      (await the().env.db.selectFrom('stock_ledger').select(['kind', 'qty', 'reason']).where('order_id', '=', orderId).orderBy('id').execute()).map((row) => [row.kind, Number(row.qty)]);
    /** The payment system's callback for a charge it took, as it sends it (its own comes later: it is slow). */
    const taken = (orderId: string, charge: { paymentId: string; transactionId: string; amountCents: number; at: string }) =>
      the().signedCallback('payment', { orderId, paymentId: charge.paymentId, transactionId: charge.transactionId, status: 'SUCCEEDED', amountCents: charge.amountCents, at: charge.at });
    /** Waits for the payment system to have taken `count` charges of the order. */
    const charged = async (orderId: string, count: number) =>
      (await waitFor(async () => {
        const seen = await atPaymentSystem(orderId);
        return seen.charges.length === count && seen.charges;
      }, { what: `${count} charges of ${orderId}`, timeoutMs: 10_000, intervalMs: 20 }))!;
    /** A presale of `qty` consoles whose 10,000 deposit (per console) is paid. */
    const depositPaid = async (buyer: string, skuId = 'NEXT-CONSOLE', qty = 1) => {
      const orderId = await the().checkout(buyer, [{ skuId, qty }]);
      await the().waitForStatus(orderId, 'PENDING_DEPOSIT');
      await pay(orderId, buyer);
      await the().waitForStatus(orderId, 'DEPOSIT_PAID');
      return orderId;
    };
    /** The balance's money taken by the payment system, whose own callback is SLOW_MS away. */
    const balanceTaken = async (orderId: string, buyer: string) => {
      await slowPaymentSystem(SLOW_MS);
      const balance = (await pay(orderId, buyer)).body;
      expect(balance).toMatchObject({ purpose: 'balance', amountCents: 40_000 });
      const [, charge] = await charged(orderId, 2);
      return charge!;
    };
    /** Every charge of the order, less every refund: what the shop keeps, once the money has settled. */
    const keptOnceSettled = async (orderId: string, kept: number) => {
      await slowPaymentSystem(0);
      await waitFor(
        async () => {
          const { charges, refunds } = await atPaymentSystem(orderId);
          const sum = (rows: ReadonlyArray<{ amountCents: number }>) => rows.reduce((s, r) => s + r.amountCents, 0);
          return sum(charges) - sum(refunds) === kept;
        },
        { what: `the shop to keep ${kept} of ${orderId}`, timeoutMs: 15_000 },
      );
    };
    return { pay, slowPaymentSystem, atPaymentSystem, ledgerOf, taken, charged, depositPaid, balanceTaken, keptOnceSettled };
  };

  describe.concurrent('a balance racing its deadline', () => {
    let system: OrderSystem;
    const { pay, ledgerOf, taken, depositPaid, balanceTaken, keptOnceSettled } = helpersOf(() => system);
    beforeAll(async () => {
      system = await started();
    });
    afterAll(async () => {
      await system?.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0, outage: false } });
      await system?.close();
    });

    it.sequential('a balance callback at the very moment its deadline job forfeits it, or just after the overdue sweep did (its job lost): paid and sold once, or forfeited with the balance given back, never both', async ({ expect }) => {
      const closedBySweep = async () => (await system.workers.deps.metrics.overdueOrdersExpired.get()).values[0]?.value ?? 0;
      const outcomes: string[] = [];
      for (const [buyer, deadlineJob] of [['ana', 'promoted'], ['ben', 'lost']] as const) {
        const orderId = await depositPaid(buyer);
        const charge = await balanceTaken(orderId, buyer);
        const timer = await system.workers.deps.queues.timers.getJob(jobId.expireBalance(orderId));
        if (deadlineJob === 'lost') await timer?.remove();
        const sweptBefore = await closedBySweep();
        // the balance deadline passed longer ago than its job and the sweep (every 200 ms) wait for a balance asked in time: either forfeits it now
        const passedMs = system.env.config.PAYMENT_TIMEOUT_MS + PAYMENT_LOOKED_AT_EVERY_MS + 2_000;
        await system.env.db.updateTable('orders').set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL ${passedMs * 1000} MICROSECOND` }).where('order_id', '=', orderId).execute();
        if (deadlineJob === 'lost') {
          await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED');
          // counted once the sweep's round has forfeited it, a moment after the commit the status shows
          await expect.poll(closedBySweep).toBe(sweptBefore + 1);
        }
        const [callback] = await Promise.all([taken(orderId, charge), deadlineJob === 'promoted' ? timer?.promote() : undefined, taken(orderId, charge)]);
        expect(callback.status).toBe(200);
        const order = await waitFor(async () => {
          const seen = await system.order(orderId);
          return ['IN_FULFILLMENT', 'DEPOSIT_FORFEITED'].includes(seen.status) && seen;
        }, { what: `${orderId} decided`, timeoutMs: 10_000 });
        expect(decidedSteps(order)).toHaveLength(1);
        outcomes.push(order.status);
        if (order.status === 'DEPOSIT_FORFEITED') {
          await keptOnceSettled(orderId, 10_000);
          expect(await ledgerOf(orderId)).toEqual([['reserve', -1], ['release', 1]]);
        } else {
          await keptOnceSettled(orderId, 50_000);
          expect(await ledgerOf(orderId)).toEqual([['reserve', -1], ['commit', 0]]);
        }
      }
      expect(outcomes[1]).toBe('DEPOSIT_FORFEITED');
      const sold = outcomes.filter((s) => s === 'IN_FULFILLMENT').length;
      // a forfeit's units go back to Redis just after its commit
      await expect.poll(() => system.stockOf('NEXT-CONSOLE'), { timeout: 5_000 }).toEqual({ available: 10 - sold, reserved: 0, sold });
    });

    it.sequential('a balance asked for before its deadline while the payment system is away: the forfeit waits for that payment, which pays the presale once the payment system is back', async ({ expect }) => {
      const orderId = await depositPaid('gus');
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: true } });
      try {
        expect((await pay(orderId, 'gus')).body).toMatchObject({ purpose: 'balance', amountCents: 40_000, status: 'PENDING' });
        // the deadline passes while the payment, asked for before it, waits behind the breaker; its job and the sweep (every 200 ms) both look
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        await system.env.db.updateTable('orders').set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL 500000 MICROSECOND` }).where('order_id', '=', orderId).execute();
        await (await system.workers.deps.queues.timers.getJob(jobId.expireBalance(orderId)))?.promote();
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        expect((await system.order(orderId)).status).toBe('DEPOSIT_PAID');
      } finally {
        await system.paymentSim.request('PUT', '/__admin/faults', { body: { outage: false } });
      }
      const order = await system.waitForStatus(orderId, 'IN_FULFILLMENT', 30_000);
      expect(decidedSteps(order)).toEqual(['pay->PAID']);
      await keptOnceSettled(orderId, 50_000);
      expect(await ledgerOf(orderId)).toEqual([['reserve', -1], ['commit', 0]]);
    });
  });

  describe.concurrent('callbacks and attempts racing each other', () => {
    let system: OrderSystem;
    const { pay, slowPaymentSystem, atPaymentSystem, ledgerOf, taken, charged, depositPaid, keptOnceSettled } = helpersOf(() => system);
    beforeAll(async () => {
      system = await started();
    });
    afterAll(async () => {
      await system?.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0, outage: false } });
      await system?.close();
    });

    it.sequential('a deposit callback delivered twice at once pays the deposit once: one step, one balance deadline, nothing given back', async ({ expect }) => {
      const orderId = await system.checkout('dot', [{ skuId: 'NEXT-PAD', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
      await slowPaymentSystem(SLOW_MS);
      expect((await pay(orderId, 'dot')).body).toMatchObject({ purpose: 'deposit', amountCents: 666 });
      const [charge] = await charged(orderId, 1);
      const answers = await Promise.all([taken(orderId, charge!), taken(orderId, charge!), taken(orderId, charge!)]);
      expect(answers.map((a) => a.body.changed).sort()).toEqual([false, false, true]);
      await keptOnceSettled(orderId, 666);
      const order = await system.order(orderId);
      expect(order.history.filter((h: any) => h.action === 'pay_deposit')).toHaveLength(1);
      expect([order.status, order.amounts.refundedCents, order.balanceDeadline]).toEqual(['DEPOSIT_PAID', 0, expect.any(String)]);
      expect((await pay(orderId, 'dot')).body).toMatchObject({ purpose: 'balance', amountCents: 3_333 - 666 });
    });

    it.sequential("a deposit's pay sent again after the deposit went through, saying it is for the deposit, answers that deposit rather than charging the balance", async ({ expect }) => {
      const payFor = (orderId: string, purpose: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ivo'), body: { method: 'card', purpose } });
      const orderId = await system.checkout('ivo', [{ skuId: 'NEXT-PAD', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
      const deposit = await payFor(orderId, 'deposit');
      expect([deposit.status, deposit.body.purpose, deposit.body.amountCents]).toEqual([202, 'deposit', 666]);
      await system.waitForStatus(orderId, 'DEPOSIT_PAID');
      // its answer lost, the buyer's app sends it again: the deposit, taken once
      const again = await payFor(orderId, 'deposit');
      expect([again.status, again.body]).toEqual([202, { ...deposit.body, status: 'SUCCEEDED' }]);
      expect((await atPaymentSystem(orderId)).charges).toHaveLength(1);
      const neverMade = await payFor(orderId, 'full');
      expect([neverMade.status, neverMade.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
      expect((await payFor(orderId, 'balance')).body).toMatchObject({ purpose: 'balance', amountCents: 3_333 - 666 });
    });

    it.sequential('a balance taken by two attempts at once is kept once: the second goes back whole, the console sold once', async ({ expect }) => {
      const orderId = await depositPaid('eda');
      await slowPaymentSystem(SLOW_MS);
      const first = (await pay(orderId, 'eda')).body;
      await charged(orderId, 2);
      await system.signedCallback('payment', { orderId, paymentId: first.paymentId, transactionId: 'tx-early-failure', status: 'FAILED', amountCents: 40_000, at: new Date().toISOString() });
      const second = (await pay(orderId, 'eda')).body;
      expect(second).toMatchObject({ purpose: 'balance', amountCents: 40_000 });
      expect(second.paymentId).not.toBe(first.paymentId);
      const charges = await charged(orderId, 3);
      await Promise.all([taken(orderId, charges[1]!), taken(orderId, charges[2]!)]);
      const order = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
      await keptOnceSettled(orderId, 50_000);
      const { refunds } = await atPaymentSystem(orderId);
      expect(refunds.map((r) => r.amountCents)).toEqual([40_000]);
      expect(order.history.filter((h: any) => h.action === 'pay')).toHaveLength(1);
      expect(await ledgerOf(orderId)).toEqual([['reserve', -1], ['commit', 0]]);
    });
  });

  describe.concurrent('a cancel and refunds beside the balance', () => {
    let system: OrderSystem;
    const { pay, atPaymentSystem, taken, depositPaid, balanceTaken, keptOnceSettled } = helpersOf(() => system);
    beforeAll(async () => {
      system = await started();
    });
    afterAll(async () => {
      await system?.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0, outage: false } });
      await system?.close();
    });

    it.sequential('a buyer cancelling as the balance lands: forfeited with the balance back, or refunded in full; the console back on sale once either way', async ({ expect }) => {
      const before = await system.stockOf('NEXT-CONSOLE');
      const orderId = await depositPaid('fan');
      const charge = await balanceTaken(orderId, 'fan');
      const [cancelled] = await Promise.all([
        system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('fan'), body: { reason: 'changed my mind' } }),
        taken(orderId, charge),
      ]);
      expect(cancelled.status).toBe(200);
      const order = await waitFor(async () => {
        const seen = await system.order(orderId);
        return ['REFUNDED', 'DEPOSIT_FORFEITED'].includes(seen.status) && seen;
      }, { what: `${orderId} closed`, timeoutMs: 15_000 });
      await keptOnceSettled(orderId, order.status === 'DEPOSIT_FORFEITED' ? 10_000 : 0);
      await expect.poll(() => system.stockOf('NEXT-CONSOLE'), { timeout: 5_000 }).toEqual(before);
    });

    it.sequential('a presale with a coupon splits its payable into deposit and balance to the cent, and refunds of some lines after the balance give back their exact payables', async ({ expect }) => {
      const checkout = await system.request('POST', '/v1/orders', {
        token: system.token('hem'),
        headers: { 'idempotency-key': 'hem-coupon' },
        body: { items: [{ skuId: 'NEXT-PAD', qty: 3 }, { skuId: 'NEXT-CABLE', qty: 2 }], address: buyerAddress, couponCode: 'PRE-1001' },
      });
      expect(checkout.status).toBe(202);
      const orderId = checkout.body.orderId as string;
      const pending = await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
      const payable = pending.amounts.payableCents as number;
      expect(payable).toBe(3 * 3_333 + 2 * 999 - 1_001 + pending.amounts.shippingCents);
      const deposit = (await pay(orderId, 'hem')).body;
      expect(deposit.amountCents).toBe(Math.floor((payable * 20) / 100));
      await system.waitForStatus(orderId, 'DEPOSIT_PAID');
      const balance = (await pay(orderId, 'hem')).body;
      expect(deposit.amountCents + balance.amountCents).toBe(payable);
      const paid = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
      const line = (skuId: string) => paid.items.find((i: any) => i.skuId === skuId);
      const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('hem'), body: { reason: 'one pad too many', items: [{ skuId: 'NEXT-PAD', qty: 1 }] } });
      expect(refund.status).toBe(202);
      const refunds = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('hem') })).body.items;
      const pad = line('NEXT-PAD');
      // a unit's share of its line's payable, by largest remainder over the 3 units: never more than a third rounded up
      expect(refunds[0].amountCents).toBeGreaterThanOrEqual(Math.floor(pad.payableCents / 3));
      expect(refunds[0].amountCents).toBeLessThanOrEqual(Math.ceil(pad.payableCents / 3));
      // the rest: every cent paid comes back, each payment at most what it took
      const rest = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('hem'), body: { reason: 'all of it' } });
      expect(rest.status).toBe(202);
      await keptOnceSettled(orderId, 0);
      const { charges } = await atPaymentSystem(orderId);
      expect(charges.map((c) => [c.amountCents, c.refundedCents])).toEqual([
        [deposit.amountCents, deposit.amountCents],
        [balance.amountCents, balance.amountCents],
      ]);
    });
  });
});

// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { jobId } from '@orders/queues';
import { waitFor } from '@orders/testing';
import { closeUnpaidOrder } from '@orders/worker';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The payment system took the money and its signed callback never reached us: it gave up
 * retrying (10 s of retries at the simulator's default, an api restart or a network cut that
 * long). Nothing else would ever report that payment, so the order system asks the payment
 * system about it again, under the same payment id, once it has gone unreported for
 * PAYMENT_CONFIRMATION_WAIT_MS: it charges nothing twice and calls back again, and what it has of the
 * payment, looked up, settles it now as its callback would (the callbacks may be lost for good). Its answer
 * may be lost too (it came after our timeout): once the order closed, the payment is not asked for again (a
 * request that never reached the payment system would charge the buyer for a closed order) but looked up there.
 *
 * The payment system's faults, and the counts the tests read (asked again, given up, undecided), are
 * the whole system's: each group's tests run one after another on a system of the group's own, and the
 * groups side by side, as most of each test waits out PAYMENT_CONFIRMATION_WAIT_MS.
 */
describe('a payment whose callback is lost for good', () => {
  const started = async () => {
    // asked about again once unreported for 2 s; the sweep every second; a balance paid in time decides its order up to 30 s past its deadline;
    // a payment system answering after 1 s has its answer given up on; its breaker, opened by an outage or unanswered requests, lets a
    // request try again after 0.5 s rather than its default 10 s
    const system = await startOrderSystem('payment_callbacks_lost', {
      PAYMENT_CONFIRMATION_WAIT_MS: '2000',
      OVERDUE_SWEEP_INTERVAL_MS: '1000',
      PAYMENT_TIMEOUT_MS: '30000',
      PAYMENT_BREAKER_TIMEOUT_MS: '1000',
      PAYMENT_BREAKER_RESET_MS: '500',
      JOB_BACKOFF_MS: '300',
      PRESALE_DEPOSIT_PERCENT: '20',
      PRESALE_BALANCE_TIMEOUT_MS: '600000',
    });
    await system.createSku({ skuId: 'TV', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'NEXT-CONSOLE', priceCents: 50_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', orderType: 'presale' });
    return system;
  };
  // a test that failed leaves none of its faults to the next
  const noFaults = (system: OrderSystem) =>
    system.paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: false, latencyMs: 0, timeoutRate: 0, amountSkewCents: 0, paymentsUndecided: false, outage: false, declineRate: 0 } });

  /** What the tests do and read on their group's system. */
  const helpersOf = (the: () => OrderSystem) => {
    const pay = (buyer: string, orderId: string) => the().request('POST', `/v1/orders/${orderId}/pay`, { token: the().token(buyer), body: { method: 'card' } });
    const callbacksLost = (lost: boolean) => the().paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: lost } });
    const faults = (body: Record<string, unknown>) => the().paymentSim.request('PUT', '/__admin/faults', { body });
    const atPaymentSystem = async (orderId: string) => {
      const { payments, refunds } = (await the().paymentSim.request('GET', '/__admin/payments')).body;
      return { charges: payments.filter((p: any) => p.orderId === orderId), refunds: refunds.filter((r: any) => r.paymentId.startsWith(orderId)) };
    };
    /** Once the payment system has taken the payment (its callback lost): charged once. */
    const charged = (orderId: string, paymentId: string) =>
      waitFor(async () => (await atPaymentSystem(orderId)).charges.find((p: any) => p.paymentId === paymentId && p.charges === 1 && p.status === 'SUCCEEDED'), {
        what: `payment ${paymentId} taken`,
        timeoutMs: 10_000,
      });
    const givenBackCents = (refunds: any[], paymentId: string) => refunds.filter((r) => r.paymentId === paymentId).reduce((sum, r) => sum + r.amountCents, 0);
    /** The order's payment deadline passed, and it expired, as the overdue sweep does it. */
    const expireUnpaid = async (orderId: string) => {
      await the().passPaymentDeadline(orderId);
      await closeUnpaidOrder(the().workers.deps, { orderId, action: 'expire', actor: 'system', detail: 'payment deadline passed' });
    };
    /** Once the payment system has given something of the payment back: what it has of the order then. */
    const givenBack = (orderId: string, paymentId: string, what = 'the payment given back') =>
      waitFor(
        async () => {
          const found = await atPaymentSystem(orderId);
          return givenBackCents(found.refunds, paymentId) > 0 && found;
        },
        { what, timeoutMs: 20_000 },
      );
    /** The expired order's payment, taken once, is given back whole (10,000 cents), and the order stays EXPIRED. */
    const expectTakenOnceAndGivenBack = async (orderId: string, paymentId: string) => {
      const seen = await givenBack(orderId, paymentId);
      const order = await the().order(orderId);
      expect({ status: order.status, payments: order.payments.map((p: any) => p.status), charges: seen.charges.map((p: any) => p.charges), givenBackCents: givenBackCents(seen.refunds, paymentId) }).toEqual({
        status: 'EXPIRED',
        payments: ['SUCCEEDED'],
        charges: [1],
        givenBackCents: 10_000,
      });
    };
    const lookups = async (paymentId: string) => ((await the().paymentSim.request('GET', '/__admin/payments')).body.lookups as Array<{ paymentId: string; status: string }>).filter((l) => l.paymentId === paymentId);
    const requests = async (orderId: string, paymentId: string) => (await atPaymentSystem(orderId)).charges.find((p: any) => p.paymentId === paymentId)?.requests as number;
    const amountMismatches = async (outcome: string) => (await the().workers.deps.metrics.paymentAmountMismatches.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    const givenUp = async () => (await the().workers.deps.metrics.paymentsUnconfirmedGivenUp.get()).values[0]?.value ?? 0;
    const undecided = async () => (await the().workers.deps.metrics.paymentsUndecidedAtPaymentSystem.get()).values[0]?.value ?? 0;
    /** Opened a day and a minute ago, though sent only since. */
    const openedADayAgo = (paymentId: string) => sql`UPDATE payments SET created_at = UTC_TIMESTAMP(3) - INTERVAL 1441 MINUTE WHERE payment_id = ${paymentId}`.execute(the().env.db);
    /** Opened and first sent a day and a minute ago: past PAYMENT_CONFIRMATION_GIVE_UP_MS at its default, 24 h. */
    const firstSentADayAgo = (paymentId: string) =>
      sql`UPDATE payments SET created_at = UTC_TIMESTAMP(3) - INTERVAL 1441 MINUTE, first_requested_at = UTC_TIMESTAMP(3) - INTERVAL 1441 MINUTE WHERE payment_id = ${paymentId}`.execute(the().env.db);
    const askedAgain = async () => (await the().workers.deps.metrics.paymentConfirmationsAskedAgain.get()).values.reduce((sum, value) => sum + value.value, 0);
    return { pay, callbacksLost, faults, atPaymentSystem, charged, givenBackCents, expireUnpaid, givenBack, expectTakenOnceAndGivenBack, lookups, requests, amountMismatches, givenUp, undecided, openedADayAgo, firstSentADayAgo, askedAgain };
  };

  describe.concurrent('asked about again once unreported, it settles as its callback would', () => {
    let system: OrderSystem;
    const { pay, callbacksLost, faults, atPaymentSystem, charged, givenBackCents, expireUnpaid, givenBack, requests, amountMismatches, givenUp, openedADayAgo, askedAgain } = helpersOf(() => system);
    beforeAll(async () => {
      system = await started();
    });
    afterEach(async () => {
      if (system) await noFaults(system);
    });
    afterAll(async () => system?.close());

    it.sequential('taken for an order that expired meanwhile, is given back whole: the buyer has neither goods nor money kept', async ({ expect }) => {
      const orderId = await system.checkout('lou', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      await callbacksLost(true);
      const payment = (await pay('lou', orderId)).body;
      expect(payment).toMatchObject({ status: 'PENDING', amountCents: 10_000 });
      await charged(orderId, payment.paymentId);
      await expireUnpaid(orderId);
      expect((await system.order(orderId)).status).toBe('EXPIRED');
      const askedBefore = await askedAgain();

      // the payment system's callbacks get through again; none of this payment's is left to send
      await callbacksLost(false);
      const seen = await givenBack(orderId, payment.paymentId);

      const order = await system.order(orderId);
      expect({ status: order.status, payments: order.payments.map((p: any) => p.status), givenBackCents: givenBackCents(seen.refunds, payment.paymentId) }).toEqual({
        status: 'EXPIRED',
        payments: ['SUCCEEDED'],
        givenBackCents: 10_000,
      });
      // asked again, charged once
      expect(seen.charges.map((p: any) => p.charges)).toEqual([1]);
      expect(await askedAgain()).toBeGreaterThan(askedBefore);
    }, 40_000);

    it.sequential("a presale's balance taken, its deposit forfeited before anyone heard of it: the balance is given back, the deposit alone kept", async ({ expect }) => {
      const orderId = await system.checkout('bea', [{ skuId: 'NEXT-CONSOLE', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
      expect((await pay('bea', orderId)).body).toMatchObject({ purpose: 'deposit', amountCents: 10_000 });
      await system.waitForStatus(orderId, 'DEPOSIT_PAID');
      await callbacksLost(true);
      const balance = (await pay('bea', orderId)).body;
      expect(balance).toMatchObject({ purpose: 'balance', amountCents: 40_000 });
      await charged(orderId, balance.paymentId);
      // due a minute ago: past the 30 s a balance asked for in time may still take to be reported
      await system.env.db.updateTable('orders').set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL 60 SECOND` }).where('order_id', '=', orderId).execute();
      await (await system.workers.deps.queues.timers.getJob(jobId.expireBalance(orderId)))?.promote();
      await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', 10_000);

      await callbacksLost(false);
      const seen = await givenBack(orderId, balance.paymentId, 'the balance given back');

      const chargedCents = seen.charges.reduce((sum: number, p: any) => sum + p.charges * p.amountCents, 0);
      const givenBackInAll = seen.refunds.reduce((sum: number, r: any) => sum + r.amountCents, 0);
      expect({ status: (await system.order(orderId)).status, charged: chargedCents, givenBack: givenBackInAll, kept: chargedCents - givenBackInAll }).toEqual({
        status: 'DEPOSIT_FORFEITED',
        charged: 50_000,
        givenBack: 40_000,
        kept: 10_000,
      });
    }, 60_000);

    it.sequential("a presale's balance taken before its deadline pays the order, its callback lost: the deadline waits for it", async ({ expect }) => {
      const orderId = await system.checkout('cas', [{ skuId: 'NEXT-CONSOLE', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
      await pay('cas', orderId);
      await system.waitForStatus(orderId, 'DEPOSIT_PAID');
      await callbacksLost(true);
      const balance = (await pay('cas', orderId)).body;
      await charged(orderId, balance.paymentId);
      await system.env.db.updateTable('orders').set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3)` }).where('order_id', '=', orderId).execute();
      const deadlineJob = jobId.expireBalance(orderId);
      await (await system.workers.deps.queues.timers.getJob(deadlineJob))?.promote();
      // the deadline job has run and waits for the balance the buyer asked to pay in time
      await waitFor(async () => {
        const job = await system.workers.deps.queues.timers.getJob(deadlineJob);
        return job?.processedOn !== undefined && (await job.getState()) === 'delayed';
      }, { what: 'the balance deadline waiting for the balance' });
      expect((await system.order(orderId)).status).toBe('DEPOSIT_PAID');

      await callbacksLost(false);
      const paid = await waitFor(async () => {
        const order = await system.order(orderId);
        return order.status !== 'DEPOSIT_PAID' && order;
      }, { what: 'the balance reported', timeoutMs: 20_000 });
      expect(['PAID', 'IN_FULFILLMENT']).toContain(paid.status);
      expect(paid.payments.map((p: any) => [p.purpose, p.status])).toEqual([
        ['deposit', 'SUCCEEDED'],
        ['balance', 'SUCCEEDED'],
      ]);
      const seen = await atPaymentSystem(orderId);
      expect({ charged: seen.charges.reduce((sum: number, p: any) => sum + p.charges * p.amountCents, 0), refunds: seen.refunds }).toEqual({ charged: 50_000, refunds: [] });
    }, 60_000);

    it.sequential('taken for another amount, its order expired meanwhile, is given back whole and counted as an amount mismatch, as its callback would be', async ({ expect }) => {
      const orderId = await system.checkout('gus', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      // the payment system takes 5 euros more than asked, and its callback is lost
      await faults({ callbacksLost: true, amountSkewCents: 500 });
      const payment = (await pay('gus', orderId)).body;
      await charged(orderId, payment.paymentId);
      await faults({ amountSkewCents: 0 });
      await expireUnpaid(orderId);
      const before = await amountMismatches('given_back');

      await callbacksLost(false);
      const seen = await givenBack(orderId, payment.paymentId);
      const order = await system.order(orderId);
      expect({ status: order.status, payments: order.payments.map((p: any) => p.status), givenBackCents: givenBackCents(seen.refunds, payment.paymentId), mismatches: (await amountMismatches('given_back')) - before }).toEqual({
        status: 'EXPIRED',
        payments: ['SUCCEEDED'],
        givenBackCents: 10_500,
        mismatches: 1,
      });
    }, 60_000);

    it.sequential('declined in time, its callbacks lost, is failed by what the payment system has of it once asked about again: its buyer pays another way, the order paid', async ({ expect }) => {
      const orderId = await system.checkout('kim', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      await faults({ callbacksLost: true, declineRate: 1 });
      const first = (await pay('kim', orderId)).body;
      expect(first).toMatchObject({ status: 'PENDING', method: 'card' });
      const failed = await waitFor(async () => (await system.order(orderId)).payments.find((p: any) => p.paymentId === first.paymentId && p.status === 'FAILED'), { what: 'the declined payment failed', timeoutMs: 10_000 });
      expect(failed.transactionId).toBeTruthy();
      // its next pay, well inside the payment window, is a new attempt: the declined one no longer handed back
      await faults({ callbacksLost: false, declineRate: 0 });
      const again = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('kim'), body: { method: 'wallet' } });
      expect([again.status, again.body.paymentId === first.paymentId, again.body.method]).toEqual([202, false, 'wallet']);
      await waitFor(async () => (await system.order(orderId)).status !== 'PENDING_PAYMENT', { what: 'the order paid', timeoutMs: 10_000 });
    }, 60_000);

    it.sequential('opened a day ago while the payment system was away, sent only once it came back, its callbacks lost: asked for again and settled by what the payment system has of it, not given up', async ({ expect }) => {
      const orderId = await system.checkout('joy', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      // the payment system answers 503 to every request: nothing goes
      await faults({ outage: true, callbacksLost: true });
      const payment = (await pay('joy', orderId)).body;
      expect(payment.status).toBe('PENDING');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await openedADayAgo(payment.paymentId);
      const givenUpBefore = await givenUp();

      await faults({ outage: false });
      await charged(orderId, payment.paymentId);
      // asked for again PAYMENT_CONFIRMATION_WAIT_MS (2 s) after it was first sent, a day after it was opened, and settled by
      // what the payment system has of it, its callbacks lost: the order paid, charged once, nothing given up
      await waitFor(async () => (await system.order(orderId)).status !== 'PENDING_PAYMENT', { what: 'the order paid', timeoutMs: 10_000 });
      const seen = await atPaymentSystem(orderId);
      expect({ payments: (await system.order(orderId)).payments.map((p: any) => p.status), requests: await requests(orderId, payment.paymentId), charges: seen.charges.map((p: any) => p.charges), givenUp: (await givenUp()) - givenUpBefore }).toEqual({
        payments: ['SUCCEEDED'],
        requests: 2,
        charges: [1],
        givenUp: 0,
      });
    }, 60_000);
  });

  describe.concurrent('undecided at the payment system', () => {
    let system: OrderSystem;
    const { pay, faults, atPaymentSystem, expireUnpaid, expectTakenOnceAndGivenBack, lookups, givenUp, undecided, firstSentADayAgo, askedAgain } = helpersOf(() => system);
    beforeAll(async () => {
      system = await started();
    });
    afterEach(async () => {
      if (system) await noFaults(system);
    });
    afterAll(async () => system?.close());

    it.sequential('undecided at the payment system when its order expired, is neither failed nor taken: left PENDING and looked at again, given back once taken', async ({ expect }) => {
      const orderId = await system.checkout('fay', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      // the payment system receives the payment and decides nothing (PROCESSING), sending no callback
      await faults({ paymentsUndecided: true });
      const payment = (await pay('fay', orderId)).body;
      await waitFor(async () => (await atPaymentSystem(orderId)).charges.find((p: any) => p.paymentId === payment.paymentId), { what: 'the payment received', timeoutMs: 10_000 });
      await expireUnpaid(orderId);
      const askedBefore = await askedAgain();

      // looked up twice, PAYMENT_CONFIRMATION_WAIT_MS (2 s) apart, undecided both times
      const looked = await waitFor(async () => {
        const found = await lookups(payment.paymentId);
        return found.length >= 2 && found;
      }, { what: 'the payment looked up twice', timeoutMs: 20_000 });
      expect(looked.map((l) => l.status)).toEqual(looked.map(() => 'PROCESSING'));
      // its callback is not lost, the payment system has none to send yet: counted undecided, not asked again (PaymentConfirmationsLost)
      expect({ payments: (await system.order(orderId)).payments.map((p: any) => p.status), askedAgain: (await askedAgain()) - askedBefore, undecided: await undecided() }).toEqual({
        payments: ['PENDING'],
        askedAgain: 0,
        undecided: 1,
      });

      // decided (taken) when next looked up
      await faults({ paymentsUndecided: false });
      await expectTakenOnceAndGivenBack(orderId, payment.paymentId);
      expect(await undecided()).toBe(0);
    }, 60_000);

    it.sequential('undecided at the payment system a day after it was first sent, its order closed, is looked up no more and counted for an operator, no longer undecided, until an admin asks about it again', async ({ expect }) => {
      const orderId = await system.checkout('ida', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      await faults({ paymentsUndecided: true });
      const payment = (await pay('ida', orderId)).body;
      await waitFor(async () => (await atPaymentSystem(orderId)).charges.find((p: any) => p.paymentId === payment.paymentId), { what: 'the payment received', timeoutMs: 10_000 });
      await expireUnpaid(orderId);
      await waitFor(async () => (await lookups(payment.paymentId)).length >= 1, { what: 'the payment looked up', timeoutMs: 20_000 });
      const askAgain = (token: string, ofOrder = orderId) => system.request('POST', `/v1/orders/${ofOrder}/payments/${payment.paymentId}/ask-again`, { token, body: {} });
      const admin = system.token('ops', 'admin');
      // still asked about: nothing for an admin to ask
      const tooSoon = await askAgain(admin);
      expect([tooSoon.status, tooSoon.body.code, tooSoon.body.detail]).toEqual([409, 'PAYMENT_NOT_GIVEN_UP', `Payment ${payment.paymentId} is not one the payment system never reported on within PAYMENT_CONFIRMATION_GIVE_UP_MS: it is still asked about`]);
      const givenUpBefore = await givenUp();
      await firstSentADayAgo(payment.paymentId);
      // the lookup it waits for (PAYMENT_CONFIRMATION_WAIT_MS, 2 s) is its last
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const looked = (await lookups(payment.paymentId)).length;

      await new Promise((resolve) => setTimeout(resolve, 6_000));
      expect({ lookups: (await lookups(payment.paymentId)).length, payments: (await system.order(orderId)).payments.map((p: any) => p.status), givenUp: (await givenUp()) - givenUpBefore, undecided: await undecided() }).toEqual({
        lookups: looked,
        payments: ['PENDING'],
        givenUp: 1,
        undecided: 0,
      });

      // an admin finds its order among those holding a payment given up on, and no other order of the system there
      const listed = async () => (await system.request('GET', '/v1/admin/orders?paymentUnconfirmed=true&limit=100', { token: admin })).body.items.map((order: any) => order.orderId);
      expect(await listed()).toEqual([orderId]);
      // the provider has decided it (taken): an admin, and only an admin, asks about it again, under the order that holds it
      await faults({ paymentsUndecided: false });
      expect((await askAgain(system.token('ida'))).status).toBe(403);
      expect((await askAgain(admin, '01ARZ3NDEKTSV4RRFFQ69G5FAV')).status).toBe(404);
      const asked = await askAgain(admin);
      expect([asked.status, asked.body]).toEqual([200, expect.objectContaining({ paymentId: payment.paymentId, orderId, status: 'PENDING' })]);
      // looked up at once, not after another PAYMENT_CONFIRMATION_WAIT_MS: taken for an order that closed, it goes back whole
      await expectTakenOnceAndGivenBack(orderId, payment.paymentId);
      expect(await listed()).toEqual([]);
      // read at most once a second
      await expect.poll(async () => (await givenUp()) - givenUpBefore).toBe(0);
      const decided = await askAgain(admin);
      expect([decided.status, decided.body.detail]).toEqual([409, `Payment ${payment.paymentId} is not one the payment system never reported on within PAYMENT_CONFIRMATION_GIVE_UP_MS: it is SUCCEEDED`]);
    }, 90_000);
  });

  describe.concurrent('answered late, never answered, or never reported on', () => {
    let system: OrderSystem;
    const { pay, faults, atPaymentSystem, expireUnpaid, expectTakenOnceAndGivenBack, requests, givenUp, firstSentADayAgo } = helpersOf(() => system);
    beforeAll(async () => {
      system = await started();
    });
    afterEach(async () => {
      if (system) await noFaults(system);
    });
    afterAll(async () => system?.close());

    it.sequential('taken while its answer came after our timeout, for an order that then expired, is given back whole, not failed unasked', async ({ expect }) => {
      const orderId = await system.checkout('dan', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      // the payment system answers after 1.5 s, past our 1 s: no answer reaches us, nor a callback
      await faults({ callbacksLost: true, latencyMs: 1_500 });
      const payment = (await pay('dan', orderId)).body;
      expect(payment.status).toBe('PENDING');
      await waitFor(async () => (await atPaymentSystem(orderId)).charges.find((p: any) => p.paymentId === payment.paymentId && p.charges === 1 && p.status === 'SUCCEEDED'), {
        what: 'the payment taken',
        timeoutMs: 15_000,
      });
      await expireUnpaid(orderId);
      expect((await system.order(orderId)).status).toBe('EXPIRED');
      // its request job runs again meanwhile, the payment system as slow
      await new Promise((resolve) => setTimeout(resolve, 3_000));

      await faults({ callbacksLost: false, latencyMs: 0 });
      await expectTakenOnceAndGivenBack(orderId, payment.paymentId);
    }, 60_000);

    it.sequential('never taken, its requests held unanswered until our timeout, for an order that then expired, is failed without charging the buyer', async ({ expect }) => {
      const orderId = await system.checkout('eve', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      // every request reaches the payment system and is held unanswered, nothing charged
      await faults({ timeoutRate: 1 });
      const payment = (await pay('eve', orderId)).body;
      await waitFor(async () => ((await system.paymentSim.request('GET', '/__admin/payments')).body.requested as string[]).includes(payment.paymentId), { what: 'the payment requested', timeoutMs: 10_000 });
      await expireUnpaid(orderId);
      expect((await system.order(orderId)).status).toBe('EXPIRED');

      await faults({ timeoutRate: 0 });
      const failed = await waitFor(async () => {
        const order = await system.order(orderId);
        return order.payments.every((p: any) => p.status === 'FAILED') && order;
      }, { what: 'the payment failed', timeoutMs: 20_000 });
      expect({ status: failed.status, payments: failed.payments.map((p: any) => p.status) }).toEqual({ status: 'EXPIRED', payments: ['FAILED'] });
      // nothing asked for it since: the buyer was never charged
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(await atPaymentSystem(orderId)).toEqual({ charges: [], refunds: [] });
    }, 60_000);

    it.sequential('undecided at the payment system a day after it was first sent, its order still owing it, is asked for no more and counted for an operator; asked about again by an admin once decided there, it pays the order, charged once', async ({ expect }) => {
      const orderId = await system.checkout('hal', [{ skuId: 'TV', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      // received and held undecided there (PROCESSING: nothing taken, no callback, its lookups say so), its callbacks lost
      await faults({ callbacksLost: true, paymentsUndecided: true });
      const payment = (await pay('hal', orderId)).body;
      // asked for again every PAYMENT_CONFIRMATION_WAIT_MS (2 s) while its order owes it
      await waitFor(async () => (await requests(orderId, payment.paymentId)) >= 2, { what: 'the payment asked for again', timeoutMs: 10_000 });
      const givenUpBefore = await givenUp();
      await firstSentADayAgo(payment.paymentId);
      // a request under way when it was marked may still go
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const asked = await requests(orderId, payment.paymentId);

      await new Promise((resolve) => setTimeout(resolve, 6_000));
      expect({ requests: await requests(orderId, payment.paymentId), payments: (await system.order(orderId)).payments.map((p: any) => p.status), givenUp: (await givenUp()) - givenUpBefore }).toEqual({
        requests: asked,
        payments: ['PENDING'],
        givenUp: 1,
      });

      // the payment system decides it when next asked; an admin asks about it: its order still owes it, so it is asked for
      // again, under its own id, and settled by what the payment system has of it
      await faults({ paymentsUndecided: false });
      const again = await system.request('POST', `/v1/orders/${orderId}/payments/${payment.paymentId}/ask-again`, { token: system.token('ops', 'admin'), body: {} });
      expect([again.status, again.body.status]).toEqual([200, 'PENDING']);
      const paid = await waitFor(async () => {
        const order = await system.order(orderId);
        return order.status !== 'PENDING_PAYMENT' && order;
      }, { what: 'the order paid', timeoutMs: 15_000 });
      const seen = await atPaymentSystem(orderId);
      expect({ payments: paid.payments.map((p: any) => p.status), requests: (await requests(orderId, payment.paymentId)) > asked, charges: seen.charges.map((p: any) => p.charges), refunds: seen.refunds }).toEqual({
        payments: ['SUCCEEDED'],
        requests: true,
        charges: [1],
        refunds: [],
      });
      expect(['PAID', 'IN_FULFILLMENT']).toContain(paid.status);
      await expect.poll(async () => (await givenUp()) - givenUpBefore).toBe(0);
    }, 90_000);
  });
});

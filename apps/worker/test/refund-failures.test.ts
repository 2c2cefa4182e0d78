// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitFor } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * Each describe below starts an order system and a payment simulator of its own, so the three
 * run side by side while they wait on the simulator's delays and the confirmation sweeps; the
 * tests of one share its simulator's faults, so they run one after another.
 */
describe.concurrent('a refund the payment system reports as failed', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('refund_failures');
    await system.createSku({ skuId: 'TV', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    await system?.close();
  });

  const refundsOf = async (orderId: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('kim') })).body.items;
  const failedRefunds = async () => {
    const text = (await system.request('GET', '/metrics')).body as string;
    const count = /^order_refunds_total\{[^}]*kind="refund"[^}]*outcome="failed"[^}]*\} (\d+)/m.exec(text)?.[1];
    expect(count).toBeDefined();
    return Number(count);
  };

  it('keeps the money owed (order REFUNDING, part FAILED, counted) until the payment system confirms it after all', async ({ expect }) => {
    const orderId = await system.checkout('kim', [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('kim'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const failedBefore = await failedRefunds();
    // the payment system takes 3 s to answer the refund and 3 s more to confirm it
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 3_000 } });
    try {
      expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('kim'), body: { reason: 'changed my mind' } })).status).toBe(200);
      const part = await waitFor(async () => (await refundsOf(orderId))[0]?.parts[0], { what: 'the refund drawn from the payment' });
      // a payment system reports on a refund it was asked for: the worker's request reaches it first
      const refundsAtPaymentSystem = async () => (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as Array<{ refundId: string }>;
      await waitFor(async () => (await refundsAtPaymentSystem()).some((refund) => refund.refundId === part.partId), { what: 'the payment system to hold the refund' });
      const failed = await system.signedCallback('payment', { orderId, paymentId: part.paymentId, refundId: part.partId, transactionId: 'rfd-declined', status: 'FAILED', amountCents: part.amountCents, at: new Date().toISOString() });
      expect([failed.status, failed.body]).toEqual([200, { changed: true, status: 'REFUNDING' }]);
      const repeated = await system.signedCallback('payment', { orderId, paymentId: part.paymentId, refundId: part.partId, transactionId: 'rfd-declined', status: 'FAILED', amountCents: part.amountCents, at: new Date().toISOString() });
      expect(repeated.body.changed).toBe(false);
      expect(await failedRefunds()).toBe(failedBefore + 1);
      const [refund] = await refundsOf(orderId);
      expect([refund.status === 'SUCCEEDED', refund.parts.map((p: any) => p.status)]).toEqual([false, ['FAILED']]);
      expect((await system.order(orderId)).status).toBe('REFUNDING');
      // the payment system pays it back after all: its SUCCEEDED callback settles the part
      const refunded = await system.waitForStatus(orderId, 'REFUNDED', 20_000);
      expect(refunded.amounts.refundedCents).toBe(refunded.amounts.payableCents);
      expect((await refundsOf(orderId))[0].parts.map((p: any) => p.status)).toEqual(['SUCCEEDED']);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
  });
});

describe.concurrent('a refund the payment system could not pay back, paid back by the shop another way or asked for again', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('refund_settled_by_hand');
    await system.createSku({ skuId: 'TV', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: false, refundsDeclined: false } });
    await system?.close();
  });

  const refundsOf = async (orderId: string, buyer = 'noa') => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer) })).body.items;
  const refundsCounted = async (outcome: string) => {
    const text = (await system.request('GET', '/metrics')).body as string;
    return Number(new RegExp(`^order_refunds_total\\{[^}]*kind="refund"[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`, 'm').exec(text)?.[1]);
  };
  const settleByHand = (orderId: string, refundId: string, body: unknown, role: 'admin' | 'merchant' = 'admin') =>
    system.request('POST', `/v1/orders/${orderId}/refunds/${refundId}/settle-by-hand`, { token: system.token(role === 'admin' ? 'ops' : 'shop', role), body });
  const askAgain = (orderId: string, refundId: string, role: 'admin' | 'merchant' = 'admin') =>
    system.request('POST', `/v1/orders/${orderId}/refunds/${refundId}/ask-again`, { token: system.token(role === 'admin' ? 'ops' : 'shop', role), body: {} });
  /** The buyer's paid TV, cancelled once the payment system has `fault`; its refund once its part reads `partStatus`. */
  const cancelledWith = async (buyer: string, fault: { callbacksLost: true } | { refundsDeclined: true }, partStatus: 'SENT' | 'FAILED') => {
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: false, refundsDeclined: false } });
    const orderId = await system.checkout(buyer, [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    await system.paymentSim.request('PUT', '/__admin/faults', { body: fault });
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(buyer), body: { reason: 'changed my mind' } })).status).toBe(200);
    const [{ refundId, parts: [part] }] = await waitFor(async () => {
      const listed = await refundsOf(orderId, buyer);
      return listed[0]?.parts[0]?.status === partStatus && listed;
    }, { what: `the refund's part to be ${partStatus}` });
    return { orderId, refundId, part };
  };

  it.sequential('is settled by an admin naming how: the part SETTLED_BY_HAND with the reference, the refund SUCCEEDED by the admin, the order REFUNDED; the payment system paying it after all is counted as paying twice', async ({ expect }) => {
    // the payment system takes the refund but never confirms it on its own
    const { orderId, refundId, part } = await cancelledWith('noa', { callbacksLost: true }, 'SENT');

    // owed, not failed: the payment system may still pay it
    const early = await settleByHand(orderId, refundId, { reference: 'SEPA-0042' });
    expect([early.status, early.body.code]).toEqual([409, 'REFUND_NOT_FAILED']);
    expect([(await askAgain(orderId, refundId)).status, (await refundsOf(orderId))[0].parts.map((p: any) => p.status)]).toEqual([409, ['SENT']]);
    const failed = await system.signedCallback('payment', { orderId, paymentId: part.paymentId, refundId: part.partId, transactionId: 'rfd-declined', status: 'FAILED', amountCents: part.amountCents, at: new Date().toISOString() });
    expect([failed.status, failed.body]).toEqual([200, { changed: true, status: 'REFUNDING' }]);
    const settledBefore = await refundsCounted('settled_by_hand');

    // only an admin, naming how; a refund of another order is none of this one
    expect((await settleByHand(orderId, refundId, { reference: 'SEPA-0042' }, 'merchant')).status).toBe(403);
    expect((await settleByHand(orderId, refundId, {})).body.code).toBe('VALIDATION_FAILED');
    expect((await settleByHand(orderId, refundId, { reference: '   ' })).body.code).toBe('VALIDATION_FAILED');
    const otherOrder = await system.checkout('eli', [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(otherOrder, 'PENDING_PAYMENT');
    expect((await settleByHand(otherOrder, refundId, { reference: 'SEPA-0042' })).status).toBe(404);
    expect((await refundsOf(orderId))[0].parts.map((p: any) => p.status)).toEqual(['FAILED']);

    const settled = await settleByHand(orderId, refundId, { reference: 'SEPA-0042' });
    expect(settled.status).toBe(200);
    expect(settled.body).toMatchObject({ refundId, status: 'SUCCEEDED', parts: [{ partId: part.partId, status: 'SETTLED_BY_HAND', settledReference: 'SEPA-0042' }] });
    expect(settled.body.history.at(-1)).toMatchObject({ to: 'SUCCEEDED', actor: 'admin' });
    const refunded = await system.waitForStatus(orderId, 'REFUNDED');
    expect(refunded.amounts.refundedCents).toBe(refunded.amounts.payableCents);
    expect(await refundsCounted('settled_by_hand')).toBe(settledBefore + 1);
    // sent again (a lost answer): the same refund, nothing counted twice
    const again = await settleByHand(orderId, refundId, { reference: 'SEPA-0042' });
    expect([again.status, again.body.status, again.body.parts]).toEqual([200, 'SUCCEEDED', settled.body.parts]);
    expect(await refundsCounted('settled_by_hand')).toBe(settledBefore + 1);

    // the payment system pays it back after all: nothing changes here, but the buyer has it twice, and an operator must hear of it
    const paidTwiceBefore = await refundsCounted('succeeded_after_settled_by_hand');
    const late = await system.signedCallback('payment', { orderId, paymentId: part.paymentId, refundId: part.partId, transactionId: 'rfd-late', status: 'SUCCEEDED', amountCents: part.amountCents, at: new Date().toISOString() });
    expect([late.status, late.body]).toEqual([200, { changed: false, status: 'REFUNDED' }]);
    expect(await refundsCounted('succeeded_after_settled_by_hand')).toBe(paidTwiceBefore + 1);
    expect((await refundsOf(orderId))[0].parts.map((p: any) => p.status)).toEqual(['SETTLED_BY_HAND']);
  });

  it.sequential('is asked for again by an admin under a new part, which the payment system pays: the declined part ASKED_AGAIN naming it, the refund SUCCEEDED, the order REFUNDED; the declined part paid after all counts as paying twice', async ({ expect }) => {
    // the payment system declines every refund (the buyer's card blocked, say), then stops declining
    const { orderId, refundId, part } = await cancelledWith('ivy', { refundsDeclined: true }, 'FAILED');
    // only an admin; a refund of another order is none of this one
    expect((await askAgain(orderId, refundId, 'merchant')).status).toBe(403);
    const otherOrder = await system.checkout('eli', [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(otherOrder, 'PENDING_PAYMENT');
    expect((await askAgain(otherOrder, refundId)).status).toBe(404);
    expect((await refundsOf(orderId, 'ivy'))[0].parts.map((p: any) => p.status)).toEqual(['FAILED']);

    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    const askedBefore = await refundsCounted('asked_again');
    const asked = await askAgain(orderId, refundId);
    expect(asked.status).toBe(200);
    const [declinedPart, newPart] = asked.body.parts;
    expect(declinedPart).toEqual({ ...part, status: 'ASKED_AGAIN', askedAgainAs: newPart.partId });
    expect(newPart).toMatchObject({ paymentId: part.paymentId, amountCents: part.amountCents });
    expect(newPart.partId).not.toBe(part.partId);
    expect(asked.body.history).toContainEqual(expect.objectContaining({ to: 'PENDING', actor: 'admin' }));
    expect(await refundsCounted('asked_again')).toBe(askedBefore + 1);

    // the payment job sends the new part; the payment system pays it and says so
    const refunded = await system.waitForStatus(orderId, 'REFUNDED');
    expect(refunded.amounts.refundedCents).toBe(refunded.amounts.payableCents);
    const [settled] = await refundsOf(orderId, 'ivy');
    expect([settled.status, settled.parts.map((p: any) => [p.partId, p.status])]).toEqual([
      'SUCCEEDED',
      [
        [part.partId, 'ASKED_AGAIN'],
        [newPart.partId, 'SUCCEEDED'],
      ],
    ]);
    const paidBack = (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as Array<{ refundId: string; paymentId: string; amountCents: number }>;
    expect(paidBack.filter((refund) => refund.paymentId === part.paymentId).map((refund) => [refund.refundId, refund.amountCents])).toEqual([[newPart.partId, part.amountCents]]);
    // sent again (a lost answer): the refund as it is, nothing asked or counted twice
    const again = await askAgain(orderId, refundId);
    expect([again.status, again.body.parts]).toEqual([200, settled.parts]);
    expect(await refundsCounted('asked_again')).toBe(askedBefore + 1);

    // the payment system pays the declined part after all: nothing changes here, but the buyer has it twice, and an operator must hear of it
    const paidTwiceBefore = await refundsCounted('succeeded_after_asked_again');
    const late = await system.signedCallback('payment', { orderId, paymentId: part.paymentId, refundId: part.partId, transactionId: 'rfd-late', status: 'SUCCEEDED', amountCents: part.amountCents, at: new Date().toISOString() });
    expect([late.status, late.body]).toEqual([200, { changed: false, status: 'REFUNDED' }]);
    expect(await refundsCounted('succeeded_after_asked_again')).toBe(paidTwiceBefore + 1);
    expect((await refundsOf(orderId, 'ivy'))[0].parts.map((p: any) => p.status)).toEqual(['ASKED_AGAIN', 'SUCCEEDED']);
  });

  it.sequential('puts a cancelled order\'s units back on sale once when its declined refund is asked for again after Redis forgot the restock (RESTOCK_MARKER_TTL_MS)', async ({ expect }) => {
    const { orderId, refundId } = await cancelledWith('ida', { refundsDeclined: true }, 'FAILED');
    const before = await system.stockOf('TV');
    // 91 days on: the refund is that old, and Redis's marker of its restock has expired
    await sql`UPDATE refunds SET created_at = UTC_TIMESTAMP(3) - INTERVAL 91 DAY WHERE refund_id = ${refundId}`.execute(system.env.db);
    const keys = system.workers.deps.inventory.keys;
    expect(await system.env.redis.del(keys.restock(keys.groupOfOrder(orderId), refundId))).toBe(1);
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    expect((await askAgain(orderId, refundId)).status).toBe(200);
    await system.waitForStatus(orderId, 'REFUNDED', 20_000);
    expect(await system.stockOf('TV')).toEqual(before);
  });
});

describe.concurrent('a refund the payment system accepted and never confirmed (its callback lost, or the refund held undecided)', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // asked again once unconfirmed for 2 s; the sweep every 500 ms
    system = await startOrderSystem('refund_unconfirmed', { REFUND_CONFIRMATION_WAIT_MS: '2000', OVERDUE_SWEEP_INTERVAL_MS: '500' });
    await system.createSku({ skuId: 'TV', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  // a test that failed leaves none of its faults to the next
  afterEach(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: false, refundsUndecided: false } });
  });
  afterAll(async () => system?.close());

  const callbacksLost = (lost: boolean) => system.paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: lost } });
  const refundsUndecided = (held: boolean) => system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsUndecided: held } });
  const buyersRefunds = async (buyer: string, orderId: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer) })).body.items;
  /** How many times the payment system was asked for the refund part (it pays it once), paid or held undecided. */
  const requests = async (partId: string) => {
    const { refunds, undecidedRefunds } = (await system.paymentSim.request('GET', '/__admin/payments')).body as Record<string, Array<{ refundId: string; requests: number }>>;
    return [...(refunds ?? []), ...(undecidedRefunds ?? [])].find((r) => r.refundId === partId)?.requests ?? 0;
  };
  const givenUp = async () => (await system.workers.deps.metrics.refundsUnconfirmedGivenUp.get()).values[0]?.value ?? 0;
  /** A TV bought and paid by `buyer`, with its warehouse. */
  const inFulfilment = async (buyer: string) => {
    const orderId = await system.checkout(buyer, [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    return orderId;
  };
  /** First sent a day and a minute ago: past REFUND_CONFIRMATION_GIVE_UP_MS at its default, 24 h. */
  const sentADayAgo = (partId: string) => sql`UPDATE refund_parts SET sent_at = UTC_TIMESTAMP(3) - INTERVAL 1441 MINUTE WHERE part_id = ${partId}`.execute(system.env.db);

  it.sequential('is asked for again, and the buyer is paid back once: the order REFUNDED', async ({ expect }) => {
    const orderId = await inFulfilment('lea');

    await system.paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: true } });
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('lea'), body: { reason: 'changed my mind' } })).status).toBe(200);
    const refundsOf = async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('lea') })).body.items;
    // accepted by the payment system, its confirmation lost
    const part = await waitFor(async () => (await refundsOf())[0]?.parts.find((p: any) => p.status === 'SENT'), { what: 'the refund accepted by the payment system' });
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: false } });

    const refunded = await system.waitForStatus(orderId, 'REFUNDED', 20_000);
    expect(refunded.amounts.refundedCents).toBe(refunded.amounts.payableCents);
    expect((await refundsOf())[0].parts.map((p: any) => p.status)).toEqual(['SUCCEEDED']);
    // asked twice, paid once
    const atPaymentSystem = (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as Array<{ refundId: string; amountCents: number }>;
    expect(atPaymentSystem.filter((refund) => refund.refundId === part.partId).map((refund) => refund.amountCents)).toEqual([10_000]);
  });
  it.sequential('whose callbacks never come, is paid back once when asked for again: the payment system answers it paid, and the order is REFUNDED', async ({ expect }) => {
    const orderId = await inFulfilment('ida');
    // lost for good, as with a wrong CALLBACK_BASE_URL: no callback of this refund ever comes
    await callbacksLost(true);
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ida'), body: { reason: 'changed my mind' } })).status).toBe(200);

    const refunded = await system.waitForStatus(orderId, 'REFUNDED', 20_000);
    expect(refunded.amounts.refundedCents).toBe(refunded.amounts.payableCents);
    const [refund] = await buyersRefunds('ida', orderId);
    expect([refund.status, refund.parts.map((p: any) => p.status)]).toEqual(['SUCCEEDED', ['SUCCEEDED']]);
    const paidBack = (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as Array<{ refundId: string; amountCents: number; requests: number }>;
    expect(paidBack.filter((r) => r.refundId === refund.parts[0].partId).map((r) => [r.amountCents, r.requests])).toEqual([[10_000, 2]]);
  });
  it.sequential('never confirmed a day after it was first sent, is asked for no more and counted for an operator: the order waits in REFUNDING', async ({ expect }) => {
    const orderId = await inFulfilment('ned');
    // accepted, and still undecided whenever it is asked for again
    await refundsUndecided(true);
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ned'), body: { reason: 'changed my mind' } })).status).toBe(200);
    const part = await waitFor(async () => (await buyersRefunds('ned', orderId))[0]?.parts.find((p: any) => p.status === 'SENT'), { what: 'the refund accepted by the payment system' });
    // asked for again every REFUND_CONFIRMATION_WAIT_MS (2 s)
    await waitFor(async () => (await requests(part.partId)) >= 2, { what: 'the refund asked for again', timeoutMs: 10_000 });
    const givenUpBefore = await givenUp();
    await sentADayAgo(part.partId);
    // a request under way when it was marked may still go
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const asked = await requests(part.partId);

    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect({
      requests: await requests(part.partId),
      parts: (await buyersRefunds('ned', orderId))[0].parts.map((p: any) => p.status),
      order: (await system.order(orderId)).status,
      givenUp: (await givenUp()) - givenUpBefore,
    }).toEqual({ requests: asked, parts: ['SENT'], order: 'REFUNDING', givenUp: 1 });

    // an admin finds it among the orders whose refunds are asked about no more
    const unconfirmedOrders = async () => (await system.request('GET', '/v1/admin/orders?refundUnconfirmed=true', { token: system.token('ops', 'admin') })).body.items.map((o: any) => o.orderId);
    expect(await unconfirmedOrders()).toEqual([orderId]);

    // the provider decides it now and can call back: an admin asks again, under the part's own id, so it is paid once
    await refundsUndecided(false);
    const [{ refundId }] = await buyersRefunds('ned', orderId);
    const askAgain = () => system.request('POST', `/v1/orders/${orderId}/refunds/${refundId}/ask-again`, { token: system.token('ops', 'admin'), body: {} });
    const sentAgainCounted = async () => {
      const text = (await system.request('GET', '/metrics')).body as string;
      return Number(/^order_refunds_total\{[^}]*kind="refund"[^}]*outcome="sent_again"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const sentAgainBefore = await sentAgainCounted();
    const askedAgain = await askAgain();
    expect([askedAgain.status, askedAgain.body.parts.map((p: any) => p.partId)]).toEqual([200, [part.partId]]);
    expect(await sentAgainCounted()).toBe(sentAgainBefore + 1);
    expect(askedAgain.body.history.at(-1)).toMatchObject({ to: 'PENDING', actor: 'admin' });
    const refunded = await system.waitForStatus(orderId, 'REFUNDED', 20_000);
    expect(refunded.amounts.refundedCents).toBe(refunded.amounts.payableCents);
    const paidBack = (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as Array<{ refundId: string; amountCents: number }>;
    expect({
      parts: (await buyersRefunds('ned', orderId))[0].parts.map((p: any) => [p.partId, p.status]),
      paidBack: paidBack.filter((refund) => refund.refundId === part.partId).map((refund) => refund.amountCents),
    }).toEqual({ parts: [[part.partId, 'SUCCEEDED']], paidBack: [10_000] });
    // the gauge is read from MySQL at most once a second
    await expect.poll(givenUp).toBe(givenUpBefore);
    expect(await unconfirmedOrders()).toEqual([]);
    // sent again (a lost answer): the refund as it is, nothing asked for again
    const again = await askAgain();
    expect([again.status, again.body.status, await requests(part.partId)]).toEqual([200, 'SUCCEEDED', asked + 1]);
    expect(await sentAgainCounted()).toBe(sentAgainBefore + 1);
  }, 90_000);
});

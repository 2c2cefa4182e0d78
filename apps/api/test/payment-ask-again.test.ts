// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { QUEUE, jobId } from '@orders/queues';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

/**
 * What an admin's ask-again of a payment answers for a payment nothing has given up on: the
 * payment system is asked about a payment only once PAYMENT_CONFIRMATION_GIVE_UP_MS has passed
 * without a word of it (payment-callbacks-lost.test.ts asks about one). No worker serves the
 * payments queue here: the buyers' payments wait in it, never sent, as behind an open breaker.
 */
describe("an admin's ask-again of a payment that was not given up on", () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('payment_ask_again', { WORKER_QUEUES: 'orders,timers,fulfillment' });
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const paid = async (buyer: string) => {
    const orderId = await system.checkout(buyer, [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const payment = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    expect(payment.status).toBe(202);
    return { orderId, paymentId: payment.body.paymentId as string };
  };
  const askAgain = (orderId: string, paymentId: string, token = system.token('ops', 'admin')) =>
    system.request('POST', `/v1/orders/${orderId}/payments/${paymentId}/ask-again`, { token, body: {} });
  const refusal = (paymentId: string, why: string) => ({ code: 'PAYMENT_NOT_GIVEN_UP', detail: `Payment ${paymentId} is not one the payment system never reported on within PAYMENT_CONFIRMATION_GIVE_UP_MS: ${why}` });

  it('refuses a payment never sent, another order’s, and any caller but an admin, and changes nothing', async () => {
    const { orderId, paymentId } = await paid('ann');
    const other = await paid('bob');
    const never = await askAgain(orderId, paymentId);
    expect([never.status, never.body]).toEqual([409, expect.objectContaining(refusal(paymentId, 'it was never sent'))]);
    expect((await askAgain(other.orderId, paymentId)).status).toBe(404);
    expect((await askAgain(orderId, 'no-such-payment')).status).toBe(404);
    expect((await askAgain(orderId, paymentId, system.token('ann'))).status).toBe(403);
    expect((await askAgain(orderId, paymentId, system.token('shop', 'merchant'))).status).toBe(403);
    expect((await askAgain(orderId, paymentId, '')).status).toBe(401);
    const order = await system.order(orderId);
    expect({ status: order.status, payments: order.payments.map((p: any) => [p.status, p.firstSentAt]) }).toEqual({ status: 'PENDING_PAYMENT', payments: [['PENDING', null]] });
    expect(await system.workers.deps.queues.payments.getJobState(jobId.requestPayment(paymentId))).toBe('waiting');
  });

  it("points at the dead letter of a payment whose request job failed for good: replaying it asks again", async () => {
    const { orderId, paymentId } = await paid('cy');
    // the request job failed for good (a worker of the test's own takes it: none serves the queue)
    const failing = new Worker(QUEUE.payments, null, { connection: system.env.redis, prefix: system.env.config.QUEUE_PREFIX, autorun: false });
    try {
      // the other tests' payments wait in the queue too: taken first, each goes back as it was
      const others = [];
      let job = await failing.getNextJob('failing', { block: false });
      while (job && job.id !== jobId.requestPayment(paymentId)) {
        others.push(job);
        job = await failing.getNextJob('failing', { block: false });
      }
      expect(job?.id).toBe(jobId.requestPayment(paymentId));
      // for good, its attempts left or not
      await job!.moveToFailed(new UnrecoverableError('the payment system refused the connection'), 'failing');
      for (const other of others) await other.moveToWait('failing');
    } finally {
      await failing.close();
    }
    const asked = await askAgain(orderId, paymentId);
    expect([asked.status, asked.body]).toEqual([409, expect.objectContaining(refusal(paymentId, 'its request job failed for good; replay its dead letter, which asks again'))]);
    expect(await system.workers.deps.queues.payments.getJobState(jobId.requestPayment(paymentId))).toBe('failed');
  });
});

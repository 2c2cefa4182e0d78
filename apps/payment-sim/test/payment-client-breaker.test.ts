import { ExternalRefused, ExternalUnavailable, PaymentClient } from '@orders/clients';
import { createMetrics } from '@orders/metrics';
import { buildPaymentSim } from '@orders/payment-sim';
import { waitFor } from '@orders/testing';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The client's timeout and the breaker's time open: far longer than this process's own calls to the
 * simulator take on a busy box (a healthy call timed out, or a breaker half-open before the test's next
 * call, would be another test), yet short for the test to wait out.
 */
const TIMEOUT_MS = 1_000;
const RESET_MS = 1_500;

describe('the payment client behind its breaker, against the simulator’s faults', () => {
  let sim: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    sim = await buildPaymentSim({ latencyMs: 0, failureRate: 0, timeoutRate: 0, outage: false, declineRate: 0, refusalRate: 0, amountSkewCents: 0, refundsDeclined: false, callbacksLost: false, paymentsUndecided: false, refundsUndecided: false, callbackSecret: 'test-callback-secret-0123', callbackAttempts: 1, callbackRetryMs: 10, logLevel: 'silent' });
    url = await sim.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => sim?.close());

  const faults = (body: Record<string, unknown>) => sim.inject({ method: 'PUT', url: '/__admin/faults', payload: body });
  const newClient = () => {
    const metrics = createMetrics({ app: 'test' });
    // 1 s timeout; opens after 2 calls with more than half failed; probes again after 1.5 s
    const client = new PaymentClient(url, { timeoutMs: TIMEOUT_MS, errorThresholdPercent: 50, resetMs: RESET_MS, volumeThreshold: 2, retryDelayMs: 50 }, metrics);
    const outcome = async (name: string) => (await metrics.externalCalls.get()).values.find((v) => v.labels.outcome === name)?.value ?? 0;
    const state = async (breaker = 'payment') => (await metrics.circuitBreakerState.get()).values.find((v) => v.labels.breaker === breaker)?.value;
    return { client, outcome, state };
  };
  const payment = (n: number) => ({ paymentId: `p-${n}-${Date.now()}`, orderId: `o-${n}`, amountCents: 100, method: 'card', notifyUrl: 'http://127.0.0.1:9/none' });

  it('gives up on a payment system that does not answer within its timeout (1 s) and counts a timeout', async () => {
    const { client, outcome } = newClient();
    await faults({ timeoutRate: 1 });
    const started = Date.now();
    const failed = await client.requestPayment(payment(1)).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(ExternalUnavailable);
    // the request reached the payment system, which may have acted on it before its answer was given up on
    expect((failed as ExternalUnavailable).mayHaveActed).toBe(true);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 2_000);
    expect(await outcome('timeout')).toBe(1);
    await faults({ timeoutRate: 0 });
    client.shutdown();
  });

  it('opens after an outage’s failures, rejects without calling, and closes again once a probe succeeds', async () => {
    const { client, outcome, state } = newClient();
    await faults({ outage: true });
    for (const n of [2, 3]) {
      const failed = await client.requestPayment(payment(n)).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(ExternalUnavailable);
      // a 503 is tried again after the settings' delay, not at once; it did nothing there
      expect([(failed as ExternalUnavailable).retryAfterMs, (failed as ExternalUnavailable).mayHaveActed]).toEqual([50, false]);
    }
    expect(await state()).toBe(2);
    const rejected = await client.requestPayment(payment(4)).catch((error: unknown) => error);
    expect(rejected).toBeInstanceOf(ExternalUnavailable);
    // never sent
    expect([(rejected as ExternalUnavailable).retryAfterMs, (rejected as ExternalUnavailable).mayHaveActed]).toEqual([RESET_MS, false]);
    expect([await outcome('failure'), await outcome('rejected')]).toEqual([2, 1]);

    await faults({ outage: false });
    await waitFor(async () => (await state()) === 1, { what: 'half-open', timeoutMs: RESET_MS + 10_000, intervalMs: 20 });
    await expect(client.requestPayment(payment(5))).resolves.toMatchObject({ status: 'PROCESSING' });
    expect(await state()).toBe(0);
    client.shutdown();
  });

  it('says a request answered 500 may have been acted on, and one whose connection was refused was not', async () => {
    const { client } = newClient();
    await faults({ failureRate: 1 });
    const failed = await client.requestPayment(payment(6)).catch((error: unknown) => error);
    await faults({ failureRate: 0 });
    expect([failed instanceof ExternalUnavailable, (failed as ExternalUnavailable).mayHaveActed]).toEqual([true, true]);
    client.shutdown();

    // nothing listens on the port any more
    const gone = Fastify();
    const goneUrl = await gone.listen({ host: '127.0.0.1', port: 0 });
    await gone.close();
    const unreached = new PaymentClient(goneUrl, { timeoutMs: TIMEOUT_MS, errorThresholdPercent: 50, resetMs: RESET_MS, volumeThreshold: 2, retryDelayMs: 50 }, createMetrics({ app: 'test' }));
    const refused = await unreached.requestPayment(payment(7)).catch((error: unknown) => error);
    expect([refused instanceof ExternalUnavailable, (refused as ExternalUnavailable).mayHaveActed]).toEqual([true, false]);
    unreached.shutdown();
  });

  it('does not hold a refused request (4xx) against the payment system', async () => {
    const { client, outcome, state } = newClient();
    for (let n = 0; n < 5; n++) {
      await expect(client.refund({ refundId: `r-${n}`, paymentId: 'no-such-payment', amountCents: 100 })).rejects.toBeInstanceOf(ExternalRefused);
    }
    expect(await state('payment_refunds')).toBe(0);
    expect([await outcome('refused'), await outcome('failure'), await outcome('success')]).toEqual([5, 0, 0]);
    client.shutdown();
  });

  it('waits out a payment system that throttles (429) or times a request out (408) as it asks, and opens the breaker on it, instead of failing the payment', async () => {
    const throttling = Fastify();
    let answered = 0;
    throttling.post('/v1/payments', async (_request, reply) => (answered++ % 2 === 0 ? reply.code(429).header('retry-after', '2').send({ error: 'slow down' }) : reply.code(408).send({ error: 'timeout' })));
    const throttlingUrl = await throttling.listen({ host: '127.0.0.1', port: 0 });
    const metrics = createMetrics({ app: 'test' });
    const client = new PaymentClient(throttlingUrl, { timeoutMs: TIMEOUT_MS, errorThresholdPercent: 50, resetMs: RESET_MS, volumeThreshold: 2, retryDelayMs: 50 }, metrics);
    try {
      const throttled = await client.requestPayment(payment(7)).catch((error: unknown) => error);
      expect(throttled).toBeInstanceOf(ExternalUnavailable);
      expect((throttled as ExternalUnavailable).retryAfterMs).toBe(2_000);
      const timedOut = await client.requestPayment(payment(8)).catch((error: unknown) => error);
      // no retry-after: the settings' delay
      expect([timedOut instanceof ExternalUnavailable, (timedOut as ExternalUnavailable).retryAfterMs]).toEqual([true, 50]);
      const state = (await metrics.circuitBreakerState.get()).values.find((v) => v.labels.breaker === 'payment')?.value;
      expect(state).toBe(2);
      expect((await metrics.externalCalls.get()).values.find((v) => v.labels.outcome === 'refused')).toBeUndefined();
    } finally {
      client.shutdown();
      await throttling.close();
    }
  });

  it("takes buyers' payments while its refunds fail and their breaker is open", async () => {
    const refundsFailing = Fastify();
    refundsFailing.post('/v1/refunds', async (_request, reply) => reply.code(500).send({ error: 'refunds are down' }));
    refundsFailing.post('/v1/payments', async (_request, reply) => reply.code(202).send({ paymentId: 'p', status: 'PROCESSING' }));
    const failingUrl = await refundsFailing.listen({ host: '127.0.0.1', port: 0 });
    const client = new PaymentClient(failingUrl, { timeoutMs: TIMEOUT_MS, errorThresholdPercent: 50, resetMs: RESET_MS, volumeThreshold: 2, retryDelayMs: 50 }, createMetrics({ app: 'test' }));
    try {
      for (const n of [1, 2, 3]) await expect(client.refund({ refundId: `r-down-${n}`, paymentId: 'p', amountCents: 100 })).rejects.toBeInstanceOf(ExternalUnavailable);

      await expect(client.requestPayment(payment(11))).resolves.toMatchObject({ status: 'PROCESSING' });
    } finally {
      client.shutdown();
      await refundsFailing.close();
    }
  });

  it('charges a payment id once however often it is requested', async () => {
    const { client } = newClient();
    const p = payment(6);
    for (let i = 0; i < 3; i++) await client.requestPayment(p);
    const recorded = (await sim.inject({ method: 'GET', url: '/__admin/payments' })).json().payments.find((c: { paymentId: string }) => c.paymentId === p.paymentId);
    expect([recorded.charges, recorded.requests]).toEqual([1, 3]);
    client.shutdown();
  });

  it('reads a payment as the payment system has it without acting on it, null for one it never received, and waits out its outage', async () => {
    const { client } = newClient();
    const p = payment(9);
    expect(await client.paymentStatus(p.paymentId)).toBeNull();
    await client.requestPayment(p);
    const found = await client.paymentStatus(p.paymentId);
    expect(found).toMatchObject({ paymentId: p.paymentId, orderId: p.orderId, status: 'SUCCEEDED', amountCents: 100 });
    expect(found?.transactionId).toMatch(/^txn_/);
    // asked about, charged and requested no more
    const recorded = (await sim.inject({ method: 'GET', url: '/__admin/payments' })).json().payments.find((c: { paymentId: string }) => c.paymentId === p.paymentId);
    expect([recorded.charges, recorded.requests]).toEqual([1, 1]);
    await faults({ outage: true });
    const away = await client.paymentStatus(p.paymentId).catch((error: unknown) => error);
    await faults({ outage: false });
    expect(away).toBeInstanceOf(ExternalUnavailable);
    client.shutdown();
  });

  it('reads a payment the payment system has not decided yet as PROCESSING, and decided once it has', async () => {
    const { client } = newClient();
    const p = payment(10);
    await faults({ paymentsUndecided: true });
    await client.requestPayment(p);
    const undecided = await client.paymentStatus(p.paymentId);
    await faults({ paymentsUndecided: false });
    expect(undecided).toMatchObject({ paymentId: p.paymentId, status: 'PROCESSING' });
    expect(await client.paymentStatus(p.paymentId)).toMatchObject({ paymentId: p.paymentId, status: 'SUCCEEDED', amountCents: 100 });
    client.shutdown();
  });
});

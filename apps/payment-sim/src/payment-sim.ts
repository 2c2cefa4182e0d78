import { randomUUID } from 'node:crypto';
import type { Config } from '@orders/config';
import { createSimulator, type CommonFaults, type SimulatorOptions } from '@orders/simulation';
import type { FastifyInstance } from 'fastify';

/** The faults the simulator injects; changeable at run time through PUT /__admin/faults. */
export interface PaymentFaults extends CommonFaults {
  /** share of payments declined (the callback says FAILED) */
  declineRate: number;
  /** share of payment requests refused outright (402): nothing charged, no callback */
  refusalRate: number;
  /** cents charged, and reported, beyond (or, negative, short of) what each payment asked: a payment system's bug */
  amountSkewCents: number;
  /** every refund asked for is declined (answered, or called back, FAILED), nothing given back: asked again once this is off, it goes through */
  refundsDeclined: boolean;
  /** no callback is sent, payments' nor refunds': a payment system that lost them for good */
  callbacksLost: boolean;
  /** payments received are held undecided (PROCESSING: nothing taken, no callback); once this is off, one held is decided when next asked for or about */
  paymentsUndecided: boolean;
  /** refunds received are held undecided (PROCESSING: nothing given back, no callback); once this is off, one held is paid when next asked for */
  refundsUndecided: boolean;
}

export interface PaymentSimOptions extends PaymentFaults, SimulatorOptions {}

/** The simulator's settings as configured (PAYMENT_SIM_*, the payment callback secret). */
export function paymentSimOptions(config: Config): PaymentSimOptions {
  return {
    latencyMs: config.PAYMENT_SIM_LATENCY_MS,
    failureRate: config.PAYMENT_SIM_FAILURE_RATE,
    timeoutRate: config.PAYMENT_SIM_TIMEOUT_RATE,
    outage: config.PAYMENT_SIM_OUTAGE,
    declineRate: config.PAYMENT_SIM_DECLINE_RATE,
    refusalRate: config.PAYMENT_SIM_REFUSAL_RATE,
    amountSkewCents: 0,
    refundsDeclined: false,
    callbacksLost: false,
    paymentsUndecided: false,
    refundsUndecided: false,
    callbackSecret: config.PAYMENT_CALLBACK_SECRET,
    callbackAttempts: config.SIM_CALLBACK_ATTEMPTS,
    callbackRetryMs: config.SIM_CALLBACK_RETRY_MS,
    logLevel: config.LOG_LEVEL,
  };
}

interface Charge {
  paymentId: string;
  orderId: string;
  amountCents: number;
  method: string;
  status: 'SUCCEEDED' | 'FAILED' | 'PROCESSING';
  transactionId: string;
  /** how many times the money was taken: the order system must keep this at 1 */
  charges: number;
  requests: number;
  refundedCents: number;
  notifyUrl: string;
  at: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A stand-in for the payment provider: accepts a payment (idempotent by paymentId),
 * decides it, and reports the outcome by a signed callback to the notifyUrl it was
 * given, retried until acknowledged, and answers what it has of a payment when asked (PROCESSING
 * while undecided). A refund with a notifyUrl is confirmed the same way (the callback carries its refundId); without one, its answer confirms it.
 */
export async function buildPaymentSim(options: PaymentSimOptions): Promise<FastifyInstance> {
  const random = options.random ?? Math.random;
  const { app, faults, injectFaults, sendCallback, track } = createSimulator<PaymentFaults>(
    { latencyMs: options.latencyMs, failureRate: options.failureRate, timeoutRate: options.timeoutRate, outage: options.outage, declineRate: options.declineRate, refusalRate: options.refusalRate, amountSkewCents: options.amountSkewCents, refundsDeclined: options.refundsDeclined, callbacksLost: options.callbacksLost, paymentsUndecided: options.paymentsUndecided, refundsUndecided: options.refundsUndecided },
    { ...options, random },
    { declineRate: { type: 'number', minimum: 0, maximum: 1 }, refusalRate: { type: 'number', minimum: 0, maximum: 1 }, amountSkewCents: { type: 'integer' }, refundsDeclined: { type: 'boolean' }, callbacksLost: { type: 'boolean' }, paymentsUndecided: { type: 'boolean' }, refundsUndecided: { type: 'boolean' } },
  );
  const charges = new Map<string, Charge>();
  // each refund paid, with how many times it was asked for (paid once whatever)
  const refunds = new Map<string, { refundId: string; paymentId: string; amountCents: number; at: string; requests: number }>();
  // each refund held undecided (refundsUndecided), with how many times it was asked for
  const undecidedRefunds = new Map<string, { refundId: string; paymentId: string; amountCents: number; requests: number }>();
  // each refund declined (refundsDeclined), as often as it was asked for
  const declined: Array<{ refundId: string; paymentId: string; amountCents: number; at: string }> = [];
  // the payments asked for, as each request arrives: before its latency, and whatever it is answered
  const requested = new Set<string>();
  // every lookup of a payment, with the status it answered
  const lookups: Array<{ paymentId: string; status: string }> = [];

  // a callback lost (callbacksLost) is never sent, nor retried
  const callBack = (url: string, payload: unknown): Promise<number> => (faults.callbacksLost ? Promise.resolve(0) : sendCallback(url, payload));
  const notify = (charge: Charge): void =>
    void track(sleep(faults.latencyMs)).then(() =>
      callBack(charge.notifyUrl, {
        orderId: charge.orderId,
        paymentId: charge.paymentId,
        transactionId: charge.transactionId,
        status: charge.status,
        amountCents: charge.amountCents,
        at: charge.at,
      }),
    );
  /** Decides a payment not decided yet, unless payments are held undecided (paymentsUndecided): true while it stays undecided. */
  const stillUndecided = (charge: Charge): boolean => {
    if (charge.status !== 'PROCESSING') return false;
    if (faults.paymentsUndecided) return true;
    const declined = random() < faults.declineRate;
    Object.assign(charge, { status: declined ? 'FAILED' : 'SUCCEEDED', charges: declined ? 0 : 1, at: new Date().toISOString() });
    return false;
  };

  app.post<{ Body: { paymentId: string; orderId: string; amountCents: number; method: string; notifyUrl: string } }>(
    '/v1/payments',
    {
      schema: {
        body: {
          type: 'object',
          required: ['paymentId', 'orderId', 'amountCents', 'method', 'notifyUrl'],
          properties: {
            paymentId: { type: 'string', minLength: 1, maxLength: 64 },
            orderId: { type: 'string', minLength: 1, maxLength: 64 },
            amountCents: { type: 'integer', minimum: 1 },
            method: { type: 'string' },
            notifyUrl: { type: 'string', format: 'uri' },
          },
        },
      },
    },
    async (request, reply) => {
      requested.add(request.body.paymentId);
      if (!(await injectFaults(reply))) return reply;
      const known = charges.get(request.body.paymentId);
      if (known) {
        // the same payment again (a retried job): never a second charge; report its outcome again
        known.requests += 1;
        if (stillUndecided(known)) return reply.code(202).send({ paymentId: known.paymentId, status: 'PROCESSING' });
        notify(known);
        return reply.code(200).send({ paymentId: known.paymentId, status: known.status, transactionId: known.transactionId });
      }
      if (random() < faults.refusalRate) return reply.code(402).send({ error: `payment ${request.body.paymentId} refused` });
      const charge: Charge = {
        ...request.body,
        amountCents: Math.max(1, request.body.amountCents + faults.amountSkewCents),
        status: 'PROCESSING',
        transactionId: `txn_${randomUUID()}`,
        charges: 0,
        requests: 1,
        refundedCents: 0,
        at: new Date().toISOString(),
      };
      charges.set(charge.paymentId, charge);
      if (!stillUndecided(charge)) notify(charge);
      return reply.code(202).send({ paymentId: charge.paymentId, status: 'PROCESSING' });
    },
  );

  // what it has of a payment, as it stands (its callback, lost or not, is not sent again; one held undecided
  // is decided first once that fault is off, as a provider decides in its own time); 404 for one it never received
  app.get<{ Params: { paymentId: string } }>('/v1/payments/:paymentId', async (request, reply) => {
    if (!(await injectFaults(reply))) return reply;
    const charge = charges.get(request.params.paymentId);
    if (!charge) return reply.code(404).send({ error: `no payment ${request.params.paymentId}` });
    if (charge.status === 'PROCESSING' && !stillUndecided(charge)) notify(charge);
    lookups.push({ paymentId: charge.paymentId, status: charge.status });
    return { paymentId: charge.paymentId, orderId: charge.orderId, status: charge.status, transactionId: charge.transactionId, amountCents: charge.amountCents, at: charge.at };
  });

  const notifyRefund = (refund: { refundId: string; paymentId: string; amountCents: number; at: string }, notifyUrl: string, status: 'SUCCEEDED' | 'FAILED' = 'SUCCEEDED'): void => {
    const charge = charges.get(refund.paymentId)!;
    void track(sleep(faults.latencyMs)).then(() =>
      callBack(notifyUrl, {
        orderId: charge.orderId,
        paymentId: refund.paymentId,
        refundId: refund.refundId,
        transactionId: `rfd_${refund.refundId}`.slice(0, 128),
        status,
        amountCents: refund.amountCents,
        at: new Date().toISOString(),
      }),
    );
  };

  app.post<{ Body: { refundId: string; paymentId: string; amountCents: number; notifyUrl?: string } }>(
    '/v1/refunds',
    {
      schema: {
        body: {
          type: 'object',
          required: ['refundId', 'paymentId', 'amountCents'],
          properties: {
            refundId: { type: 'string', minLength: 1 },
            paymentId: { type: 'string', minLength: 1 },
            amountCents: { type: 'integer', minimum: 1 },
            notifyUrl: { type: 'string', format: 'uri' },
          },
        },
      },
    },
    async (request, reply) => {
      if (!(await injectFaults(reply))) return reply;
      const { refundId, paymentId, amountCents, notifyUrl } = request.body;
      const known = refunds.get(refundId);
      if (known) {
        // the same refund again (a retried job): never paid twice; confirm it again
        known.requests += 1;
        if (notifyUrl) notifyRefund(known, notifyUrl);
        return { refundId, status: 'SUCCEEDED' };
      }
      const held = undecidedRefunds.get(refundId);
      if (held) held.requests += 1;
      if (faults.refundsUndecided) {
        if (!held) undecidedRefunds.set(refundId, { refundId, paymentId, amountCents, requests: 1 });
        return reply.code(202).send({ refundId, status: 'PROCESSING' });
      }
      undecidedRefunds.delete(refundId);
      const charge = charges.get(paymentId);
      if (!charge || charge.status !== 'SUCCEEDED') return reply.code(404).send({ error: `no successful payment ${paymentId}` });
      if (charge.refundedCents + amountCents > charge.amountCents) return reply.code(422).send({ error: 'refund exceeds the payment' });
      if (faults.refundsDeclined) {
        const refusal = { refundId, paymentId, amountCents, at: new Date().toISOString() };
        declined.push(refusal);
        if (!notifyUrl) return { refundId, status: 'FAILED' };
        notifyRefund(refusal, notifyUrl, 'FAILED');
        return reply.code(202).send({ refundId, status: 'PROCESSING' });
      }
      charge.refundedCents += amountCents;
      const refund = { refundId, paymentId, amountCents, at: new Date().toISOString(), requests: held?.requests ?? 1 };
      refunds.set(refundId, refund);
      if (!notifyUrl) return { refundId, status: 'SUCCEEDED' };
      notifyRefund(refund, notifyUrl);
      return reply.code(202).send({ refundId, status: 'PROCESSING' });
    },
  );

  app.get('/__admin/payments', async () => ({ payments: [...charges.values()], refunds: [...refunds.values()], undecidedRefunds: [...undecidedRefunds.values()], declined, requested: [...requested], lookups }));
  return app;
}

import { Breaker, type BreakerMetrics, type BreakerSettings } from './breaker.js';
import { ExternalRefused } from './errors.js';
import { getJson, postJson } from './http.js';
import { urlUnder } from './url-under.js';

export interface PaymentRequest {
  /** the idempotency key at the payment system: the same id is never charged twice */
  paymentId: string;
  orderId: string;
  amountCents: number;
  method: string;
  /** where the payment system sends its signed result */
  notifyUrl: string;
}

export interface RefundRequest {
  refundId: string;
  paymentId: string;
  amountCents: number;
  /** where the payment system confirms the refund by a signed callback; without it, its answer confirms it */
  notifyUrl?: string;
}

/**
 * A payment as the payment system has it: decided, the money taken (SUCCEEDED) or not (FAILED), or
 * not decided yet (PROCESSING: nothing known taken; a status not listed here reads the same).
 */
export interface PaymentStatus {
  paymentId: string;
  orderId: string;
  status: 'SUCCEEDED' | 'FAILED' | 'PROCESSING';
  transactionId: string;
  /** what it took (SUCCEEDED), which may not be what the payment asked for */
  amountCents: number;
  at: string;
}

/**
 * The payment system, behind its breakers. A payment is asynchronous: the system accepts
 * it (202) and later calls `notifyUrl` with the outcome. A refund does the same when
 * given a `notifyUrl`, else its answer is the outcome.
 */
export class PaymentClient {
  /** payments and their lookups */
  readonly breaker: Breaker;
  /**
   * refunds, apart: a payment system whose refunds fail (the mass cancellations after a sale
   * meeting a refunds outage) would otherwise open the breaker buyers' payments go through
   */
  readonly refundBreaker: Breaker;

  constructor(
    private readonly baseUrl: string,
    settings: BreakerSettings,
    metrics: BreakerMetrics,
  ) {
    this.breaker = new Breaker('payment', settings, metrics);
    this.refundBreaker = new Breaker('payment_refunds', settings, metrics);
  }

  requestPayment(payment: PaymentRequest): Promise<{ paymentId: string; status: string }> {
    return this.breaker.call((signal) => postJson('payment', urlUnder(this.baseUrl, '/v1/payments'), payment, signal));
  }

  /**
   * What the payment system has of a payment, asked without acting on it (nothing charged, no
   * callback sent); null for a payment id it never received.
   */
  async paymentStatus(paymentId: string): Promise<PaymentStatus | null> {
    try {
      return await this.breaker.call((signal) => getJson<PaymentStatus>('payment', urlUnder(this.baseUrl, `/v1/payments/${encodeURIComponent(paymentId)}`), signal));
    } catch (error) {
      if (error instanceof ExternalRefused && error.status === 404) return null;
      throw error;
    }
  }

  refund(refund: RefundRequest): Promise<{ refundId: string; status: string }> {
    return this.refundBreaker.call((signal) => postJson('payment', urlUnder(this.baseUrl, '/v1/refunds'), refund, signal));
  }

  shutdown(): void {
    this.breaker.shutdown();
    this.refundBreaker.shutdown();
  }
}

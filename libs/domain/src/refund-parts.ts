import { DomainError } from './errors.js';

/** A successful payment of an order, with what is still refundable from it. */
export interface RefundablePayment {
  paymentId: string;
  /** what the payment took less what refunds already drew from it */
  refundableCents: number;
}

export interface RefundPart {
  paymentId: string;
  amountCents: number;
}

/** A refund asks for more money than the order's payments have left to give back. */
export class RefundExceedsPayments extends DomainError {
  readonly code = 'REFUND_EXCEEDS_ORDER';
  constructor(amountCents: number, refundableCents: number) {
    super(`The refund of ${amountCents} cents exceeds the ${refundableCents} cents the order's payments have left`);
  }
}

/**
 * Where a refund's money goes back to: drawn from the payments in the order given
 * (latest first: a presale's balance before its deposit), each at most what it has
 * left, so no payment ever gives back more than it took. One part per payment drawn.
 */
export function drawRefund(amountCents: number, payments: readonly RefundablePayment[]): RefundPart[] {
  const refundable = payments.reduce((sum, payment) => sum + Math.max(0, payment.refundableCents), 0);
  if (amountCents > refundable) throw new RefundExceedsPayments(amountCents, refundable);
  const parts: RefundPart[] = [];
  let left = amountCents;
  for (const payment of payments) {
    if (left === 0) break;
    const drawn = Math.min(left, Math.max(0, payment.refundableCents));
    if (drawn === 0) continue;
    parts.push({ paymentId: payment.paymentId, amountCents: drawn });
    left -= drawn;
  }
  return parts;
}

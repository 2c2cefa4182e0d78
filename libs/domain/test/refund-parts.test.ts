import { RefundExceedsPayments, drawRefund } from '@orders/domain';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

describe('a refund drawn from the payments of an order', () => {
  it('gives back a 50,000 presale (10,000 deposit, 40,000 balance) from the balance first, then the deposit', () => {
    const payments = [
      { paymentId: 'balance', refundableCents: 40_000 },
      { paymentId: 'deposit', refundableCents: 10_000 },
    ];
    expect(drawRefund(50_000, payments)).toEqual([
      { paymentId: 'balance', amountCents: 40_000 },
      { paymentId: 'deposit', amountCents: 10_000 },
    ]);
    expect(drawRefund(45_000, payments)).toEqual([
      { paymentId: 'balance', amountCents: 40_000 },
      { paymentId: 'deposit', amountCents: 5_000 },
    ]);
    expect(drawRefund(1_000, payments)).toEqual([{ paymentId: 'balance', amountCents: 1_000 }]);
  });

  it('skips what earlier refunds used up and refuses a cent more than is left', () => {
    const payments = [
      { paymentId: 'balance', refundableCents: 0 },
      { paymentId: 'deposit', refundableCents: 2_500 },
    ];
    expect(drawRefund(2_500, payments)).toEqual([{ paymentId: 'deposit', amountCents: 2_500 }]);
    expect(() => drawRefund(2_501, payments)).toThrow(RefundExceedsPayments);
  });

  it('always draws exactly the amount, never more from a payment than it has left', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 100_000 }), { minLength: 1, maxLength: 5 }), fc.double({ min: 0, max: 1, noNaN: true }), (left, share) => {
        const payments = left.map((refundableCents, i) => ({ paymentId: `p${i}`, refundableCents }));
        const amount = Math.floor(left.reduce((a, b) => a + b, 0) * share);
        const parts = drawRefund(amount, payments);
        expect(parts.reduce((sum, part) => sum + part.amountCents, 0)).toBe(amount);
        for (const part of parts) expect(part.amountCents).toBeGreaterThan(0);
        for (const part of parts) expect(part.amountCents).toBeLessThanOrEqual(payments.find((p) => p.paymentId === part.paymentId)!.refundableCents);
      }),
    );
  });
});

import type { LineRefund, RefundableLine } from '@orders/domain';

/** An order's priced lines as refunds see them, nothing refunded yet. */
export const asRefundable = (lines: ReadonlyArray<Omit<RefundableLine, 'refundedQty' | 'refundedCents'>>): RefundableLine[] =>
  lines.map((l) => ({
    lineNo: l.lineNo,
    channel: l.channel,
    merchantId: l.merchantId,
    warehouseId: l.warehouseId,
    qty: l.qty,
    payableCents: l.payableCents,
    shippingCents: l.shippingCents,
    refundedQty: 0,
    refundedCents: 0,
  }));

/** The lines once these refunds count on them. */
export const withRefunds = (lines: readonly RefundableLine[], refunds: readonly LineRefund[]): RefundableLine[] =>
  lines.map((line) => {
    const refund = refunds.find((r) => r.lineNo === line.lineNo);
    return refund ? { ...line, refundedQty: line.refundedQty + refund.qty, refundedCents: line.refundedCents + refund.cents } : line;
  });

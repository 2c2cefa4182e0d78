export { AlreadyApplied, followUp, type FollowUpDeps } from './follow-ups.js';
export { applyPaymentTaken, givePaymentBackWhole, noChargeTransactionId, payBalanceOfNothing, refundIfNotApplied, settleReportedPayment, type PaymentReport, type PaymentTaken, type SettlementDeps, type SettlementLog } from './payment-settlement.js';
export { closeOrderOnceRefunded, settleRefundPart, type RefundSettlementDeps } from './refund-settlement.js';

import type { Migration } from 'kysely';
import * as initial from './0001-initial.js';
import * as processEngine from './0002-process-engine.js';
import * as orderEvents from './0005-order-events.js';
import * as orderImport from './0006-order-import.js';
import * as pricing from './0007-pricing.js';
import * as stockBuckets from './0008-stock-buckets.js';
import * as refundParts from './0009-refund-parts.js';
import * as orderTimerBackstop from './0010-order-timer-backstop.js';
import * as pricingHistory from './0011-pricing-history.js';
import * as refundKeys from './0012-refund-keys.js';
import * as stockLedgerKindOrder from './0013-stock-ledger-kind-order.js';
import * as skuOrderType from './0014-sku-order-type.js';
import * as orderAddressOptional from './0015-order-address-optional.js';
import * as couponUseNumbers from './0016-coupon-use-numbers.js';
import * as refundsWaiting from './0017-refunds-waiting.js';
import * as couponRedemptionsByOrder from './0018-coupon-redemptions-by-order.js';
import * as latePaymentsDue from './0019-late-payments-due.js';
import * as promotionSkuLists from './0020-promotion-sku-lists.js';
import * as fulfilmentChangesTooLate from './0021-fulfilment-changes-too-late.js';
import * as refundPartsUnconfirmed from './0022-refund-parts-unconfirmed.js';
import * as stockLedgerSettled from './0023-stock-ledger-settled.js';
import * as refundPartsSettledByHand from './0024-refund-parts-settled-by-hand.js';
import * as refundPartsAskedAgain from './0025-refund-parts-asked-again.js';
import * as refundRestockHeld from './0026-refund-restock-held.js';
import * as couponTotalLimit from './0027-coupon-total-limit.js';
import * as handOverAsked from './0028-hand-over-asked.js';
import * as pricingRulesVersion from './0029-pricing-rules-version.js';
import * as paymentsRequested from './0030-payments-requested.js';
import * as paymentsSent from './0031-payments-sent.js';
import * as refundPartsSent from './0032-refund-parts-sent.js';
import * as paymentsFirstRequested from './0033-payments-first-requested.js';
import * as paymentsUndecided from './0034-payments-undecided.js';
import * as skusOffSale from './0035-skus-off-sale.js';
import * as refundPartsPaidAfter from './0036-refund-parts-paid-after.js';
import * as promotionEnds from './0037-promotion-ends.js';
import * as orderCheckoutKeys from './0038-order-checkout-keys.js';

/**
 * Listed statically rather than read from a folder so the same list runs from src (tests)
 * and dist (production). Never change what a landed migration makes: add the next one here.
 * Every step of one is skipped when done already (./schema-steps.ts): a migration that failed
 * midway is not recorded, and runs again from its first step.
 */
export const migrations: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-process-engine': processEngine,
  '0005-order-events': orderEvents,
  '0006-order-import': orderImport,
  '0007-pricing': pricing,
  '0008-stock-buckets': stockBuckets,
  '0009-refund-parts': refundParts,
  '0010-order-timer-backstop': orderTimerBackstop,
  '0011-pricing-history': pricingHistory,
  '0012-refund-keys': refundKeys,
  '0013-stock-ledger-kind-order': stockLedgerKindOrder,
  '0014-sku-order-type': skuOrderType,
  '0015-order-address-optional': orderAddressOptional,
  '0016-coupon-use-numbers': couponUseNumbers,
  '0017-refunds-waiting': refundsWaiting,
  '0018-coupon-redemptions-by-order': couponRedemptionsByOrder,
  '0019-late-payments-due': latePaymentsDue,
  '0020-promotion-sku-lists': promotionSkuLists,
  '0021-fulfilment-changes-too-late': fulfilmentChangesTooLate,
  '0022-refund-parts-unconfirmed': refundPartsUnconfirmed,
  '0023-stock-ledger-settled': stockLedgerSettled,
  '0024-refund-parts-settled-by-hand': refundPartsSettledByHand,
  '0025-refund-parts-asked-again': refundPartsAskedAgain,
  '0026-refund-restock-held': refundRestockHeld,
  '0027-coupon-total-limit': couponTotalLimit,
  '0028-hand-over-asked': handOverAsked,
  '0029-pricing-rules-version': pricingRulesVersion,
  '0030-payments-requested': paymentsRequested,
  '0031-payments-sent': paymentsSent,
  '0032-refund-parts-sent': refundPartsSent,
  '0033-payments-first-requested': paymentsFirstRequested,
  '0034-payments-undecided': paymentsUndecided,
  '0035-skus-off-sale': skusOffSale,
  '0036-refund-parts-paid-after': refundPartsPaidAfter,
  '0037-promotion-ends': promotionEnds,
  '0038-order-checkout-keys': orderCheckoutKeys,
};

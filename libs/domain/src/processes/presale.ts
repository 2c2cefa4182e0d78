import type { OrderProcess, StateInfo, TransitionRule } from '../order-process.js';
import { percentOf } from '../splitting.js';
import { RETAIL_FORWARD_PATH, fulfilmentTransitions, retailStates, type RetailAction, type RetailStatus } from './retail.js';

export type PresaleStatus = RetailStatus | 'PENDING_DEPOSIT' | 'DEPOSIT_PAID' | 'DEPOSIT_FORFEITED';
export type PresaleAction = RetailAction | 'pay_deposit' | 'expire_balance';

const states: Record<PresaleStatus, StateInfo> = {
  ...retailStates,
  PENDING_DEPOSIT: { buyerLabel: 'To pay deposit', merchantLabel: 'Awaiting deposit' },
  DEPOSIT_PAID: { buyerLabel: 'To pay balance', merchantLabel: 'Awaiting balance' },
  DEPOSIT_FORFEITED: { buyerLabel: 'Closed', merchantLabel: 'Deposit kept (withdrawn or balance unpaid)', final: true },
};

const { PENDING_PAYMENT: _unusedInPresale, ...presaleStates } = states;

/**
 * A presale: a deposit at checkout (its own deadline: the payment deadline), the balance
 * later (its own deadline, set when the deposit is paid). An unpaid deposit expires and
 * gives the stock back; an unpaid balance forfeits the deposit, and so does the buyer
 * withdrawing once it is paid. The shop calling a presale off after its deposit refunds the
 * deposit; its units, reserved and never sold, are released rather than restocked. After
 * the balance the order lives the retail forward life.
 */
const transitions: TransitionRule<PresaleStatus, PresaleAction>[] = [
  { from: 'ACCEPTED', action: 'persist', to: 'PENDING_DEPOSIT', actors: ['system'], effects: ['schedulePaymentDeadline'] },
  { from: 'PENDING_DEPOSIT', action: 'pay_deposit', to: 'DEPOSIT_PAID', actors: ['payment'], effects: ['scheduleBalanceDeadline'] },
  { from: 'PENDING_DEPOSIT', action: 'cancel', to: 'CANCELLED', actors: ['buyer', 'merchant', 'admin'], effects: ['releaseStock'] },
  { from: 'PENDING_DEPOSIT', action: 'expire', to: 'EXPIRED', actors: ['system'], effects: ['releaseStock'] },
  { from: 'DEPOSIT_PAID', action: 'pay', to: 'PAID', actors: ['payment'], effects: ['commitStock', 'split'] },
  { from: 'PENDING_DEPOSIT', action: 'change_address', to: 'PENDING_DEPOSIT', actors: ['buyer', 'admin'] },
  { from: 'DEPOSIT_PAID', action: 'change_address', to: 'DEPOSIT_PAID', actors: ['buyer', 'admin'] },
  { from: 'DEPOSIT_PAID', action: 'expire_balance', to: 'DEPOSIT_FORFEITED', actors: ['system'], effects: ['releaseStock'] },
  { from: 'DEPOSIT_PAID', action: 'cancel', to: 'DEPOSIT_FORFEITED', actors: ['buyer'], effects: ['releaseStock'] },
  // the system's: a buyer's cancel sent while the order awaited its deposit, which landed as the cancel ran
  { from: 'DEPOSIT_PAID', action: 'refund', to: 'REFUNDING', actors: ['merchant', 'admin', 'system'], effects: ['releaseStock', 'refundPayments'] },
  ...fulfilmentTransitions,
];

export const presaleProcess: OrderProcess<Exclude<PresaleStatus, 'PENDING_PAYMENT'>, PresaleAction> = {
  type: 'presale',
  initial: 'ACCEPTED',
  states: presaleStates,
  transitions: transitions as TransitionRule<Exclude<PresaleStatus, 'PENDING_PAYMENT'>, PresaleAction>[],
  forwardPath: ['ACCEPTED', 'PENDING_DEPOSIT', 'DEPOSIT_PAID', ...RETAIL_FORWARD_PATH.slice(2)] as Exclude<PresaleStatus, 'PENDING_PAYMENT'>[],
  paymentActions: ['pay_deposit', 'pay'],
};

/**
 * The deposit of a presale order: `depositPercent` of what it pays, rounded down, at
 * least one cent and never the whole amount when there is more than a cent to pay.
 */
export function presaleDepositCents(payableCents: number, depositPercent: number): number {
  if (payableCents <= 1) return payableCents;
  return Math.min(payableCents - 1, Math.max(1, percentOf(payableCents, depositPercent)));
}

import type { OrderProcess, TransitionRule } from '../order-process.js';
import { retailStates, type RetailAction, type RetailStatus } from './retail.js';

export type VirtualStatus = Extract<RetailStatus, 'ACCEPTED' | 'PENDING_PAYMENT' | 'PAID' | 'COMPLETED' | 'CANCELLED' | 'EXPIRED' | 'REFUNDING' | 'REFUNDED'>;
export type VirtualAction = Extract<RetailAction, 'persist' | 'pay' | 'cancel' | 'expire' | 'refund' | 'refund_succeeded'> | 'deliver';

const { ACCEPTED, PENDING_PAYMENT, COMPLETED, CANCELLED, EXPIRED, REFUNDING, REFUNDED } = retailStates;

/** A virtual good (voucher, top-up): nothing to ship; paying delivers it and completes the order. */
const transitions: TransitionRule<VirtualStatus, VirtualAction>[] = [
  { from: 'ACCEPTED', action: 'persist', to: 'PENDING_PAYMENT', actors: ['system'], effects: ['schedulePaymentDeadline'] },
  { from: 'PENDING_PAYMENT', action: 'pay', to: 'PAID', actors: ['payment'], effects: ['commitStock', 'deliverDigital'] },
  { from: 'PENDING_PAYMENT', action: 'cancel', to: 'CANCELLED', actors: ['buyer', 'merchant', 'admin'], effects: ['releaseStock'] },
  { from: 'PENDING_PAYMENT', action: 'expire', to: 'EXPIRED', actors: ['system'], effects: ['releaseStock'] },
  { from: 'PAID', action: 'deliver', to: 'COMPLETED', actors: ['system'] },
  { from: 'PAID', action: 'refund', to: 'REFUNDING', actors: ['buyer', 'merchant', 'admin', 'system'], effects: ['refundPayments'] },
  { from: 'REFUNDING', action: 'refund_succeeded', to: 'REFUNDED', actors: ['payment'] },
];

export const virtualProcess: OrderProcess<VirtualStatus, VirtualAction> = {
  type: 'virtual',
  initial: 'ACCEPTED',
  states: {
    ACCEPTED,
    PENDING_PAYMENT,
    PAID: { buyerLabel: 'Delivering', merchantLabel: 'Delivering' },
    COMPLETED,
    CANCELLED,
    EXPIRED,
    REFUNDING,
    REFUNDED,
  },
  transitions,
  forwardPath: ['ACCEPTED', 'PENDING_PAYMENT', 'PAID', 'COMPLETED'],
  paymentActions: ['pay'],
};

import type { OrderProcess, StateInfo, TransitionRule } from '../order-process.js';

/** The statuses of API.md shared by the standard and flash-sale types. */
export type RetailStatus =
  | 'ACCEPTED'
  | 'PENDING_PAYMENT'
  | 'PAID'
  | 'IN_FULFILLMENT'
  | 'SHIPPED'
  | 'DELIVERED'
  | 'COMPLETED'
  | 'CANCELLED'
  | 'EXPIRED'
  | 'REFUNDING'
  | 'REFUNDED'
  | 'RETURN_REQUESTED'
  | 'RETURNING'
  | 'RETURNED';

export type RetailAction =
  | 'persist'
  | 'pay'
  | 'cancel'
  | 'expire'
  | 'fulfil'
  | 'ship'
  | 'deliver'
  | 'confirm_receipt'
  | 'auto_confirm'
  | 'complete'
  | 'refund'
  | 'refund_succeeded'
  | 'request_return'
  | 'approve_return'
  | 'refuse_return'
  | 'receive_return';

const states: Record<RetailStatus, StateInfo> = {
  ACCEPTED: { buyerLabel: 'Processing', merchantLabel: 'Incoming' },
  PENDING_PAYMENT: { buyerLabel: 'To pay', merchantLabel: 'Awaiting payment' },
  PAID: { buyerLabel: 'To ship', merchantLabel: 'To fulfil' },
  IN_FULFILLMENT: { buyerLabel: 'To ship', merchantLabel: 'In fulfilment' },
  SHIPPED: { buyerLabel: 'To receive', merchantLabel: 'Shipped' },
  DELIVERED: { buyerLabel: 'Received', merchantLabel: 'Delivered' },
  COMPLETED: { buyerLabel: 'Completed', merchantLabel: 'Completed', final: true },
  CANCELLED: { buyerLabel: 'Closed', merchantLabel: 'Cancelled', final: true },
  EXPIRED: { buyerLabel: 'Closed', merchantLabel: 'Expired unpaid', final: true },
  REFUNDING: { buyerLabel: 'After-sales', merchantLabel: 'Refunding' },
  REFUNDED: { buyerLabel: 'Closed', merchantLabel: 'Refunded', final: true },
  RETURN_REQUESTED: { buyerLabel: 'After-sales', merchantLabel: 'Return to review' },
  RETURNING: { buyerLabel: 'After-sales', merchantLabel: 'Return in transit' },
  RETURNED: { buyerLabel: 'Closed', merchantLabel: 'Returned', final: true },
};

const transitions: TransitionRule<RetailStatus, RetailAction>[] = [
  { from: 'ACCEPTED', action: 'persist', to: 'PENDING_PAYMENT', actors: ['system'], effects: ['schedulePaymentDeadline'] },
  { from: 'PENDING_PAYMENT', action: 'pay', to: 'PAID', actors: ['payment'] },
  { from: 'PENDING_PAYMENT', action: 'cancel', to: 'CANCELLED', actors: ['buyer', 'merchant', 'admin'], effects: ['releaseStock'] },
  { from: 'PENDING_PAYMENT', action: 'expire', to: 'EXPIRED', actors: ['system'], effects: ['releaseStock'] },
  { from: 'PAID', action: 'fulfil', to: 'IN_FULFILLMENT', actors: ['system'] },
  { from: 'PAID', action: 'refund', to: 'REFUNDING', actors: ['buyer', 'merchant', 'admin'] },
  { from: 'IN_FULFILLMENT', action: 'ship', to: 'SHIPPED', actors: ['warehouse'] },
  { from: 'IN_FULFILLMENT', action: 'refund', to: 'REFUNDING', actors: ['buyer', 'merchant', 'admin'] },
  { from: 'SHIPPED', action: 'deliver', to: 'DELIVERED', actors: ['warehouse'] },
  { from: 'SHIPPED', action: 'confirm_receipt', to: 'DELIVERED', actors: ['buyer'] },
  { from: 'SHIPPED', action: 'auto_confirm', to: 'DELIVERED', actors: ['system'] },
  { from: 'DELIVERED', action: 'complete', to: 'COMPLETED', actors: ['system'] },
  { from: 'DELIVERED', action: 'request_return', to: 'RETURN_REQUESTED', actors: ['buyer'] },
  { from: 'REFUNDING', action: 'refund_succeeded', to: 'REFUNDED', actors: ['payment'] },
  { from: 'RETURN_REQUESTED', action: 'approve_return', to: 'RETURNING', actors: ['merchant', 'admin'] },
  { from: 'RETURN_REQUESTED', action: 'refuse_return', to: 'DELIVERED', actors: ['merchant', 'admin'] },
  { from: 'RETURNING', action: 'receive_return', to: 'RETURNED', actors: ['warehouse'] },
];

export const standardProcess: OrderProcess<RetailStatus, RetailAction> = {
  type: 'standard',
  initial: 'ACCEPTED',
  states,
  transitions,
};

/** A flash sale runs the same life; its shorter payment deadline comes from config. */
export const flashSaleProcess: OrderProcess<RetailStatus, RetailAction> = {
  ...standardProcess,
  type: 'flash_sale',
};

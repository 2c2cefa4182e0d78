import { guards, type Guard, type OrderProcess, type StateInfo, type TransitionRule } from '../order-process.js';

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
  | 'split'
  | 'pick'
  | 'pack'
  | 'cancel'
  | 'expire'
  | 'fulfil'
  | 'ship'
  | 'deliver'
  | 'confirm_receipt'
  | 'auto_confirm'
  | 'complete'
  | 'refund'
  /** some units of an unshipped order go back; the order itself lives on */
  | 'refund_lines'
  | 'refund_succeeded'
  /** the parcel left before the warehouse took out the units a refund gave back: the refund is withdrawn, the order ships */
  | 'withdraw_refund'
  /** the buyer's address changes until the order ships */
  | 'change_address'
  | 'request_return'
  | 'approve_return'
  | 'refuse_return'
  /** an approved return whose parcel never came back, closed by the shop */
  | 'close_return'
  | 'receive_return'
  /** the warehouse received a return of some of the units: the rest stays with the buyer */
  | 'receive_partial_return';

export const retailStates: Record<RetailStatus, StateInfo> = {
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

/** The order was split: its status is its children's, and what it takes is carried out on them. */
const split: Guard = { name: 'split', test: (facts) => facts.split };

/**
 * The forward life after payment, shared by every shipped type: split, hand to the
 * warehouse, picked/packed/shipped/delivered by its callbacks, confirmed, completed.
 * A split parent takes no fulfilment action itself (guard notSplit): its status
 * derives from its children's.
 */
export const fulfilmentTransitions: TransitionRule<RetailStatus, RetailAction>[] = [
  { from: 'PAID', action: 'split', to: 'PAID', actors: ['system'], guard: guards.notSplit, effects: ['requestFulfilment'] },
  { from: 'PAID', action: 'fulfil', to: 'IN_FULFILLMENT', actors: ['system'], guard: guards.notSplit },
  // the warehouse may hold a paid order's parcel before its hand-over is recorded (its answer lost, or on its way): it is told too
  { from: 'PAID', action: 'refund', to: 'REFUNDING', actors: ['buyer', 'merchant', 'admin', 'system'], guard: guards.notSplit, effects: ['refundPayments', 'updateFulfilment'] },
  { from: 'PAID', action: 'refund_lines', to: 'PAID', actors: ['buyer', 'merchant', 'admin'], guard: guards.notSplit, effects: ['refundPayments', 'updateFulfilment'] },
  { from: 'IN_FULFILLMENT', action: 'refund_lines', to: 'IN_FULFILLMENT', actors: ['buyer', 'merchant', 'admin'], guard: guards.notSplit, effects: ['refundPayments', 'updateFulfilment'] },
  { from: 'PAID', action: 'change_address', to: 'PAID', actors: ['buyer', 'admin'] },
  { from: 'IN_FULFILLMENT', action: 'change_address', to: 'IN_FULFILLMENT', actors: ['buyer', 'admin'], effects: ['updateFulfilment'] },
  { from: 'IN_FULFILLMENT', action: 'pick', to: 'IN_FULFILLMENT', actors: ['warehouse'] },
  { from: 'IN_FULFILLMENT', action: 'pack', to: 'IN_FULFILLMENT', actors: ['warehouse'] },
  { from: 'IN_FULFILLMENT', action: 'ship', to: 'SHIPPED', actors: ['warehouse'], effects: ['scheduleAutoConfirm'] },
  { from: 'IN_FULFILLMENT', action: 'refund', to: 'REFUNDING', actors: ['buyer', 'merchant', 'admin'], guard: guards.notSplit, effects: ['refundPayments', 'updateFulfilment'] },
  { from: 'SHIPPED', action: 'deliver', to: 'DELIVERED', actors: ['warehouse'], effects: ['scheduleCompletion'] },
  // its SHIPPED event lost (the warehouse gave up sending it): the delivery says the parcel left, and nothing else would move the order
  { from: 'IN_FULFILLMENT', action: 'deliver', to: 'DELIVERED', actors: ['warehouse'], effects: ['scheduleCompletion'] },
  { from: 'SHIPPED', action: 'confirm_receipt', to: 'DELIVERED', actors: ['buyer'], effects: ['scheduleCompletion'] },
  // a split order's timers are its children's: one of its own (enqueued for it before its derived steps enqueued nothing, replayed) moves nothing
  { from: 'SHIPPED', action: 'auto_confirm', to: 'DELIVERED', actors: ['system'], guard: guards.notSplit, effects: ['scheduleCompletion'] },
  { from: 'DELIVERED', action: 'complete', to: 'COMPLETED', actors: ['system'], guard: guards.notSplit },
  { from: 'DELIVERED', action: 'request_return', to: 'RETURN_REQUESTED', actors: ['buyer'], effects: ['scheduleReturnReview'] },
  // a split parent's REFUNDING is its children's: the last refund of its own (opened before the split) does not close it
  { from: 'REFUNDING', action: 'refund_succeeded', to: 'REFUNDED', actors: ['payment'], guard: guards.notSplit },
  // refunded whole while the warehouse held its parcel, which left before the warehouse took the units out (it refused the
  // change as too late, or reported the parcel shipped): the refund, not paid yet, is withdrawn, and the order ships after all
  { from: 'REFUNDING', action: 'withdraw_refund', to: 'IN_FULFILLMENT', actors: ['system'], guard: guards.notSplit },
  // a split order reads REFUNDING while one child's refund awaits the payment system, its other children still to ship:
  // their address, their cancellation and a refund of their lines are carried out on them (the order fires none itself)
  { from: 'REFUNDING', action: 'change_address', to: 'REFUNDING', actors: ['buyer', 'admin'], guard: split },
  { from: 'REFUNDING', action: 'refund', to: 'REFUNDING', actors: ['buyer', 'merchant', 'admin'], guard: split },
  { from: 'REFUNDING', action: 'refund_lines', to: 'REFUNDING', actors: ['buyer', 'merchant', 'admin'], guard: split },
  // a split order reads RETURN_REQUESTED or RETURNING while one child's return is under way: a refund of the lines of
  // another still in its warehouse is carried out on that one
  { from: 'RETURN_REQUESTED', action: 'refund_lines', to: 'RETURN_REQUESTED', actors: ['buyer', 'merchant', 'admin'], guard: split },
  { from: 'RETURNING', action: 'refund_lines', to: 'RETURNING', actors: ['buyer', 'merchant', 'admin'], guard: split },
  // a request the shop leaves unreviewed RETURN_REVIEW_WINDOW_MS is approved by the system: a buyer's return never waits on nobody
  { from: 'RETURN_REQUESTED', action: 'approve_return', to: 'RETURNING', actors: ['merchant', 'admin', 'system'], effects: ['scheduleReturnClose'] },
  // a refused return gives back what was left of the after-sales window (afterSalesWindowEnd: at least a grace after it,
  // for a return asked inside it), timed by the first one's job, which waited through the review
  { from: 'RETURN_REQUESTED', action: 'refuse_return', to: 'DELIVERED', actors: ['merchant', 'admin'], effects: ['scheduleCompletion'] },
  // the parcel never came back: staff at any time, or the merchant and the system once RETURN_PARCEL_WINDOW_MS has passed since
  // the approval (the merchant's time checked by its route, as guards read no clock), closes the return, and the order is DELIVERED again with what was left of its after-sales window, as after a refusal
  { from: 'RETURNING', action: 'close_return', to: 'DELIVERED', actors: ['merchant', 'admin', 'system'], effects: ['scheduleCompletion'] },
  { from: 'RETURNING', action: 'receive_return', to: 'RETURNED', actors: ['warehouse'], effects: ['refundPayments'] },
  { from: 'RETURNING', action: 'receive_partial_return', to: 'DELIVERED', actors: ['warehouse'], effects: ['refundPayments', 'scheduleCompletion'] },
];

export const RETAIL_FORWARD_PATH: readonly RetailStatus[] = ['ACCEPTED', 'PENDING_PAYMENT', 'PAID', 'IN_FULFILLMENT', 'SHIPPED', 'DELIVERED', 'COMPLETED'];

const transitions: TransitionRule<RetailStatus, RetailAction>[] = [
  { from: 'ACCEPTED', action: 'persist', to: 'PENDING_PAYMENT', actors: ['system'], effects: ['schedulePaymentDeadline'] },
  { from: 'PENDING_PAYMENT', action: 'pay', to: 'PAID', actors: ['payment'], effects: ['commitStock', 'split'] },
  { from: 'PENDING_PAYMENT', action: 'cancel', to: 'CANCELLED', actors: ['buyer', 'merchant', 'admin'], effects: ['releaseStock'] },
  { from: 'PENDING_PAYMENT', action: 'expire', to: 'EXPIRED', actors: ['system'], effects: ['releaseStock'] },
  { from: 'PENDING_PAYMENT', action: 'change_address', to: 'PENDING_PAYMENT', actors: ['buyer', 'admin'] },
  ...fulfilmentTransitions,
];

export const standardProcess: OrderProcess<RetailStatus, RetailAction> = {
  type: 'standard',
  initial: 'ACCEPTED',
  states: retailStates,
  transitions,
  forwardPath: RETAIL_FORWARD_PATH,
  paymentActions: ['pay'],
};

/** A flash sale runs the same life; its shorter payment deadline comes from config. */
export const flashSaleProcess: OrderProcess<RetailStatus, RetailAction> = {
  ...standardProcess,
  type: 'flash_sale',
};

import { createHash } from 'node:crypto';
import type { AcceptedOrder } from '@orders/domain';

/** Queue names; a worker process serves a subset of them (WORKER_QUEUES). */
export const QUEUE = {
  orders: 'orders',
  timers: 'timers',
  payments: 'payments',
  fulfillment: 'fulfillment',
  deadLetter: 'dead-letter',
} as const;

export const JOB = {
  persistOrder: 'persist-order',
  expireOrder: 'expire-order',
  /** timers: the payment deadlines of orders persisted together that fall due in the same second */
  expireOrders: 'expire-orders',
  /** timers: a shipped order the buyer did not confirm is confirmed by the system */
  autoConfirm: 'auto-confirm',
  /** timers: the after-sales window closed: the order completes */
  completeOrder: 'complete-order',
  /** timers: a presale's balance was not paid in time */
  expireBalance: 'expire-balance',
  /** timers: an approved return's parcel did not reach the warehouse in time: the return is closed */
  closeReturn: 'close-return',
  /** timers: a return request the shop did not review in time: the system approves it */
  reviewReturn: 'review-return',
  /** timers, on a schedule (RECONCILE_INTERVAL_MS): compare Redis stock with the MySQL ledger */
  reconcileStock: 'reconcile-stock',
  expireOverdueOrders: 'expire-overdue-orders',
  /** payments: ask the payment system to collect a payment */
  requestPayment: 'request-payment',
  /** payments: give back every payment of a closed order */
  refundPayments: 'refund-payments',
  /** fulfillment: after payment: commit stock, split, hand to the warehouse(s) */
  settlePayment: 'settle-payment',
  /** fulfillment: hand one (child) order to its warehouse */
  sendToWarehouse: 'send-to-warehouse',
  /** fulfillment: tell the warehouse that has a (child) order what it now ships and where */
  updateFulfilment: 'update-fulfilment',
} as const;

/** orders: several accepted orders in one persist job (the intake's batches) */
export const PERSIST_ORDERS_JOB = 'persist-orders';

/** The jobs each queue carries. */
export const JOBS_OF_QUEUE: Partial<Record<string, readonly string[]>> = {
  [QUEUE.orders]: [JOB.persistOrder, PERSIST_ORDERS_JOB],
  [QUEUE.timers]: [JOB.expireOrder, JOB.expireOrders, JOB.autoConfirm, JOB.completeOrder, JOB.expireBalance, JOB.closeReturn, JOB.reviewReturn, JOB.reconcileStock, JOB.expireOverdueOrders],
  [QUEUE.payments]: [JOB.requestPayment, JOB.refundPayments],
  [QUEUE.fulfillment]: [JOB.settlePayment, JOB.sendToWarehouse, JOB.updateFulfilment],
};

export type PersistOrderJob = AcceptedOrder;

export interface ExpireOrderJob {
  orderId: string;
  userId: string;
}

export interface ExpireOrdersJob {
  orders: ExpireOrderJob[];
}

/** A timer on one order (the job's name says which). */
export interface OrderTimerJob {
  orderId: string;
  userId: string;
}

export interface RequestPaymentJob {
  orderId: string;
  paymentId: string;
}

/** The queue-backed effects of a transition, carried out after it committed. */
export interface OrderEffectsJob {
  orderId: string;
  effects: string[];
  reason?: string;
  /** a refund of this payment alone: it came after its order could take it (enqueueLatePaymentRefund) */
  paymentId?: string;
}

export interface SendToWarehouseJob {
  orderId: string;
  /** When the warehouse first answered a drop of the order 404 while a hand-over of it was asked (its answer lost): ms since the epoch, by the worker's clock. */
  dropNotFoundSince?: number;
}

/** What the dead-letter queue keeps of a job BullMQ failed for good, so it can be replayed. */
export interface DeadLetterJob {
  queue: string;
  name: string;
  jobId: string | undefined;
  data: unknown;
  failedReason: string;
  attemptsMade: number;
  failedAt: string;
}

/** BullMQ job ids: the order id makes a repeated enqueue of the same order a no-op. */
export const jobId = {
  persistOrder: (orderId: string) => orderId,
  /** an intake batch of orders: a fresh id each time */
  persistOrders: (batchId: string) => `batch-${batchId}`,
  expireOrder: (orderId: string) => `expire-${orderId}`,
  /** the same orders scheduled again (a retried batch) make the same id */
  expireOrders: (orderIds: readonly string[]) => `expire-batch-${createHash('sha1').update(orderIds.join(',')).digest('base64url')}`,
  autoConfirm: (orderId: string) => `auto-confirm-${orderId}`,
  completeOrder: (orderId: string) => `complete-${orderId}`,
  expireBalance: (orderId: string) => `expire-balance-${orderId}`,
  closeReturn: (orderId: string) => `close-return-${orderId}`,
  reviewReturn: (orderId: string) => `review-return-${orderId}`,
  requestPayment: (paymentId: string) => `pay-${paymentId}`,
  /** not a job id: the deduplication id of an order's refund jobs (enqueueRefundPayments) */
  refundPayments: (orderId: string) => `refund-${orderId}`,
  /** not a job id: the deduplication id of the refund of a payment its order could not take */
  refundLatePayment: (paymentId: string) => `refund-late-${paymentId}`,
  settlePayment: (orderId: string) => `settle-${orderId}`,
  sendToWarehouse: (orderId: string) => `ship-${orderId}`,
  /** not a job id: the deduplication id of an order's warehouse update jobs (enqueueFulfilmentUpdate) */
  updateFulfilment: (orderId: string) => `update-fulfilment-${orderId}`,
};

/**
 * The Redis Stream that downstream systems read order events from (one entry per
 * transition, fields `eventId`, `orderId`, `event` as JSON), under the stock keys' prefix.
 */
export function orderEventStreamKey(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}order-events`;
}

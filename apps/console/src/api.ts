/** The public HTTP API as the console reads it (../shared/API.md, /docs/json). */

export interface OrderLine {
  skuId: string;
  title?: string;
  qty: number;
  unitPriceCents?: number;
  discountCents?: number;
  payableCents?: number;
  warehouseId?: string;
  merchantId?: string;
  channel?: string;
  /** units of the line refunded so far */
  refundedQty?: number;
}

export interface Order {
  orderId: string;
  parentOrderId: string | null;
  type: string;
  status: string;
  buyerStatus: string;
  merchantStatus: string;
  userId: string;
  items: OrderLine[];
  amounts: { subtotalCents: number; discountCents: number; shippingCents: number; payableCents: number; refundedCents: number } | null;
  couponCode?: string | null;
  /** the payment that paid the order last (a presale: its deposit, then its balance) */
  payment: { paymentId?: string; transactionId: string | null; paidAt: string | null; method: string } | null;
  /** every payment attempt, oldest first; empty for a split order's child (its parent holds them) and in a merchant's view of an order holding other merchants' lines */
  payments: Payment[];
  /** when an unpaid order (a presale: its deposit) expires */
  paymentDeadline?: string;
  /** a presale's: when its balance is due, once its deposit is paid */
  balanceDeadline: string | null;
  /** what the system does by itself next, and from when; null when nothing is */
  /** `refundsOwed` (on `complete`): the refunds the buyer is still owed, which hold the completion past `dueAt` */
  nextTimer: { action: string; dueAt: string; refundsOwed?: string[] } | null;
  /** an imported order's sales channel, where it was paid, and its id there (docs/order-centre.md); null for this shop's own orders */
  sourceChannel: string | null;
  externalOrderId: string | null;
  shipments: Array<{ shipmentId: string; orderId: string; warehouseId: string; trackingNo: string | null; status: string; changeRefusedAt: string | null }>;
  subOrders: string[];
  /** null: a virtual order placed without one (it ships nothing) */
  address: Address | null;
  history: Array<{ from: string | null; action: string; to: string; at: string; actor: string; detail?: string | null }>;
  /** when it was written to MySQL; null while it is still in the queue (its checkout step says when it was accepted) */
  createdAt: string | null;
}

export interface Payment {
  paymentId: string;
  purpose: 'full' | 'deposit' | 'balance';
  amountCents: number;
  status: string;
  transactionId: string | null;
  paidAt: string | null;
  /** when the payment system was first asked for it; null while it never was (absent from an older api) */
  firstSentAt?: string | null;
}

export interface Address {
  name: string;
  phone: string;
  line1: string;
  city: string;
  postalCode: string;
  country: string;
}

/** POST /v1/orders/:id/refunds' answer: `replayed` when the refund is one this request opened before. */
export interface RefundAnswer {
  refundId: string;
  status: string;
  replayed?: boolean;
}

/** A refund or return of the order or of one of its children (GET /v1/orders/:id/refunds). */
export interface Refund {
  refundId: string;
  /** the order (or split order's child) the units belong to */
  orderId: string;
  kind: 'refund' | 'return';
  status: string;
  reason: string;
  amountCents: number;
  items: Array<{ lineNo: number; skuId: string; qty: number; cents: number }>;
  /** its units wait in a parcel the warehouse holds (or left with it): not back on sale */
  restockHeld: boolean;
  /** where the money goes back to, one part per payment drawn; empty until the money is due */
  parts: Array<{ partId: string; paymentId: string; amountCents: number; status: string; /** a part SETTLED_BY_HAND: how the shop paid it back */ settledReference?: string; /** a part ASKED_AGAIN: the part asked for instead */ askedAgainAs?: string; /** when the payment system was first asked for it */ sentAt?: string; /** a part owing nothing any more the payment system paid after all */ paidAfterOwedElsewhereAt?: string }>;
  createdAt: string;
  updatedAt: string;
}

export interface OrderPage {
  items: Order[];
  nextCursor: string | null;
}

export interface AllowedAction {
  action: string;
  to: string;
  merchantLabel: string;
  /** where to POST it: the generic actions route, or the reverse flows' cancel and refunds routes */
  href: string;
}

export interface Sku {
  skuId: string;
  title: string;
  priceCents: number;
  merchantId: string;
  flashSale: { priceCents: number; startsAt: string; endsAt: string; perUserLimit: number } | null;
  /** false once the shop took it off sale: every checkout refused, since `offSaleSince` */
  onSale: boolean;
  offSaleSince: string | null;
  stock: StockCounters;
  /** each bucket's counters, bucket 0 first: one for a SKU whose stock is not split */
  bucketStock: StockCounters[];
}

export interface StockCounters {
  available: number;
  reserved: number;
  sold: number;
}

/** A job that failed every attempt (GET /v1/admin/dead-letters): where, the orders it carries, why. */
export interface DeadLetter {
  letterId: string;
  queue: string;
  name: string;
  orders: string[];
  attemptsMade: number;
  failedAt: string;
  failedReason: string;
}

export interface DeadLetterList {
  total: number;
  items: DeadLetter[];
}

export interface QueueCounts {
  name: string;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  prioritized: number;
  /** how long its oldest waiting job has waited for a worker (seconds; 0: none waits) */
  oldestWaitingSeconds: number;
  overdueDelayedSeconds: number;
}

/** A refused request: `detail` is the API's problem-details message, shown as it is. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'ApiProblem';
  }
}

export type Api = <T>(method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', path: string, body?: unknown, headers?: Record<string, string>) => Promise<T>;

/** How far the api's clock is ahead of this browser's, read off the Date header of its last answer. */
let apiClockAheadMs = 0;

/**
 * Now by the api's clock (to a second): what the page offers by time (a sale's start and end, a
 * payment's deadline, a refund asked about no more) is what the api decides by its clock, and a
 * browser clock minutes off would offer what the api refuses, or hide what it takes.
 */
export const apiNow = (): number => Date.now() + apiClockAheadMs;

/** `onUnauthorized` gets the api's reason (token expired, wrong secret), for the sign-in page to show. */
export function apiFor(token: string, onUnauthorized: (detail: string) => void): Api {
  return async <T>(method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> => {
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers: { ...headers, authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiProblem(0, 'NETWORK', 'The order system cannot be reached; check the connection and retry');
    }
    // whole seconds, cut down: half of one added makes the reading off by half a second at most
    const answeredAt = Date.parse(response.headers.get('date') ?? '');
    if (Number.isFinite(answeredAt)) apiClockAheadMs = answeredAt + 500 - Date.now();
    const answer = (await response.json().catch(() => null)) as (T & { code?: string; detail?: string }) | null;
    if (!response.ok) {
      const problem = new ApiProblem(response.status, answer?.code ?? 'UNKNOWN', answer?.detail ?? `The order system answered ${response.status}`);
      if (response.status === 401) onUnauthorized(problem.detail);
      throw problem;
    }
    return answer as T;
  };
}

/**
 * A fresh Idempotency-Key: crypto.randomUUID exists only on https and localhost pages, and
 * the console is also served over plain http on a shop's network.
 */
export function idempotencyKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export function problemText(error: unknown): string {
  return error instanceof ApiProblem ? error.detail : String(error);
}

export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(name, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

export const formatTime = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString('en-GB', { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'medium' }) + ' UTC' : '–');

/**
 * When the order was placed: when it was written; while it is still in the queue, when the
 * intake accepted it (its checkout step). An imported order was placed in its channel (its
 * checkout step), maybe days before it was written here.
 */
export function placedAt(order: Order): string | null {
  const checkout = order.history.find((step) => step.from === null && step.action === 'checkout')?.at ?? null;
  return order.sourceChannel ? checkout : (order.createdAt ?? checkout);
}

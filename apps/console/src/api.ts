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
  payment: { paymentId?: string; transactionId: string | null; paidAt: string | null; method: string } | null;
  shipments: Array<{ shipmentId: string; warehouseId: string; trackingNo: string | null; status: string }>;
  subOrders: string[];
  history: Array<{ from: string | null; action: string; to: string; at: string; actor: string }>;
  createdAt: string | null;
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
  stock: { available: number; reserved: number; sold: number };
}

export interface QueueCounts {
  name: string;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  prioritized: number;
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

export type Api = <T>(method: 'GET' | 'POST', path: string, body?: unknown) => Promise<T>;

export function apiFor(token: string, onUnauthorized: () => void): Api {
  return async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiProblem(0, 'NETWORK', 'The order system cannot be reached; check the connection and retry');
    }
    const answer = (await response.json().catch(() => null)) as (T & { code?: string; detail?: string }) | null;
    if (!response.ok) {
      if (response.status === 401) onUnauthorized();
      throw new ApiProblem(response.status, answer?.code ?? 'UNKNOWN', answer?.detail ?? `The order system answered ${response.status}`);
    }
    return answer as T;
  };
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

const money = new Intl.NumberFormat('en', { style: 'currency', currency: 'USD' });
export const formatCents = (cents: number | undefined) => (cents === undefined ? '–' : money.format(cents / 100));
export const formatTime = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString('en-GB', { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'medium' }) + ' UTC' : '–');

import { Breaker, type BreakerMetrics, type BreakerSettings } from './breaker.js';
import { postJson } from './http.js';
import { urlUnder } from './url-under.js';

export interface FulfilmentRequest {
  /** the (child) order the warehouse ships; its callbacks name this id */
  orderId: string;
  warehouseId: string;
  items: Array<{ skuId: string; qty: number }>;
  address: Record<string, string>;
  /** the order's version the request was read at: a change older than what the warehouse has is ignored there */
  version: number;
  notifyUrl: string;
}

/** What a (child) order ships now and where, as of its `version`. */
export type FulfilmentChange = Pick<FulfilmentRequest, 'items' | 'address' | 'version'>;

/** The warehouse system, behind its breaker: it accepts an order and reports its progress by callbacks. */
export class WarehouseClient {
  readonly breaker: Breaker;

  constructor(
    private readonly baseUrl: string,
    settings: BreakerSettings,
    metrics: BreakerMetrics,
  ) {
    this.breaker = new Breaker('warehouse', settings, metrics);
  }

  /** Idempotent by orderId: an order the warehouse has already is answered with the version of what it holds. */
  requestFulfilment(request: FulfilmentRequest): Promise<{ orderId: string; status: string; version?: number }> {
    return this.breaker.call((signal) => postJson('warehouse', urlUnder(this.baseUrl, '/v1/fulfilment-orders'), request, signal));
  }

  /**
   * An order the warehouse already has changed before it shipped: what it ships now (units
   * refunded meanwhile are gone; none left: the order is cancelled) and where. Idempotent: one at
   * or below the version the warehouse last applied (sent again, or sent earlier and late) changes
   * nothing and is answered 200, even once the parcel left; a newer one after the parcel left is
   * refused 409. The order system relies on that to tell units taken out before the parcel left,
   * the answer lost, from units that left with it (heldWhenParcelLeft).
   */
  updateFulfilment(orderId: string, change: FulfilmentChange): Promise<{ orderId: string; status: string }> {
    return this.breaker.call((signal) => postJson('warehouse', urlUnder(this.baseUrl, `/v1/fulfilment-orders/${encodeURIComponent(orderId)}/changes`), change, signal));
  }
}

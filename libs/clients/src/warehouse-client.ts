import { Breaker, type BreakerMetrics, type BreakerSettings } from './breaker.js';
import { postJson } from './http.js';

export interface FulfilmentRequest {
  /** the (child) order the warehouse ships; its callbacks name this id */
  orderId: string;
  warehouseId: string;
  items: Array<{ skuId: string; qty: number }>;
  address: Record<string, string>;
  notifyUrl: string;
}

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

  requestFulfilment(request: FulfilmentRequest): Promise<{ orderId: string; status: string }> {
    return this.breaker.call((signal) => postJson('warehouse', new URL('/v1/fulfilment-orders', this.baseUrl).toString(), request, signal));
  }

  /**
   * An order the warehouse already has changed before it shipped: what it ships now (units
   * refunded meanwhile are gone; none left: the order is cancelled) and where. Idempotent.
   */
  updateFulfilment(orderId: string, change: { items: Array<{ skuId: string; qty: number }>; address: Record<string, string> }): Promise<{ orderId: string; status: string }> {
    return this.breaker.call((signal) => postJson('warehouse', new URL(`/v1/fulfilment-orders/${encodeURIComponent(orderId)}/changes`, this.baseUrl).toString(), change, signal));
  }
}

import { createHash } from 'node:crypto';
import { DomainError, mergeOrderLines, type Address, type OrderLineRequest, type OrderType } from '@orders/domain';
import type { OrderMetrics, CheckoutOutcome } from '@orders/metrics';
import { enqueuePersistOrder, type OrderQueues } from '@orders/queues';
import type { Inventory, Reservation } from '@orders/stock';
import type { FastifyBaseLogger } from 'fastify';
import { monotonicFactory } from 'ulid';
import { dependencyUnavailable, overloaded } from './problems.js';

export interface CheckoutBody {
  items: OrderLineRequest[];
  address: Address;
  couponCode?: string;
  orderType?: OrderType;
}

export interface QueueDepthGauge {
  /** Jobs waiting in the orders queue, as last sampled. */
  current(): number;
}

/** Stable JSON: the same body with keys in another order hashes the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const OUTCOME_OF_CODE: Record<string, CheckoutOutcome> = {
  OUT_OF_STOCK: 'out_of_stock',
  LIMIT_EXCEEDED: 'limit_exceeded',
  SALE_NOT_ACTIVE: 'sale_not_active',
  UNKNOWN_SKU: 'unknown_sku',
  IDEMPOTENCY_CONFLICT: 'idempotency_conflict',
  ORDER_TYPE_MISMATCH: 'order_type_mismatch',
};

/**
 * The checkout hot path: no MySQL. One Redis script reserves (idempotently), one
 * enqueue hands the order to the workers. If the enqueue fails the reservation still
 * stands in the accepted set, and the worker's sweeper enqueues it again, so the
 * buyer's 202 is never a lie.
 */
export class CheckoutIntake {
  private readonly newOrderId = monotonicFactory();

  constructor(
    private readonly deps: {
      inventory: Inventory;
      queues: Pick<OrderQueues, 'orders'>;
      metrics: OrderMetrics;
      queueDepth: QueueDepthGauge;
      highWaterMark: number;
      clock: () => Date;
      log: FastifyBaseLogger;
    },
  ) {}

  async checkout(userId: string, idempotencyKey: string, body: CheckoutBody): Promise<Reservation> {
    const { inventory, metrics } = this.deps;
    if (this.deps.queueDepth.current() >= this.deps.highWaterMark) {
      metrics.checkouts.inc({ outcome: 'overloaded' });
      throw overloaded(2);
    }
    const now = this.deps.clock();
    let reservation: Reservation;
    try {
      reservation = await inventory.reserveStock({
        orderId: this.newOrderId(now.getTime()),
        userId,
        idempotencyKey,
        bodyHash: createHash('sha256').update(canonicalJson(body)).digest('base64url'),
        requestedType: body.orderType ?? null,
        items: mergeOrderLines(body.items),
        payload: { address: body.address, couponCode: body.couponCode ?? null },
        now,
      });
    } catch (error) {
      if (error instanceof DomainError) {
        metrics.checkouts.inc({ outcome: OUTCOME_OF_CODE[error.code] ?? 'error' });
        throw error;
      }
      metrics.checkouts.inc({ outcome: 'error' });
      this.deps.log.error({ err: error }, 'stock reservation failed');
      throw dependencyUnavailable('Stock');
    }
    metrics.checkouts.inc({ outcome: reservation.created ? 'accepted' : 'idempotent_replay' });
    // On a replay too: if the first enqueue was lost, this one (same job id) restores it.
    try {
      await enqueuePersistOrder(this.deps.queues, reservation.order);
    } catch (error) {
      this.deps.log.warn({ err: error, orderId: reservation.order.orderId }, 'enqueue failed; the sweeper will enqueue this order');
    }
    return reservation;
  }
}

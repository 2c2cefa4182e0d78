import { hash } from 'node:crypto';
import { CheckoutRefused, DomainError, OutOfStock, mergeOrderLines, riskOfCheckout, type Address, type OrderLineRequest, type OrderType, type RiskPolicy } from '@orders/domain';
import type { OrderMetrics, CheckoutOutcome } from '@orders/metrics';
import { PersistOrderBatcher, type OrderQueues } from '@orders/queues';
import { CheckoutInProgress, RequestBudgetSpent, isRedisUnavailable, orderIdFactory, type CheckoutCounters, type Inventory, type Reservation, type StockRebalancer } from '@orders/stock';
import type { FastifyBaseLogger } from 'fastify';
import type { RequestCheckoutCounters } from './plugins/rate-limit.js';
import { canonicalJson } from './canonical-json.js';
import { checkoutInProgress, dependencyUnavailable, overloaded, rateLimited } from './problems.js';

export interface CheckoutBody {
  items: OrderLineRequest[];
  /** absent for a cart of virtual SKUs alone: nothing ships (the stock script refuses any other cart without one) */
  address?: Address;
  couponCode?: string;
  orderType?: OrderType;
}

export interface QueueDepthGauge {
  /** Orders accepted and not yet persisted, as last sampled. */
  current(): number;
}

/** Orders per persist job when the intake batches the enqueues of one event-loop turn. */
export const DEFAULT_ORDERS_PER_JOB = 100;

const OUTCOME_OF_CODE: Record<string, CheckoutOutcome> = {
  OUT_OF_STOCK: 'out_of_stock',
  LIMIT_EXCEEDED: 'limit_exceeded',
  SALE_NOT_ACTIVE: 'sale_not_active',
  UNKNOWN_SKU: 'unknown_sku',
  IDEMPOTENCY_CONFLICT: 'idempotency_conflict',
  ORDER_TYPE_MISMATCH: 'order_type_mismatch',
  COUPON_INVALID: 'coupon_refused',
  COUPON_LIMIT_EXCEEDED: 'coupon_refused',
  BUCKETED_SKU_SOLD_ALONE: 'bucketed_sku_sold_alone',
  RISK_REJECTED: 'risk_rejected',
};

/**
 * The checkout hot path: no MySQL. One Redis script reserves (idempotently), one
 * enqueue hands the order to the workers. If the enqueue fails the reservation still
 * stands in the accepted set, and the worker's sweeper enqueues it again, so the
 * buyer's 202 is never a lie.
 */
export class CheckoutIntake {
  private readonly newOrderId = orderIdFactory();
  private readonly enqueuer: PersistOrderBatcher;
  /** The outcomes of checkouts refused before their budget was counted, until their answer is known (`answered`). */
  private readonly unanswered = new WeakMap<CheckoutCounters, CheckoutOutcome>();

  constructor(
    private readonly deps: {
      inventory: Inventory;
      queues: Pick<OrderQueues, 'orders'>;
      metrics: OrderMetrics;
      queueDepth: QueueDepthGauge;
      highWaterMark: number;
      clock: () => Date;
      log: FastifyBaseLogger;
      /** Orders accepted in one event-loop turn share one persist job, up to this many (ORDERS_PER_JOB). */
      ordersPerJob?: number;
      /** The risk control's block lists, looked at before any reservation (its velocity rule is a counter of `checkout`'s). */
      risk?: RiskPolicy;
      /** Refills a bucket of a SKU split into buckets from the others, after an OUT_OF_STOCK from it. */
      rebalancer?: Pick<StockRebalancer, 'request'>;
    },
  ) {
    this.enqueuer = new PersistOrderBatcher(deps.queues, deps.ordersPerJob ?? DEFAULT_ORDERS_PER_JOB);
    // beside orders_awaiting_mysql, the mark it is compared with: how near the intake is to shedding
    deps.metrics.ordersAwaitingMysqlHighWaterMark.set(deps.highWaterMark);
  }

  /**
   * `counters`: the buyer's request budget and checkout velocity, spent with the reservation,
   * or with the sold-out read (429 RATE_LIMITED, 403 RISK_REJECTED when over); a checkout
   * refused before either leaves them uncounted, for the error handler (rate-limit plugin),
   * which answers 429 instead when the budget is spent, and tells `answered` which it was. One
   * whose Redis command went unanswered may have counted them (the script runs late): the error
   * handler leaves them, as a request counted twice would spend twice.
   */
  async checkout(userId: string, idempotencyKey: string, body: CheckoutBody, deviceId: string | null = null, counters: RequestCheckoutCounters | null = null): Promise<Reservation> {
    const { inventory, metrics } = this.deps;
    if (this.deps.queueDepth.current() >= this.deps.highWaterMark && !(await this.retriedAccepted(userId, idempotencyKey))) {
      counters?.toBeRetried();
      this.countRefusal('overloaded', counters);
      throw overloaded(2);
    }
    const now = this.deps.clock();
    let reservation: Reservation;
    try {
      this.refuseIfBlocked(userId, deviceId);
      await inventory.refuseIfSoldOut(userId, idempotencyKey, body.items, now, counters);
      reservation = await inventory.reserveStock({
        orderId: this.newOrderId(now.getTime()),
        userId,
        idempotencyKey,
        bodyHash: hash('sha256', canonicalJson(body), 'base64url'),
        requestedType: body.orderType ?? null,
        items: mergeOrderLines(body.items),
        payload: { address: body.address ?? null, couponCode: body.couponCode ?? null },
        now,
        counters,
      });
    } catch (error) {
      if (error instanceof RequestBudgetSpent) {
        metrics.checkouts.inc({ outcome: 'rate_limited' });
        throw rateLimited(error.msLeft);
      }
      if (error instanceof CheckoutInProgress) {
        this.countRefusal('in_progress', counters);
        throw checkoutInProgress();
      }
      if (error instanceof DomainError) {
        if (error instanceof CheckoutRefused) this.deps.log.warn({ userId, deviceId, reason: error.reason }, 'checkout refused by risk control');
        if (error instanceof OutOfStock) this.deps.rebalancer?.request(error.skuId, userId, mergeOrderLines(body.items).find((line) => line.skuId === error.skuId)?.qty ?? 1);
        // a buyer's refusal is never `error`: that outcome pages an operator (CheckoutErrorRateHigh)
        this.countRefusal(OUTCOME_OF_CODE[error.code] ?? 'invalid', counters);
        throw error;
      }
      // sent and unanswered, the script may yet run and count them; unsent (Redis away), the error handler could not count them either
      if (counters && !counters.spent && isRedisUnavailable(error)) counters.mayHaveBeenCounted();
      this.countRefusal('error', counters);
      this.deps.log.error({ err: error }, 'stock reservation failed');
      throw dependencyUnavailable('Stock');
    }
    metrics.checkouts.inc({ outcome: reservation.created ? 'accepted' : 'idempotent_replay' });
    // On a replay of an order still waiting for MySQL too: if the first enqueue was lost, this
    // one restores it (persisting is idempotent by order id, so an order in two jobs is written
    // once). One written already gets none: each would cost a worker a pricing and a transaction,
    // per retry of a client's retry storm. Orders accepted in the same event-loop turn share one job.
    if (!reservation.created && !(await this.deps.inventory.awaitsPersisting(reservation.order.orderId).catch(() => true))) return reservation;
    try {
      await this.enqueuer.enqueue(reservation.order);
    } catch (error) {
      this.deps.log.warn({ err: error, orderId: reservation.order.orderId }, 'enqueue failed; the sweeper will enqueue this order');
    }
    return reservation;
  }

  /**
   * One outcome per checkout answered: a refusal that came before the buyer's budget was
   * counted waits for the error handler, which counts that budget next and answers 429 when it
   * is spent; the refusal's own outcome would then count a checkout answered otherwise.
   */
  private countRefusal(outcome: CheckoutOutcome, counters: CheckoutCounters | null): void {
    if (counters && !counters.spent) this.unanswered.set(counters, outcome);
    else this.deps.metrics.checkouts.inc({ outcome });
  }

  /** The error handler's, once a checkout's budget is counted: its refusal is answered as it was, or with 429 (`overBudget`). */
  answered(counters: CheckoutCounters, overBudget: boolean): void {
    const outcome = this.unanswered.get(counters);
    if (outcome === undefined) return;
    this.unanswered.delete(counters);
    this.deps.metrics.checkouts.inc({ outcome: overBudget ? 'rate_limited' : outcome });
  }

  /**
   * A retry of a checkout already accepted is answered while the api sheds load: it adds
   * nothing to the backlog, and its buyer learns the order they must pay before its
   * deadline. Any doubt (Redis away) sheds it like the others.
   */
  private async retriedAccepted(userId: string, idempotencyKey: string): Promise<boolean> {
    return this.deps.inventory.checkoutRecorded(userId, idempotencyKey).catch(() => false);
  }

  private refuseIfBlocked(userId: string, deviceId: string | null): void {
    const reason = this.deps.risk ? riskOfCheckout(this.deps.risk, { userId, deviceId }) : null;
    if (reason !== null) throw new CheckoutRefused(reason);
  }
}

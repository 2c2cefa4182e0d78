import { DomainError, priceOrder, stateMachineFor, type AcceptedOrder, type Sku } from '@orders/domain';
import type { OrderMetrics } from '@orders/metrics';
import { CouponUsedUpMeanwhile, NoConnectionInTime, PricingRulesChangedMeanwhile, StatementTooSlow, isConnectionLost, isRowRefused, isServerError, type CatalogRepository, type OrderRepository, type OrderToPersist, type PricingRepository, type RulesVersion } from '@orders/persistence';
import { forgetCarriers, isPersistOrdersJob, schedulePaymentDeadlines, type OrderQueues, type PersistOrdersJob } from '@orders/queues';
import type { Inventory } from '@orders/stock';

interface Pending {
  order: AcceptedOrder;
  resolve: () => void;
  reject: (error: Error) => void;
}

export interface OrderWriterOptions {
  /** a batch this full goes at once */
  batchSize: number;
  /** how long the first order after a quiet spell waits for others */
  batchWaitMs: number;
  /**
   * While orders keep coming, a partial batch starts at most this long after the previous
   * one. A sale brings jobs of a few dozen orders every few milliseconds; written one
   * transaction each, they cost the worker and MySQL several times the CPU per order of
   * large batches, CPU the api needs when they share a host.
   */
  busyIntervalMs: number;
}

/**
 * How often a batch is priced in all when batches persisted meanwhile take coupon uses its
 * orders were priced with (CouponUsedUpMeanwhile): each time, another batch recorded a use.
 */
const PRICING_ROUNDS = 5;

/**
 * How often a batch is priced again because the rules changed since (PricingRulesChangedMeanwhile).
 * Many: a script changing buyers' levels one by one moves the version many times a second, and a
 * batch priced and written in a few milliseconds meets a change now and then; run out, its orders
 * would wait for their jobs' retries, and end in the dead letters.
 */
const RULES_CHANGED_ROUNDS = 50;

/**
 * Gathers the persist jobs that a worker runs concurrently into one MySQL transaction
 * with multi-row inserts: a flash sale's backlog drains at the speed of batches, not of
 * single-row round trips. Each job still succeeds or fails on its own.
 */
export class OrderWriter {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  private lastFlushAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly deps: {
      orders: OrderRepository;
      catalog: CatalogRepository;
      pricing: PricingRepository;
      inventory: Inventory;
      queues: Pick<OrderQueues, 'orders' | 'timers'>;
      metrics: OrderMetrics;
      clock: () => Date;
    },
    private readonly options: OrderWriterOptions,
  ) {}

  /**
   * One job's orders: a single order (the sweeper's, a replay's) or the batch the intake
   * accepted in one turn. The job succeeds once all of them are in MySQL.
   */
  async persist(data: AcceptedOrder | PersistOrdersJob): Promise<void> {
    if (!isPersistOrdersJob(data)) return this.persistOne(data);
    await Promise.all(data.orders.map((order) => this.persistOne(order)));
  }

  private persistOne(order: AcceptedOrder): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ order, resolve, reject });
      if (this.pending.length >= this.options.batchSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.waitBeforeFlush());
    });
  }

  /** Waits for every batch under way (graceful shutdown). */
  async drain(): Promise<void> {
    this.flush();
    await Promise.allSettled([...this.inFlight]);
  }

  private waitBeforeFlush(): number {
    const { batchWaitMs, busyIntervalMs } = this.options;
    return Math.max(batchWaitMs, this.lastFlushAt + busyIntervalMs - performance.now());
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastFlushAt = performance.now();
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    const run = this.write(batch).finally(() => this.inFlight.delete(run));
    this.inFlight.add(run);
  }

  private async write(batch: Pending[]): Promise<void> {
    const { orders, catalog, inventory, queues, metrics, clock } = this.deps;
    try {
      const now = clock();
      const skus = await catalog.findSkus(batch.flatMap((p) => p.order.items.map((item) => item.skuId)));
      let { priced, rulesVersion } = await this.price(batch, skus);
      if (priced.length === 0) return;
      let written: Map<string, Date>;
      for (let couponRounds = 1, rulesRounds = 1; ; ) {
        try {
          written = await orders.persistAcceptedOrders(priced, now, rulesVersion);
          break;
        } catch (error) {
          if (priced.length > 1 && (await this.refusedForItsOrders(error))) return await this.writeInHalves(priced);
          // another batch took the coupon uses these orders were priced with: priced again from
          // what MySQL has now, they go without the coupon, as if their buyer had none left at
          // pricing, and the use goes back in Redis below. Or the rules changed: priced again by them.
          if (error instanceof CouponUsedUpMeanwhile && couponRounds++ < PRICING_ROUNDS) ({ priced, rulesVersion } = await this.price(priced, skus));
          else if (error instanceof PricingRulesChangedMeanwhile && rulesRounds++ < RULES_CHANGED_ROUNDS) ({ priced, rulesVersion } = await this.price(priced, skus));
          else throw error;
        }
      }
      metrics.persistBatchSize.observe(written.size);
      metrics.ordersPersisted.inc(written.size);
      for (const { order } of priced) {
        if (!written.has(order.orderId)) continue;
        // the status the type's table persists into: a presale waits for its deposit, not a payment
        const { from, to, action } = stateMachineFor(order.type).fire('ACCEPTED', 'persist', 'system');
        metrics.transitions.inc({ type: order.type, from, to, action });
      }
      // For every order of the batch, new or already written by an earlier attempt: the
      // deadline job, the coupon release and the accepted-set removal are all idempotent, and
      // an earlier attempt may have died between the commit and these steps. A coupon reserved
      // at checkout that did not apply (minimum spend not reached, no use left in MySQL) goes
      // back to its buyer in the deadlines' round trip: the buyer sees the order without it as
      // soon as it is committed.
      // An order another batch (or an earlier attempt) wrote is as that one priced it: this pricing,
      // whose reads may have raced that commit (its coupon row seen, the order not yet), may leave
      // out a coupon it took, and its use must not go back then.
      const unapplied = priced.filter((p) => p.order.couponCode && !p.priced.applied.coupon);
      const appliedWhenWritten = await orders.withCouponApplied(unapplied.filter((p) => !written.has(p.order.orderId)).map((p) => p.order.orderId));
      // due as written; one written before is due no earlier than its checkout said, and a job due then waits for the rest (waitForDeadline)
      const due = priced.map(({ order: { orderId, userId, paymentDeadline } }) => ({ orderId, userId, paymentDeadline: written.get(orderId)?.toISOString() ?? paymentDeadline }));
      await Promise.all([
        schedulePaymentDeadlines(queues, due, now),
        ...unapplied.filter((p) => !appliedWhenWritten.has(p.order.orderId)).map((p) => inventory.releaseCoupon(p.order)),
      ]);
      await inventory.markPersisted(priced.map(({ order }) => order));
      // after the accepted set: a sweep that still sees the order there then finds its carrier too
      await forgetCarriers(queues, priced.map(({ order }) => order.orderId));
      for (const pending of priced) pending.resolve();
    } catch (error) {
      for (const pending of batch) pending.reject(error as Error);
    }
  }

  /**
   * Whether the batch failed for what some of its orders hold: MySQL refused a row of it, or closed
   * the connection on a statement past its packet limit while it answers the next one, or our code
   * failed on an order. Written whole again, it would fail again, and with it every job whose orders
   * share it, until all of them are dead letters. Not when MySQL is away, slow or refuses any write
   * (read-only, full, a node not ready), nor when another batch took coupon uses: halves would fail
   * alike, each a transaction more on a MySQL that is struggling. Nor when the pool had no connection
   * for it in time (NoConnectionInTime): no statement of it reached MySQL, and on a pool merely busy
   * MySQL answers the probe, so every batch would be split down to single orders.
   */
  private async refusedForItsOrders(error: unknown): Promise<boolean> {
    if (error instanceof CouponUsedUpMeanwhile || error instanceof PricingRulesChangedMeanwhile || error instanceof StatementTooSlow || error instanceof NoConnectionInTime) return false;
    if (isConnectionLost(error)) return this.deps.orders.answers();
    return isServerError(error) ? isRowRefused(error) : true;
  }

  /** Halves written on their own, down to single orders: only the orders MySQL refuses fail, each with its own error. */
  private async writeInHalves(batch: Pending[]): Promise<void> {
    const half = Math.ceil(batch.length / 2);
    await this.write(batch.slice(0, half));
    await this.write(batch.slice(half));
  }

  /** The batch's orders priced with the rules of their acceptance, and the rules' version; one that cannot be priced is refused alone. */
  private async price(batch: readonly Pending[], skus: ReadonlyMap<string, Sku>): Promise<{ priced: Array<Pending & OrderToPersist>; rulesVersion: RulesVersion }> {
    const rules = await this.deps.pricing.rulesFor(batch.map((p) => p.order), skus);
    const priced: Array<Pending & OrderToPersist> = [];
    for (const pending of batch) {
      try {
        const { order, resolve, reject } = pending;
        priced.push({ order, resolve, reject, accepted: order, priced: priceOrder(order.type, order.items, skus, new Date(order.acceptedAt), rules.byOrder.get(order.orderId)) });
      } catch (error) {
        // one unpriceable order (e.g. a SKU missing from MySQL) must not hold back the others
        pending.reject(error instanceof DomainError ? error : new Error(String(error)));
      }
    }
    return { priced, rulesVersion: rules.version };
  }
}

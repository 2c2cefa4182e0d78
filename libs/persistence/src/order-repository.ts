import {
  IllegalTransition,
  StaleOrderVersion,
  afterSalesWindowEnd,
  deriveParentStatus as deriveFromChildren,
  firstOrderIdAt,
  persistedPaymentDeadline,
  stateMachineFor,
  storedAddress,
  type OrderFacts,
  type AcceptedOrder,
  type Actor,
  type Deduction,
  type Effect,
  type FiredTransition,
  type OrderLineRequest,
  type OrderType,
  type PricedLine,
  type PricedOrder,
  type TimersDue,
  type WindowStep,
  startsATimer,
  statusesWaitingFor,
} from '@orders/domain';
import { expressionBuilder, sql, type Expression, type SqlBool, type Transaction } from 'kysely';
import type { OrderDb } from './connection.js';
import { insertRows } from './multi-row-insert.js';
import { overdueSince } from './mysql-clock.js';
import { isDuplicateKey, retryTransaction } from './mysql-errors.js';
import { addressOf, couponUseOf, toOrderView, type ChildStep, type OrderView } from './order-view.js';
import { PAYMENT_ACTIONS, firstChildOf, noPaymentAwaitedAt, paidTheOrder, payerOf, paymentGivenUp } from './process-repository.js';
import { holdRulesVersion, type RulesVersion } from './pricing-repository.js';
import { firstSent, refundsOwedIn, refundsOwedNow } from './refunds-owed.js';
import { selectTogether } from './select-together.js';
import { isAfterSalesWindow, timerDeadlineOf, type AfterSalesWindow, type TimerDeadline, type TimerSettings } from './timer-deadlines.js';
import type { Database, NewLedgerEntry, OrderRow } from './schema.js';

export interface OrderToPersist {
  accepted: AcceptedOrder;
  priced: PricedOrder;
}

export interface OrderListFilter {
  userId?: string;
  merchantId?: string;
  skuId?: string;
  parentOrderId?: string;
  /** only orders that were not split off another (a buyer's list) */
  topLevel?: boolean;
  /** only orders without children (what a merchant fulfils: unsplit orders and children) */
  leaf?: boolean;
  /** only orders owing a buyer a refund the payment system declined (a part FAILED) */
  refundDeclined?: boolean;
  /** only orders holding a refund part the payment system accepted (SENT) and never confirmed, first sent longer than this ago by MySQL's clock (REFUND_CONFIRMATION_GIVE_UP_MS: asked about no more) */
  refundUnconfirmedForMs?: number;
  /** only orders holding a payment sent to the payment system and never reported on, first sent longer than this ago by MySQL's clock (PAYMENT_CONFIRMATION_GIVE_UP_MS: asked about no more) */
  paymentUnconfirmedForMs?: number;
  status?: string;
  type?: string;
  /** placed at or after this instant */
  createdFrom?: Date;
  /** placed before this instant */
  createdTo?: Date;
  /** Return orders older than this order id (ids sort by time). */
  before?: string;
  limit: number;
}

export interface TransitionRequest {
  orderId: string;
  action: string;
  actor: Actor;
  /** When it happened by the caller's clock; a timer's transition, or one that starts a timer, is recorded at MySQL's time instead. */
  at: Date;
  detail?: string;
  /**
   * The order's deadline that must have passed, by MySQL's clock, for the transition to fire
   * (a timer's); before it the transition throws DeadlineAhead and changes nothing.
   */
  dueAfter?: TimerDeadline;
  /**
   * The order's deadline that must not have come yet, by MySQL's clock, for the transition to
   * fire (a buyer's return, inside the after-sales window): the complement of a timer's
   * `dueAfter` of the same deadline (the completion's), so that of the two only one fires; from
   * the deadline on the transition throws DeadlinePassed and changes nothing.
   */
  openUntil?: TimerDeadline;
  /** Writes the transition's effects in the same transaction (ledger rows, payments...). */
  effects?: (trx: Transaction<Database>, order: OrderRow, fired: FiredTransition) => Promise<void>;
}

/**
 * A timer's transition (an expiry, a forfeit, an auto-confirmation, a completion) asked for
 * before its deadline by MySQL's clock: its timer ran early, by the clock of a process running
 * ahead, or was promoted early, replayed or duplicated. Nothing changed; the deadline is
 * `dueInMs` away.
 */
export class DeadlineAhead extends Error {
  constructor(
    readonly orderId: string,
    readonly deadline: Date,
    readonly dueInMs: number,
  ) {
    super(`Order ${orderId} is due at ${deadline.toISOString()}, ${dueInMs} ms from now by MySQL's clock`);
    this.name = 'DeadlineAhead';
  }
}

/**
 * A transition open until its order's deadline (`openUntil`), asked for once that deadline has
 * come by MySQL's clock, whatever the clock of the process that asked: nothing changed.
 */
export class DeadlinePassed extends Error {
  constructor(
    readonly orderId: string,
    readonly deadline: Date | null,
  ) {
    super(`Order ${orderId} was open until ${deadline?.toISOString() ?? 'no deadline'} by MySQL's clock`);
    this.name = 'DeadlinePassed';
  }
}

export interface TransitionResult {
  order: OrderRow;
  fired: FiredTransition;
}

/** An order's reservation as MySQL has it: what Inventory.restoreReservation puts back in Redis. */
export interface OrderReservation extends Pick<AcceptedOrder, 'orderId' | 'userId' | 'type' | 'address'> {
  lines: Array<OrderLineRequest & { deduction: Deduction }>;
  /** the coupon the order holds a use of (its redemption is still used), else null */
  couponCode: string | null;
  acceptedAt: Date;
  paymentDeadline: Date;
}

const CHECKOUT_ACTION = 'checkout';
/** Attempts at writing one batch of accepted orders while other batches race over some of them. */
const PERSIST_ATTEMPTS = 10;
const DAY_MS = 86_400_000;
/**
 * The least time after its acceptance (the time its id carries) that order lists by date
 * allow an order's row to be written (created_at) in: the persist queue's lag, and a split's
 * children, written when the order is paid, with the default timeouts. A list whose
 * createdFrom is past an order's acceptance by more than the margin leaves the order out.
 */
const WRITTEN_WITHIN_MS = 7 * DAY_MS;
/** What a row's write may lag behind the payment that brings it: queues held up by an outage. */
const QUEUE_LAG_MS = DAY_MS;

/** The settings that decide how late an order's row may be written, as the config names them. */
export interface OrderListSettings {
  PAYMENT_TIMEOUT_MS: number;
  FLASH_SALE_PAYMENT_TIMEOUT_MS: number;
  PRESALE_BALANCE_TIMEOUT_MS: number;
}

export interface OrderListOptions {
  /** How long after its acceptance an order's row may be written: how far before createdFrom a list by date looks by order id. */
  writtenWithinMs: number;
}

/**
 * A split's children are written when the order is paid, by its payment deadline; a
 * presale's when its balance is, by its deposit's deadline, its balance timeout and
 * PAYMENT_TIMEOUT_MS more after acceptance (weeks, for a shop's presale): the balance
 * deadline waits that long for a balance asked for in time. The lists look back that far,
 * a day more for queues, and never less than 7 days.
 */
export function orderListOptionsOf(config: OrderListSettings): OrderListOptions {
  const latestPayment = Math.max(2 * config.PAYMENT_TIMEOUT_MS + config.PRESALE_BALANCE_TIMEOUT_MS, config.FLASH_SALE_PAYMENT_TIMEOUT_MS);
  return { writtenWithinMs: Math.max(WRITTEN_WITHIN_MS, latestPayment + QUEUE_LAG_MS) };
}

/** An id (the accepting API host's clock) runs ahead of its row's created_at (the writer's clock) by at most the hosts' clock difference. */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * The order (its id in the column `orderId`) was not split: no order is its child. A split
 * order's status follows its children's, and they are what merchants and timers act on.
 * Its children are counted per order rather than tested with NOT EXISTS, which MariaDB turns
 * into NOT IN and materializes: every child in the shop read for each page of a list.
 */
export function notSplit(orderId: 'o.order_id' | 'orders.order_id'): Expression<SqlBool> {
  const eb = expressionBuilder<Database>();
  const children = eb.selectFrom('orders as child').select((sub) => sub.fn.countAll().as('children')).whereRef('child.parent_order_id', '=', sql.ref<string>(orderId));
  return eb(children, '=', 0);
}

/**
 * The index a list of orders by status or type walks newest first, stopping after a page: left
 * to itself MariaDB intersects the status and type indexes, reading every entry of both and
 * sorting them (96k entries at 200k orders), and below a cursor reads the status's (or type's)
 * entries from its newest order down, past every newer one. Forced, it reads a range of
 * (status, order_id), as the cursor and the dates bound the ids. A buyer's, a parent's and the
 * declined refunds' orders are fewer: read from their own entries, as MySQL chooses.
 */
function walkedIndex(filter: OrderListFilter) {
  if (filter.userId !== undefined || filter.parentOrderId !== undefined || filter.refundDeclined || filter.refundUnconfirmedForMs !== undefined || filter.paymentUnconfirmedForMs !== undefined) return sql``;
  if (filter.status !== undefined) return sql`force index (orders_status)`;
  return filter.type === undefined ? sql`` : sql`force index (orders_type)`;
}

/**
 * A batch's orders priced with a coupon of which, by the batch's transaction, their buyer has
 * fewer uses left than the orders: a batch persisted since they were priced recorded one.
 * Nothing of the batch is written; priced again from MySQL, they go without the coupon.
 */
export class CouponUsedUpMeanwhile extends Error {
  override readonly name = 'CouponUsedUpMeanwhile';
  constructor(readonly orderIds: readonly string[]) {
    super(`the coupon uses of orders ${orderIds.join(', ')} were taken by orders persisted since they were priced`);
  }
}

/** Now by MySQL's clock, the one every process shares (UTC, as the DATETIME columns hold it: connection.ts). */
export async function mysqlNow(db: OrderDb | Transaction<Database>): Promise<number> {
  const { rows } = await sql<{ now: Date }>`SELECT UTC_TIMESTAMP(3) AS now`.execute(db);
  return rows[0]!.now.getTime();
}

/** retryTransaction's `alsoAfter` for a transition that lost to a concurrent change of its order (StaleOrderVersion): decided again from what it reads then. */
export const afterStaleOrderVersion = (error: unknown): boolean => error instanceof StaleOrderVersion;

/** Where an order waits for its completion (DELIVERED), by type. */
const COMPLETION_WAITS = statusesWaitingFor('scheduleCompletion');

/**
 * The orders whose completion a refund owed holds (forward-life's completeAfterWindow), and their
 * orders from before a split: whose refunds an order's view names beside its completion timer.
 */
function awaitingCompletion(orders: readonly OrderRow[]): string[] {
  const waiting = orders.filter((order) => COMPLETION_WAITS.some((wait) => wait.status === order.status && wait.types.includes(order.type as OrderType)));
  return [...new Set(waiting.flatMap((order) => (order.parent_order_id === null ? [order.order_id] : [order.order_id, order.parent_order_id])))];
}

export class OrderRepository {
  /** Without options (scripts and tests that list nothing by date): a 7-day margin. */
  /** `timers`: the settings each view's `nextTimer` is read by; without them (the workers, which show no views) it is null. */
  constructor(
    private readonly db: OrderDb,
    private readonly lists: OrderListOptions = { writtenWithinMs: WRITTEN_WITHIN_MS },
    private readonly timers?: TimerSettings,
  ) {}

  /** Whether MySQL answers now: after a batch failed as if it were away, whether it was the batch it refused. */
  async answers(): Promise<boolean> {
    return mysqlNow(this.db).then(
      () => true,
      () => false,
    );
  }

  /**
   * Persists a batch of accepted orders in one transaction with multi-row inserts: the
   * order, its lines, its first two history entries and its stock reservations. Orders
   * already in MySQL are skipped, so a re-delivered job changes nothing.
   * Returns the orders written by this call (by id, in id order), each with the payment deadline
   * written: its buyer could not pay it while it waited, so its payment window runs from the
   * write by MySQL's clock, the clock its expiry is compared with (persistedPaymentDeadline).
   *
   * A batch's orders are nearly always new: only a re-delivered job (a worker that died after
   * its commit, an operator's replay) brings orders already written. So the first attempt
   * inserts without looking them up, which spares MySQL a lookup per order (bench/README item
   * 38); a duplicate rolls that attempt back, and the next ones write only the orders not found.
   *
   * Each coupon use is recorded under its number among the buyer's uses, unique per coupon and
   * buyer (numberCouponUses): a batch racing this one for a buyer's last use makes the loser's
   * insert clash and its next attempt find the use gone, CouponUsedUpMeanwhile.
   *
   * `rulesVersion`: the version of the pricing rules the orders were priced with (rulesFor); a
   * change since that prices them otherwise throws PricingRulesChangedMeanwhile (holdRulesVersion).
   * Absent for orders priced with rules not read from MySQL.
   */
  async persistAcceptedOrders(batch: readonly OrderToPersist[], now: Date, rulesVersion?: RulesVersion): Promise<Map<string, Date>> {
    // in order-id order, so that batches racing over the same orders lock their rows in one order
    const unique = [...new Map(batch.map((o) => [o.accepted.orderId, o])).values()].sort((a, b) => (a.accepted.orderId < b.accepted.orderId ? -1 : 1));
    if (unique.length === 0) return new Map();
    // a duplicate key on attempt 1: an order written before; later: another batch wrote one
    // between our lookup and insert. A deadlock: batches racing over the same orders, one rolled
    // back while two others waited on its rows. Each retry follows another batch's progress on
    // these orders, so the racing batches bound them.
    return retryTransaction(
      (attempt) =>
        this.db.transaction().execute(async (trx) => {
          if (rulesVersion !== undefined) await holdRulesVersion(trx, rulesVersion);
          const fresh = attempt === 1 ? unique : await notYetWritten(trx, unique);
          if (fresh.length === 0) return new Map<string, Date>();
          // one read of MySQL's clock for the whole batch
          const writtenAt = await mysqlNow(trx);
          const deadlines = new Map(fresh.map((o) => [o.accepted.orderId, persistedPaymentDeadline(o.accepted, writtenAt)]));
          await insertOrders(trx, fresh, now, deadlines, await numberCouponUses(trx, fresh));
          return deadlines;
        }),
      { attempts: PERSIST_ATTEMPTS, alsoAfter: isDuplicateKey },
    );
  }

  /**
   * Applies one action to an order: checks it against the order type's table, moves the
   * status with an optimistic version check, appends the history and writes the effects,
   * all in one transaction. Throws IllegalTransition (changing nothing) or StaleOrderVersion.
   */
  async applyTransition(request: TransitionRequest): Promise<TransitionResult> {
    return this.db.transaction().execute((trx) => transitionIn(trx, request));
  }

  /**
   * Applies several actions in turn in one transaction (e.g. one request's refunds of a
   * split order's children): one refused or stale rolls back every one.
   */
  async applyTransitions(requests: readonly TransitionRequest[]): Promise<TransitionResult[]> {
    return this.db.transaction().execute(async (trx) => {
      const results: TransitionResult[] = [];
      for (const request of requests) results.push(await transitionIn(trx, request));
      return results;
    });
  }

  /**
   * After a refund of an order was paid back: the split order it is, or is part of (none for an
   * order not split), closes once the buyer is owed nothing of its own: each child still
   * REFUNDING with nothing owed of its own (refunded whole before the split, it waited for the
   * order's refund) closes, the payment system's word as after any refund, and the order, held
   * open while its buyer was owed money (deriveParentStatus), takes the status its children give
   * it. The order's lock comes first, as every child's move takes it. Run again after a child
   * moved meanwhile (a stale version) or a deadlock. The children's transitions.
   */
  async closeSplitOrderOnceRefunded(order: Pick<OrderRow, 'order_id' | 'parent_order_id'>, change: { at: Date; detail: string }): Promise<TransitionResult[]> {
    const splitOrderId = order.parent_order_id ?? order.order_id;
    return retryTransaction(
      () =>
        this.db.transaction().execute(async (trx) => {
          await trx.selectFrom('orders').select('order_id').where('order_id', '=', splitOrderId).forUpdate().execute();
          const children = await OrderRepository.lockChildren(trx, splitOrderId);
          if (children.length === 0) return [];
          const closed: TransitionResult[] = [];
          if ((await refundsOwedIn(trx, [splitOrderId])).length === 0) {
            for (const child of children.filter((c) => c.status === 'REFUNDING')) {
              if ((await refundsOwedIn(trx, [child.order_id])).length > 0) continue;
              closed.push(await transitionIn(trx, { orderId: child.order_id, action: 'refund_succeeded', actor: 'payment', ...change }));
            }
          }
          // a child's refund named as any step a child gives the order: a merchant's view of it hides another merchant's
          const detail = order.parent_order_id === null ? change.detail : `derived from child order ${order.order_id}`;
          await deriveParentStatus(trx, splitOrderId, { action: 'refund_succeeded', actor: 'payment', detail }, change.at);
          return closed;
        }),
      { alsoAfter: afterStaleOrderVersion },
    );
  }

  /**
   * When each timer the effects start falls due, as its transition will decide it (dueAfter, by
   * MySQL's clock), and MySQL's time now, in one read: what its job has left to wait, whether it
   * is enqueued just after the step that started it or again long after (a repeated callback).
   */
  async timersDue(orderId: string, effects: readonly Effect[], settings: TimerSettings): Promise<TimersDue> {
    const order = await this.db
      .selectFrom('orders as o')
      .select((eb) => [
        'o.payment_deadline',
        'o.balance_deadline',
        sql<Date>`UTC_TIMESTAMP(3)`.as('now'),
        eb
          .selectFrom('order_history as h')
          .select('h.at')
          .whereRef('h.order_id', '=', 'o.order_id')
          .whereRef('h.to_status', '=', 'o.status')
          .orderBy('h.version', 'desc')
          .limit(1)
          .as('entered_at'),
      ])
      .where('o.order_id', '=', orderId)
      .executeTakeFirstOrThrow();
    const timers = effects.filter(startsATimer).map((effect) => [effect, timerDeadlineOf(effect, settings)] as const);
    // the after-sales window reads the order's steps into DELIVERED since its delivery, and the returns between them
    const steps = timers.some(([, deadline]) => isAfterSalesWindow(deadline)) ? await windowStepsOf(this.db, orderId) : [];
    const dueAt = Object.fromEntries(timers.map(([effect, deadline]) => [effect, isAfterSalesWindow(deadline) ? windowEndOf(steps, deadline) : deadlineFrom(order, order.entered_at, deadline)]));
    return { now: order.now, dueAt };
  }

  /** Of these orders, those written with a coupon their pricing applied (couponUseOf): each holds, or held, a use of it. */
  async withCouponApplied(orderIds: readonly string[]): Promise<Set<string>> {
    if (orderIds.length === 0) return new Set();
    const rows = await this.db.selectFrom('orders').select(['order_id', 'coupon_code', 'benefits']).where('order_id', 'in', orderIds).execute();
    return new Set(rows.filter((row) => couponUseOf(row) !== null).map((row) => row.order_id));
  }

  async findOrderRow(orderId: string): Promise<OrderRow | null> {
    return (await this.db.selectFrom('orders').selectAll().where('order_id', '=', orderId).executeTakeFirst()) ?? null;
  }

  async findOrder(orderId: string): Promise<OrderView | null> {
    const order = await this.findOrderRow(orderId);
    return order && (await this.viewsOf([order]))[0]!;
  }

  /**
   * The full view of each order (lines, history, payment, shipments, sub-orders), read for all of
   * them at once; a split order lists its children's shipments. A split order's child shows the payment that paid it, its parent's (payerOf):
   * the parents' payments and pay steps are read with the rest, whoever lists the children.
   */
  private async viewsOf(orders: OrderRow[]): Promise<OrderView[]> {
    const orderIds = orders.map((order) => order.order_id);
    const parentIds = [...new Set(orders.flatMap((order) => (order.parent_order_id === null ? [] : [order.parent_order_id])))];
    const [[items, history, payments, shipments, children, parentPaySteps = []], refundsOwed] = await Promise.all([
      selectTogether(this.db, [
        this.db.selectFrom('order_items').selectAll().where('order_id', 'in', orderIds).orderBy('line_no'),
        this.db.selectFrom('order_history').selectAll().where('order_id', 'in', orderIds).orderBy('version'),
        this.db.selectFrom('payments').selectAll().where('order_id', 'in', [...orderIds, ...parentIds]).orderBy('created_at').orderBy('payment_id'),
        // a split order's parcels are its children's: the buyer reads them on the order they placed
        this.db
          .selectFrom('shipments')
          .selectAll()
          .where((eb) => eb.or([eb('order_id', 'in', orderIds), eb('order_id', 'in', eb.selectFrom('orders').select('order_id').where('parent_order_id', 'in', orderIds))]))
          .orderBy('created_at')
          .orderBy('shipment_id'),
        this.db.selectFrom('orders').select(['order_id', 'parent_order_id', 'change_refused_at']).where('parent_order_id', 'in', orderIds).orderBy('order_id'),
        ...(parentIds.length === 0 ? [] : [this.db.selectFrom('order_history').select(['order_id', 'action', 'detail']).where('order_id', 'in', parentIds).where('action', 'in', PAYMENT_ACTIONS)]),
      ]),
      this.timers ? refundsOwedIn(this.db, awaitingCompletion(orders)) : [],
    ]);
    const of = <T extends { order_id: string }>(rows: T[], orderId: string) => rows.filter((row) => row.order_id === orderId);
    return orders.map((order) => {
      const own = of(history, order.order_id);
      const payer = payerOf(order);
      const paidBy = of(payments, payer).filter((p) => p.status === 'SUCCEEDED').reverse();
      // the latest payment that paid the order (its payer's pay transition names it), not one that
      // came late and went back; an order no payment paid shows the latest that succeeded
      const payerSteps = payer === order.order_id ? own : of(parentPaySteps, payer);
      const payment = paidBy.find((p) => paidTheOrder(p.payment_id, payerSteps)) ?? paidBy[0];
      const subOrders = children.filter((c) => c.parent_order_id === order.order_id).map((c) => c.order_id);
      return toOrderView(order, of(items, order.order_id), own, {
        payment: payment
          ? {
              paymentId: payment.payment_id,
              transactionId: payment.transaction_id,
              paidAt: payment.paid_at?.toISOString() ?? null,
              method: payment.method,
            }
          : null,
        // the order's own attempts: a child has none, and each of its parent's took the whole
        // order's amount, other merchants' lines included
        payments: of(payments, order.order_id).map((p) => ({
          paymentId: p.payment_id,
          purpose: p.purpose,
          amountCents: Number(p.amount_cents),
          status: p.status,
          transactionId: p.transaction_id,
          paidAt: p.paid_at?.toISOString() ?? null,
          // one sent before first_requested_at was kept counts from its opening, as the give-up does (process-repository)
          firstSentAt: p.requested_at === null ? null : (p.first_requested_at ?? p.created_at).toISOString(),
        })),
        shipments: shipments
          .filter((s) => s.order_id === order.order_id || subOrders.includes(s.order_id))
          .map((s) => {
            // the parcel's own order holds the refusal: the order itself, or the child that ships it
            const refusedAt = s.order_id === order.order_id ? order.change_refused_at : (children.find((c) => c.order_id === s.order_id)?.change_refused_at ?? null);
            return { shipmentId: s.shipment_id, orderId: s.order_id, warehouseId: s.warehouse_id, trackingNo: s.tracking_no, status: s.status, changeRefusedAt: refusedAt?.toISOString() ?? null };
          }),
        subOrders,
      }, this.timers && { settings: this.timers, refundsOwed: refundsOwed.filter((refund) => refund.orderId === order.order_id || refund.orderId === order.parent_order_id).map((refund) => refund.refundId) });
    });
  }

  /**
   * Unpaid orders (payment or deposit due) whose payment deadline passed more than
   * `overdueForMs` ago by MySQL's clock, oldest first, but for those whose deadline job waited for
   * a payment asked in time (paymentAwaitedAt, up to `paymentWaitMs` past the deadline) less than
   * `overdueForMs` ago plus the `answerLookedAtMs` it takes to look at the payment's answer: their
   * grace runs from the end of that wait, as their job expires them then. The scan of the status
   * index stops at the orders accepted `shortestTimeoutMs` (the least time any order has to pay)
   * before that instant: none accepted after can be past its deadline yet. Their ids carry the time
   * of the clock that set their deadline, and the bound is by MySQL's clock too: a sweeping worker's
   * clock running behind would leave out orders past their deadline.
   */
  async overdueUnpaidOrderIds(overdueForMs: number, shortestTimeoutMs: number, paymentWaitMs: number, answerLookedAtMs: number, limit: number): Promise<string[]> {
    const deadlineBefore = (await mysqlNow(this.db)) - overdueForMs;
    const rows = await this.db
      .selectFrom('orders as o')
      .select('o.order_id')
      .where('o.status', 'in', ['PENDING_PAYMENT', 'PENDING_DEPOSIT'])
      .where('o.order_id', '<', firstOrderIdAt(deadlineBefore - shortestTimeoutMs))
      .where('o.payment_deadline', '<', new Date(deadlineBefore))
      .where(noPaymentAwaitedAt('payment', overdueSince(overdueForMs + answerLookedAtMs), paymentWaitMs))
      .orderBy('o.order_id')
      .limit(limit)
      .execute();
    return rows.map((row) => row.order_id);
  }

  /**
   * Presales whose deposit is paid and whose balance deadline passed more than `overdueForMs` ago
   * by MySQL's clock, oldest first, but for those whose deadline job waited for a balance asked in
   * time (paymentAwaitedAt, up to `balanceWaitMs` past the deadline) less than `overdueForMs` ago
   * plus the `answerLookedAtMs` it takes to look at the balance's answer: their grace runs from the
   * end of that wait, as their job forfeits them then.
   */
  async overdueBalanceOrderIds(overdueForMs: number, balanceWaitMs: number, answerLookedAtMs: number, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('orders as o')
      .select('o.order_id')
      .where('o.status', '=', 'DEPOSIT_PAID')
      .where('o.balance_deadline', '<', overdueSince(overdueForMs))
      .where(noPaymentAwaitedAt('balance', overdueSince(overdueForMs + answerLookedAtMs), balanceWaitMs))
      .orderBy('o.order_id')
      .limit(limit)
      .execute();
    return rows.map((row) => row.order_id);
  }

  /**
   * Orders of these types in `status` for more than `waitedForMs` by MySQL's clock (since their
   * last change), oldest first, split parents left out (their status follows their children,
   * whose timers run); with `split`, split parents alone.
   */
  async waitingLongerThan(status: string, types: readonly OrderType[], waitedForMs: number, page: { offset: number; limit: number }, { split = false }: { split?: boolean } = {}): Promise<string[]> {
    const rows = await this.db
      .selectFrom('orders as o')
      .select('o.order_id')
      .where('o.status', '=', status)
      .where('o.updated_at', '<', overdueSince(waitedForMs))
      .where('o.type', 'in', types)
      .where((eb) => (split ? eb.not(notSplit('o.order_id')) : notSplit('o.order_id')))
      // the order's id breaks ties, so pages read at other offsets neither repeat nor miss an order
      .orderBy('o.updated_at')
      .orderBy('o.order_id')
      .limit(page.limit)
      .offset(page.offset)
      .execute();
    return rows.map((row) => row.order_id);
  }

  /** Whether every line of the order is a SKU of this merchant: what a merchant may act on (an order of several merchants is the buyer's and admins' to act on until it splits). */
  async orderOfMerchantAlone(orderId: string, merchantId: string): Promise<boolean> {
    const lines = await this.db.selectFrom('order_items').select('merchant_id').where('order_id', '=', orderId).execute();
    return lines.length > 0 && lines.every((line) => line.merchant_id === merchantId);
  }

  /** Whether any line of the order is a SKU of this merchant (a merchant's view of orders). */
  async orderHasMerchant(orderId: string, merchantId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('order_items')
      .select('order_id')
      .where('order_id', '=', orderId)
      .where('merchant_id', '=', merchantId)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Each line's SKU and merchant, and its order's status and last change, of all these orders at once (a merchant's view of their refunds and children). */
  async lineMerchants(orderIds: readonly string[]): Promise<Array<{ orderId: string; skuId: string; merchantId: string; orderStatus: string; orderUpdatedAt: string }>> {
    if (orderIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('order_items as i')
      .innerJoin('orders as o', 'o.order_id', 'i.order_id')
      .select(['i.order_id', 'i.sku_id', 'i.merchant_id', 'o.status', 'o.updated_at'])
      .where('i.order_id', 'in', orderIds)
      .execute();
    return rows.map((row) => ({ orderId: row.order_id, skuId: row.sku_id, merchantId: row.merchant_id, orderStatus: row.status, orderUpdatedAt: row.updated_at.toISOString() }));
  }

  /**
   * Every step of these orders in the order they were written (a merchant's view of a split order
   * follows its own children's): by the history row's id, as a child's move takes its parent's
   * lock first (transitionIn), so siblings' steps are written one after the other; their times alone
   * cannot tell two moved in the same millisecond apart.
   */
  async stepsOf(orderIds: readonly string[]): Promise<ChildStep[]> {
    if (orderIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('order_history')
      .select(['order_id', 'from_status', 'action', 'to_status', 'at', 'actor'])
      .where('order_id', 'in', orderIds)
      .orderBy('id')
      .execute();
    return rows.map((row) => ({ orderId: row.order_id, from: row.from_status, action: row.action, to: row.to_status, at: row.at.toISOString(), actor: row.actor }));
  }

  /**
   * Newest first, paged by order id (ids are time-sortable). Each page reads an index in
   * order-id order and stops after `limit` orders: a merchant's or SKU's orders are read down
   * the lines' index (merchant_id or sku_id, order_id), as the orders' own order would make
   * MySQL collect and sort all of them first (seconds for a merchant of 100k orders); the
   * dates also bound the order ids, so they read a range rather than every newer order.
   */
  async listOrders(filter: OrderListFilter): Promise<OrderView[]> {
    const byLine =
      filter.skuId !== undefined
        ? ({ column: 'line.sku_id', value: filter.skuId } as const)
        : filter.merchantId !== undefined
          ? ({ column: 'line.merchant_id', value: filter.merchantId } as const)
          : undefined;
    const orderId = sql.ref<string>(byLine ? 'line.order_id' : 'orders.order_id');
    const eb = expressionBuilder<Database, 'orders'>();
    const where: Expression<SqlBool>[] = [];
    if (filter.userId !== undefined) where.push(eb('orders.user_id', '=', filter.userId));
    if (filter.skuId !== undefined && filter.merchantId !== undefined) {
      // the SKU's lines lead; the merchant's are counted per order rather than tested with EXISTS,
      // which MySQL may run as a semi-join that reads all the merchant's lines first (seconds)
      const mine = eb.selectFrom('order_items as mine').select((sub) => sub.fn.countAll().as('lines')).whereRef('mine.order_id', '=', 'orders.order_id').where('mine.merchant_id', '=', filter.merchantId);
      where.push(eb(mine, '>', 0));
    }
    if (filter.parentOrderId !== undefined) where.push(eb('orders.parent_order_id', '=', filter.parentOrderId));
    // most orders are top-level: read in order-id order and filtered, as MariaDB reads the parent
    // index's NULL entries backwards from the top past every newer one (seconds deep in the list)
    if (filter.topLevel) where.push(eb(eb.fn.coalesce('orders.parent_order_id', sql.lit('')), '=', ''));
    if (filter.leaf) where.push(notSplit('orders.order_id'));
    // few parts ever fail or go unconfirmed: read from the parts by their status (refund_parts_unconfirmed), not by a look into every order's refunds
    const holdingParts = (status: 'FAILED' | 'SENT') =>
      eb.selectFrom('refund_parts as p').innerJoin('refunds as r', 'r.refund_id', 'p.refund_id').select('r.order_id').where('p.status', '=', status);
    if (filter.refundDeclined) where.push(eb(orderId, 'in', holdingParts('FAILED')));
    if (filter.refundUnconfirmedForMs !== undefined) where.push(eb(orderId, 'in', holdingParts('SENT').where(firstSent, '<', overdueSince(filter.refundUnconfirmedForMs))));
    // read from the pending payments by when they were sent (payments_pending_requested), as few are given up on
    if (filter.paymentUnconfirmedForMs !== undefined) where.push(eb(orderId, 'in', eb.selectFrom('payments').select('payments.order_id').where(paymentGivenUp(filter.paymentUnconfirmedForMs))));
    if (filter.status !== undefined) where.push(eb('orders.status', '=', filter.status));
    if (filter.type !== undefined) where.push(eb('orders.type', '=', filter.type));
    if (filter.createdFrom !== undefined) {
      where.push(eb('orders.created_at', '>=', filter.createdFrom));
      where.push(sql<SqlBool>`${orderId} >= ${firstOrderIdAt(filter.createdFrom.getTime() - this.lists.writtenWithinMs)}`);
    }
    if (filter.createdTo !== undefined) {
      where.push(eb('orders.created_at', '<', filter.createdTo));
      where.push(sql<SqlBool>`${orderId} < ${firstOrderIdAt(filter.createdTo.getTime() + CLOCK_SKEW_MS)}`);
    }
    if (filter.before !== undefined) where.push(sql<SqlBool>`${orderId} < ${filter.before}`);
    const orders = byLine
      ? await this.db
          .selectFrom('order_items as line')
          .innerJoin('orders', 'orders.order_id', 'line.order_id')
          .selectAll('orders')
          .where(byLine.column, '=', byLine.value)
          .where(eb.and(where))
          // an order has several lines of one merchant (or SKU): grouped in the index's order, not sorted
          .groupBy('line.order_id')
          .orderBy('line.order_id', 'desc')
          .limit(filter.limit)
          .execute()
      : (await sql<OrderRow>`select * from orders ${walkedIndex(filter)} where ${eb.and(where)} order by orders.order_id desc limit ${filter.limit}`.execute(this.db)).rows;
    return orders.length === 0 ? [] : this.viewsOf(orders);
  }

  /** Ledger rows in the same transaction as a transition (e.g. a release on expiry). */
  static async writeLedger(trx: Transaction<Database>, entries: NewLedgerEntry[]): Promise<void> {
    await insertRows(trx, 'stock_ledger', entries);
  }

  /**
   * In a closing transition's transaction (cancel, expiry, a payment-time SKU sold out at
   * payment): the ledger's release rows of the order's lines, with the transition's action as
   * reason, and the buyer's coupon use given back. Redis is released after the commit. A
   * payment-time line's row carries 0 (it took nothing), as a placement line's commit does: it
   * says the order holds none of its units, which a paid order refunded as sold out says nowhere
   * else (its buyer's flash-sale count, as the stock repair sums it from MySQL).
   */
  static async releaseReservation(trx: Transaction<Database>, orderId: string, reason: string, at: Date): Promise<void> {
    const lines = await trx.selectFrom('order_items').select(['sku_id', 'qty', 'deduction']).where('order_id', '=', orderId).execute();
    await OrderRepository.writeLedger(
      trx,
      lines.map((line) => ({ sku_id: line.sku_id, kind: 'release' as const, ref: orderId, order_id: orderId, qty: line.deduction === 'placement' ? line.qty : 0, reason })),
    );
    await OrderRepository.restoreCoupon(trx, orderId, at);
  }

  /**
   * A split order's children, locked and as they are now; none for an order not split. Found
   * with a plain read, then locked by primary key. A split writes every child at once, under the
   * parent's lock, and the callers' snapshot comes after it: taken after that lock, or found
   * current by a move of the order or of a child (a split moves the parent). A locking read by
   * parent_order_id took next-key locks on that index: up to the next split order's children, or,
   * below the oldest, the gap where every new order's entry goes (no parent sorts first), and
   * the persist batches and other splits waited until the caller committed.
   */
  static async lockChildren(trx: Transaction<Database>, parentId: string): Promise<Array<{ order_id: string; status: string }>> {
    const found = await trx.selectFrom('orders').select('order_id').where('parent_order_id', '=', parentId).execute();
    if (found.length === 0) return [];
    return trx
      .selectFrom('orders')
      .select(['order_id', 'status'])
      .where('order_id', 'in', found.map((child) => child.order_id))
      .orderBy('order_id')
      .forUpdate()
      .execute();
  }

  /**
   * In a cancellation's transaction: the buyer's use of the order's coupon is theirs again (once;
   * Redis follows after the commit). Written by the redemption's key, once a plain read found it
   * (an order may name a coupon its pricing did not apply): by the order id alone, or by a key
   * with no row, it locked the range of an index up to the newest order, and the persist
   * batches recording new orders' uses waited for the cancellation to commit.
   */
  static async restoreCoupon(trx: Transaction<Database>, orderId: string, at: Date): Promise<void> {
    const held = await trx.selectFrom('coupon_redemptions').select('code').where('order_id', '=', orderId).where('status', '=', 'used').executeTakeFirst();
    if (!held) return;
    // the status again, as the locking write reads it: a give-back committed meanwhile leaves it restored once
    await trx.updateTable('coupon_redemptions').set({ status: 'restored', at }).where('code', '=', held.code).where('order_id', '=', orderId).where('status', '=', 'used').execute();
  }

  /** The order's reservation as MySQL has it (reservationsOf), for the payment commit to put back a record Redis lost. */
  async reservationOf(order: OrderRow): Promise<OrderReservation> {
    return (await reservationsOf(this.db, [order]))[0]!;
  }
}

/**
 * Orders' reservations as MySQL has them, for Redis to get back records it lost (a restart
 * without its AOF, a failover to a replica that was behind): each order's lines, and its
 * coupon while its redemption is still used (a closed order's went back with its closing).
 */
export async function reservationsOf(db: OrderDb, orders: readonly OrderRow[]): Promise<OrderReservation[]> {
  if (orders.length === 0) return [];
  const ids = orders.map((order) => order.order_id);
  const [lines, usedCoupons] = await Promise.all([
    db.selectFrom('order_items').select(['order_id', 'sku_id', 'qty', 'deduction']).where('order_id', 'in', ids).orderBy('order_id').orderBy('line_no').execute(),
    db.selectFrom('coupon_redemptions').select('order_id').where('order_id', 'in', ids).where('status', '=', 'used').execute(),
  ]);
  const linesOf = new Map<string, OrderReservation['lines']>();
  for (const line of lines) {
    const known = linesOf.get(line.order_id) ?? [];
    linesOf.set(line.order_id, known);
    known.push({ skuId: line.sku_id, qty: line.qty, deduction: line.deduction as Deduction });
  }
  const holdingCoupon = new Set(usedCoupons.map((row) => row.order_id));
  return orders.map((order) => ({
    orderId: order.order_id,
    userId: order.user_id,
    type: order.type as OrderType,
    lines: linesOf.get(order.order_id) ?? [],
    address: addressOf(order),
    couponCode: holdingCoupon.has(order.order_id) ? order.coupon_code : null,
    acceptedAt: order.accepted_at,
    paymentDeadline: order.payment_deadline,
  }));
}

/**
 * A history step's detail cut to its column's 500 characters, counted as MySQL counts them (code
 * points): cut by UTF-16 units, a reason of emoji kept half of itself, or ended in half an emoji.
 */
export function historyDetail(text: string): string {
  return text.length <= 500 ? text : [...text].slice(0, 500).join('');
}

/** One transition in the caller's transaction (applyTransition, applyTransitions). */
async function transitionIn(trx: Transaction<Database>, request: TransitionRequest): Promise<TransitionResult> {
  // the row and what its guards read, in one round trip and so one snapshot: every step of every order starts here
  const [[order], [child]] = await selectTogether(trx, [
    trx.selectFrom('orders').selectAll().where('order_id', '=', request.orderId),
    firstChildOf(trx, request.orderId),
  ]);
  if (!order) throw new IllegalTransition('UNKNOWN', request.action, request.actor);
  // a child's move re-derives its parent: take the parent's lock first, so siblings
  // moving at once queue on it instead of deadlocking on each other's rows
  if (order.parent_order_id !== null) await trx.selectFrom('orders').select('order_id').where('order_id', '=', order.parent_order_id).forUpdate().execute();
  const facts: OrderFacts = { split: child !== undefined, child: order.parent_order_id !== null };
  const fired = stateMachineFor(order.type as OrderType).fire(order.status, request.action, request.actor, facts);
  // a timer's transition is recorded at MySQL's time, which found it due, and so is one that starts
  // a timer (a delivery starts the after-sales window): whatever the clock of the worker or api
  // host that fired it says, the timer gives the order its whole time by MySQL's clock
  const stamped = request.dueAfter
    ? await dueNow(trx, order, request.dueAfter)
    : fired.effects.some(startsATimer)
      ? new Date(await mysqlNow(trx))
      : request.at;
  // never before the order's last step (its updated_at): the hosts that fire an order's steps date them by
  // clocks a few seconds apart, and a step dated before the one it follows read out of order in its history
  const at = new Date(Math.max(stamped.getTime(), order.updated_at.getTime()));
  if (request.openUntil) await refuseOnceDue(trx, order, request.openUntil);
  const updated = await trx
    .updateTable('orders')
    .set({ status: fired.to, version: order.version + 1, updated_at: at })
    .where('order_id', '=', order.order_id)
    .where('version', '=', order.version)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) !== 1) throw new StaleOrderVersion(order.order_id);
  await trx
    .insertInto('order_history')
    .values({
      order_id: order.order_id,
      version: order.version + 1,
      from_status: fired.from,
      action: fired.action,
      to_status: fired.to,
      actor: fired.actor,
      // cut to its column here, whatever the step: a longer one (a split into 18 children, their ids listed) failed the whole step
      detail: request.detail === undefined ? null : historyDetail(request.detail),
      at,
    })
    .execute();
  await request.effects?.(trx, order, fired);
  if (order.parent_order_id !== null && fired.from !== fired.to) {
    await deriveParentStatus(trx, order.parent_order_id, { action: fired.action, actor: fired.actor, detail: `derived from child order ${order.order_id}` }, at);
  }
  return { order: { ...order, status: fired.to, version: order.version + 1 }, fired };
}

/**
 * Now by MySQL's clock, once the order's deadline has passed by it; throws DeadlineAhead while
 * the deadline lies ahead. MySQL's is the one clock every process shares, where the callers'
 * own (the timer's, a sweep's) may run ahead or behind.
 */
async function dueNow(trx: Transaction<Database>, order: OrderRow, due: TimerDeadline): Promise<Date> {
  const deadline = await deadlineOf(trx, order, due);
  const now = await mysqlNow(trx);
  if (deadline !== null && deadline.getTime() > now) throw new DeadlineAhead(order.order_id, deadline, deadline.getTime() - now);
  return new Date(now);
}

/**
 * Throws DeadlinePassed once the order's deadline has come by MySQL's clock: from the instant
 * the timer's transition of that deadline may fire (dueNow), or at once when the order has none.
 */
async function refuseOnceDue(trx: Transaction<Database>, order: OrderRow, due: TimerDeadline): Promise<void> {
  const deadline = await deadlineOf(trx, order, due);
  if (deadline === null || deadline.getTime() <= (await mysqlNow(trx))) throw new DeadlinePassed(order.order_id, deadline);
}

/** The instant a timer's transition of the order is due (TimerDeadline); null when the order has none. */
async function deadlineOf(trx: Transaction<Database>, order: OrderRow, due: TimerDeadline): Promise<Date | null> {
  if (typeof due === 'string') return deadlineFrom(order, null, due);
  if (isAfterSalesWindow(due)) return windowEndOf(await windowStepsOf(trx, order.order_id), due);
  const entered = await trx
    .selectFrom('order_history')
    .select('at')
    .where('order_id', '=', order.order_id)
    .where('to_status', '=', order.status)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
  return deadlineFrom(order, entered?.at ?? null, due);
}

/**
 * A timer's deadline (TimerDeadline) from the order's deadline columns and its last entry in the
 * status it is in (`enteredAt`); the after-sales window's is read from the order's steps (windowEndOf).
 */
function deadlineFrom(order: Pick<OrderRow, 'payment_deadline' | 'balance_deadline'>, enteredAt: Date | null, due: Exclude<TimerDeadline, AfterSalesWindow>): Date | null {
  if (typeof due === 'string') return order[due];
  return enteredAt && new Date(enteredAt.getTime() + due.inStatusForMs);
}

/** The order's steps the after-sales window reads (afterSalesWindowEnd): into DELIVERED, and the returns asked, oldest first. */
async function windowStepsOf(db: OrderDb | Transaction<Database>, orderId: string): Promise<WindowStep[]> {
  const rows = await db
    .selectFrom('order_history')
    .select(['from_status', 'action', 'to_status', 'at'])
    .where('order_id', '=', orderId)
    .where((eb) => eb.or([eb('to_status', '=', 'DELIVERED'), eb('action', '=', 'request_return')]))
    .orderBy('version')
    .execute();
  return rows.map((row) => ({ from: row.from_status, action: row.action, to: row.to_status, at: row.at }));
}

/** The after-sales window's end (afterSalesWindowEnd) by the order's steps. */
function windowEndOf(steps: readonly WindowStep[], due: AfterSalesWindow): Date | null {
  return afterSalesWindowEnd(steps, due.afterSalesWindowMs, due.graceMs);
}

/**
 * A split parent's status follows its children (DESIGN.md): after a child moves, the
 * parent is re-derived in the same transaction, and so it is once a refund owed of it is paid
 * back (closeSplitOrderOnceRefunded): while the buyer is owed one, of the order or of a child,
 * it does not read closed. The parent row is locked first and the children are locked as they
 * are now (lockChildren), so two children moving at once are serialised and the second sees the
 * first; so are the refunds owed (refundsOwedNow), so a refund paid back while a child moved,
 * its settlement's close run before this write, is seen paid. The parent's history records the step that moved it (a child's action and actor).
 */
async function deriveParentStatus(trx: Transaction<Database>, parentId: string, step: { action: string; actor: Actor; detail: string }, at: Date): Promise<void> {
  const parent = await trx.selectFrom('orders').selectAll().where('order_id', '=', parentId).forUpdate().executeTakeFirst();
  if (!parent) return;
  const children = await OrderRepository.lockChildren(trx, parentId);
  const owed = await refundsOwedNow(trx, [parentId, ...children.map((c) => c.order_id)]);
  const derived = deriveFromChildren(stateMachineFor(parent.type as OrderType), children.map((c) => c.status), owed.length > 0);
  if (derived === parent.status) return;
  await trx.updateTable('orders').set({ status: derived, version: parent.version + 1, updated_at: at }).where('order_id', '=', parentId).execute();
  await trx
    .insertInto('order_history')
    .values({
      order_id: parentId,
      version: parent.version + 1,
      from_status: parent.status,
      action: step.action,
      to_status: derived,
      actor: step.actor,
      detail: step.detail,
      at,
    })
    .execute();
}

/** A priced line as its order_items row, before anything is refunded. */
export function orderItemRow(orderId: string, line: PricedLine) {
  return {
    order_id: orderId,
    line_no: line.lineNo,
    sku_id: line.skuId,
    title: line.title,
    merchant_id: line.merchantId,
    channel: line.channel,
    warehouse_id: line.warehouseId,
    deduction: line.deduction,
    qty: line.qty,
    list_price_cents: line.listPriceCents,
    unit_price_cents: line.unitPriceCents,
    discount_cents: line.discountCents,
    shipping_cents: line.shippingCents,
    payable_cents: line.payableCents,
    refunded_qty: 0,
    refunded_cents: 0,
    discounts: line.discounts.length > 0 ? JSON.stringify(line.discounts) : null,
  };
}

async function notYetWritten(trx: Transaction<Database>, orders: readonly OrderToPersist[]): Promise<OrderToPersist[]> {
  const existing = await trx
    .selectFrom('orders')
    .select('order_id')
    .where('order_id', 'in', orders.map((o) => o.accepted.orderId))
    .execute();
  const known = new Set(existing.map((row) => row.order_id));
  return orders.filter((o) => !known.has(o.accepted.orderId));
}

/**
 * The number each order's coupon use is recorded under (coupon_redemptions.use_no): the lowest
 * its buyer holds none of (held_use_no, the numbers of the uses still 'used'), up to the
 * coupon's per-buyer limit, as this transaction reads them.
 * A batch that commits the same number meanwhile makes the insert clash, and the transaction
 * runs again. Throws CouponUsedUpMeanwhile when a buyer has fewer uses left than orders priced
 * with one. The orders' own uses are left out: an order already written clashes on its id.
 */
async function numberCouponUses(trx: Transaction<Database>, orders: readonly OrderToPersist[]): Promise<Map<string, number>> {
  const redeeming = orders.filter((o) => o.priced.applied.coupon);
  if (redeeming.length === 0) return new Map();
  const codes = [...new Set(redeeming.map((o) => o.priced.applied.coupon!.code))];
  const limits = await trx.selectFrom('coupons').select(['code', 'per_buyer_limit']).where('code', 'in', codes).execute();
  const held = await trx
    .selectFrom('coupon_redemptions')
    .select(['code', 'user_id', 'held_use_no'])
    .where('code', 'in', codes)
    .where('user_id', 'in', [...new Set(redeeming.map((o) => o.accepted.userId))])
    .where('held_use_no', 'is not', null)
    .where('order_id', 'not in', orders.map((o) => o.accepted.orderId))
    .execute();
  const limitOf = new Map(limits.map((row) => [row.code, row.per_buyer_limit]));
  const taken = new Map<string, Set<number>>();
  for (const row of held) {
    const key = `${row.code}\u0000${row.user_id}`;
    taken.set(key, (taken.get(key) ?? new Set()).add(row.held_use_no!));
  }
  const numbers = new Map<string, number>();
  const usedUp: string[] = [];
  for (const { accepted, priced } of redeeming) {
    const code = priced.applied.coupon!.code;
    const key = `${code}\u0000${accepted.userId}`;
    const numbersTaken = taken.get(key) ?? new Set<number>();
    taken.set(key, numbersTaken);
    let next = 1;
    while (numbersTaken.has(next)) next++;
    if (next > (limitOf.get(code) ?? 0)) {
      usedUp.push(accepted.orderId);
      continue;
    }
    numbersTaken.add(next);
    numbers.set(accepted.orderId, next);
  }
  if (usedUp.length > 0) throw new CouponUsedUpMeanwhile(usedUp);
  return numbers;
}

async function insertOrders(trx: Transaction<Database>, orders: readonly OrderToPersist[], now: Date, paymentDeadlines: ReadonlyMap<string, Date>, couponUses: ReadonlyMap<string, number>): Promise<void> {
  const persist = (type: string) => stateMachineFor(type as OrderType).fire('ACCEPTED', 'persist', 'system');
  // written no earlier than placed: the checkout is dated by Redis's clock, and a worker whose own runs
  // behind it dated the order's next step before its first (its history read out of order)
  const writtenAt = (accepted: OrderToPersist['accepted']) => new Date(Math.max(now.getTime(), Date.parse(accepted.acceptedAt)));
  await insertRows(
    trx,
    'orders',
    orders.map(({ accepted, priced }) => ({
      order_id: accepted.orderId,
      parent_order_id: null,
      type: accepted.type,
      status: persist(accepted.type).to,
      version: 1,
      user_id: accepted.userId,
      channel: null,
      subtotal_cents: priced.amounts.subtotalCents,
      discount_cents: priced.amounts.discountCents,
      shipping_cents: priced.amounts.shippingCents,
      payable_cents: priced.amounts.payableCents,
      refunded_cents: 0,
      address: accepted.address && storedAddress(accepted.address),
      coupon_code: accepted.couponCode,
      benefits: JSON.stringify(priced.applied),
      idempotency_key: accepted.idempotencyKey ?? null,
      checkout_body_hash: accepted.bodyHash ?? null,
      accepted_at: new Date(accepted.acceptedAt),
      payment_deadline: paymentDeadlines.get(accepted.orderId)!,
      created_at: writtenAt(accepted),
      updated_at: writtenAt(accepted),
    })),
  );
  await insertRows(
    trx,
    'order_items',
    orders.flatMap(({ accepted, priced }) => priced.lines.map((line) => orderItemRow(accepted.orderId, line))),
  );
  await insertRows(
    trx,
    'order_history',
    orders.flatMap(({ accepted }) => {
      const fired = persist(accepted.type);
      return [
        { order_id: accepted.orderId, version: 0, from_status: null, action: CHECKOUT_ACTION, to_status: fired.from, actor: 'buyer', detail: null, at: new Date(accepted.acceptedAt) },
        { order_id: accepted.orderId, version: 1, from_status: fired.from, action: fired.action, to_status: fired.to, actor: fired.actor, detail: null, at: writtenAt(accepted) },
      ];
    }),
  );
  await insertRows(
    trx,
    'coupon_redemptions',
    orders.flatMap(({ accepted, priced }) =>
      priced.applied.coupon
        ? [{ code: priced.applied.coupon.code, order_id: accepted.orderId, user_id: accepted.userId, status: 'used' as const, at: writtenAt(accepted), use_no: couponUses.get(accepted.orderId)! }]
        : [],
    ),
  );
  await OrderRepository.writeLedger(
    trx,
    orders.flatMap(({ accepted, priced }) =>
      priced.lines
        .filter((line) => line.deduction === 'placement')
        .map((line) => ({ sku_id: line.skuId, kind: 'reserve' as const, ref: accepted.orderId, order_id: accepted.orderId, qty: -line.qty, reason: 'checkout' })),
    ),
  );
}

import { PaymentDeadlinePassed, benefitsOfPart, stateMachineFor, type AppliedBenefits, type ChildPlan, type DiscountShare, type Effect, type OrderType, type SplittableLine } from '@orders/domain';
import { sql, type Expression, type ExpressionBuilder, type SelectQueryBuilder, type SqlBool, type Transaction } from 'kysely';
import type { OrderDb } from './connection.js';
import { overdueSince } from './mysql-clock.js';
import { isDuplicateKey } from './mysql-errors.js';
import { refundsOwedIn } from './refunds-owed.js';
import { selectTogether } from './select-together.js';
import type { Database, OrderItemRow, OrderRow, PaymentRow, ShipmentRow } from './schema.js';

export type PaymentPurpose = 'full' | 'deposit' | 'balance';

/** The step of an order's history into the status it has (ProcessRepository.lastStep). */
export interface LastStep {
  order: OrderRow;
  action: string;
  actor: string;
  /** what its rule asks for once it has committed */
  effects: readonly Effect[];
}

export interface NewPayment {
  orderId: string;
  purpose: PaymentPurpose;
  method: string;
  amountCents: number;
  at: Date;
}

/** A child order to write: its id and its share of the parent's lines and amounts. */
export interface ChildToInsert {
  orderId: string;
  plan: ChildPlan<SplittableLine & { row: OrderItemRow }>;
}

/** Shipment statuses of a parcel still in its warehouse. */
export const UNSHIPPED_PARCEL: ReadonlySet<string> = new Set(['ACCEPTED', 'PICKED', 'PACKED']);

/**
 * How each step of a parcel moves its shipment, whoever reports it (the warehouse's callback, a
 * merchant moving an imported order on by hand): from one of `from` to `to`; a repeat finds it there.
 */
export const SHIPMENT_STEPS = {
  pick: { from: ['ACCEPTED'], to: 'PICKED' },
  pack: { from: ['ACCEPTED', 'PICKED'], to: 'PACKED' },
  ship: { from: [...UNSHIPPED_PARCEL], to: 'SHIPPED' },
  // a delivery stands for a SHIPPED that was lost
  deliver: { from: [...UNSHIPPED_PARCEL, 'SHIPPED'], to: 'DELIVERED' },
} as const satisfies Record<string, { from: readonly string[]; to: string }>;

/** Where a paid order goes when it is refunded whole before it shipped (PAID or IN_FULFILLMENT --refund-->): its parcel, if any, is to be dropped. */
export const REFUNDED_WHOLE: ReadonlySet<string> = new Set(['REFUNDING', 'REFUNDED']);

/** The transitions a payment fires; each names its payment in its history detail (paymentDetail). */
export const PAYMENT_ACTIONS: readonly string[] = ['pay', 'pay_deposit'];

/** The history detail of the transition a payment fired: what tells a payment that paid its order from one that came late. */
export function paymentDetail(paymentId: string, transactionId: string): string {
  return `payment ${paymentId}, transaction ${transactionId}`;
}

/** Whether the order's history holds the pay transition this payment fired: it paid the order, rather than coming late and going back. */
export function paidTheOrder(paymentId: string, history: ReadonlyArray<{ action: string; detail: string | null }>): boolean {
  const named = paymentDetail(paymentId, '');
  return history.some((step) => PAYMENT_ACTIONS.includes(step.action) && step.detail?.startsWith(named) === true);
}

/**
 * What a deadline is owed: the payment (an order's in full, a presale's deposit) by its
 * `payment_deadline`, or a presale's balance by its `balance_deadline`. Each deadline waits for a
 * payment of its own purposes that its buyer asked for in time (paymentAwaitedAt).
 */
export type DeadlineOwing = 'payment' | 'balance';

const OWED_BY_DEADLINE = {
  payment: { purposes: ['full', 'deposit'], deadline: sql.ref<Date>('o.payment_deadline'), statuses: ['PENDING_PAYMENT', 'PENDING_DEPOSIT'] },
  balance: { purposes: ['balance'], deadline: sql.ref<Date>('o.balance_deadline'), statuses: ['DEPOSIT_PAID'] },
} as const;

/**
 * Whether, at `at` by MySQL's clock, an order's deadline (`owing`) waits for the payment `p` of
 * its order `o`: the buyer asked for it in time (every payment was: openPayment opens none after
 * its deadline), it was unanswered then (pending still, or answered since), and `at` is less than
 * `waitMs` past the deadline. The deadline job asks it of now; the overdue sweep of an instant as
 * far back as it leaves the jobs due to run, so that it takes no order its job is still waiting for.
 */
export function paymentAwaitedAt(owing: DeadlineOwing, at: Expression<Date>, waitMs: number): Expression<SqlBool> {
  const { purposes, deadline } = OWED_BY_DEADLINE[owing];
  return sql<SqlBool>`p.purpose IN (${sql.join(purposes)}) AND ${deadline} + INTERVAL ${waitMs * 1000} MICROSECOND > ${at} AND (p.status = 'PENDING' OR p.updated_at > ${at})`;
}

/**
 * A deadline's transition refused in its transaction: a payment its buyer asked for before the
 * deadline is unanswered (paymentAwaitedAt), and decides the order when it is; looked at again in `dueInMs`.
 */
export class PaymentAwaited extends Error {
  override readonly name = 'PaymentAwaited';
  constructor(
    readonly orderId: string,
    readonly dueInMs: number,
  ) {
    super(`Order ${orderId} waits for a payment its buyer asked for before its deadline: looked at again in ${dueInMs} ms`);
  }
}

/** How long from now, by MySQL's clock, order `o`'s deadline (`owing`) still waits for a payment asked for in time: `waitMs` past it. */
function awaitedForMs(owing: DeadlineOwing, waitMs: number) {
  return sql<number>`TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(3), ${OWED_BY_DEADLINE[owing].deadline} + INTERVAL ${waitMs * 1000} MICROSECOND) DIV 1000`;
}

/** Whether, at `at`, no payment of order `o` is awaited by its deadline (`owing`; paymentAwaitedAt): the deadline decides the order then. */
export function noPaymentAwaitedAt(owing: DeadlineOwing, at: Expression<Date>, waitMs: number): Expression<SqlBool> {
  return sql<SqlBool>`NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id AND ${paymentAwaitedAt(owing, at, waitMs)})`;
}

/** One child of the order, if it was split: what the guards' `split` and the hand-over's check read (in a transaction or not). */
export function firstChildOf(db: OrderDb | Transaction<Database>, orderId: string) {
  return db.selectFrom('orders').select('order_id').where('parent_order_id', '=', orderId).limit(1);
}

/** The order that holds an order's payments: a split order's child was paid for through its parent. */
export function payerOf(order: Pick<OrderRow, 'order_id' | 'parent_order_id'>): string {
  return order.parent_order_id ?? order.order_id;
}

/**
 * When a payment was first sent: `first_requested_at`, or, for one sent before that column (or by a
 * worker of the build before it), its opening, as before. Not its opening alone: a payment opened
 * while the payment system's breaker is open is sent only once it closes, hours later in an outage,
 * and would get that much less of PAYMENT_CONFIRMATION_GIVE_UP_MS's asking.
 */
const firstRequested = sql<Date>`COALESCE(payments.first_requested_at, payments.created_at)`;

/**
 * A payment sent to the payment system, still PENDING, first sent longer than `givenUpAfterMs` ago
 * by MySQL's clock: nothing asks about it any more (PAYMENT_CONFIRMATION_GIVE_UP_MS), an operator's.
 */
export const paymentGivenUp =
  (givenUpAfterMs: number) =>
  (eb: ExpressionBuilder<Database, 'payments'>): Expression<SqlBool> =>
    eb.and([eb('payments.status', '=', 'PENDING'), eb('payments.requested_at', 'is not', null), eb(firstRequested, '<', overdueSince(givenUpAfterMs))]);

/** How a refund reads the payments it draws from. */
export interface PaymentsLock {
  /** latest paid first (the order a refund draws from them in), rather than oldest first */
  latestPaidFirst: boolean;
  /** runs once the payments are locked (FOR UPDATE), before the order's history is read */
  whileLocked: () => Promise<void>;
}

/**
 * The payments that paid the order (a presale: its deposit, then its balance), oldest first
 * unless `lock` says otherwise. An attempt that took the money after another had paid
 * (reported failed first, then succeeded) is SUCCEEDED too, but came late and went back: it
 * is not among them. With `lock`, in a transaction, the payments are locked and its
 * `whileLocked` runs before the history is read.
 */
export async function paymentsThatPaid(db: OrderDb | Transaction<Database>, orderId: string, lock?: PaymentsLock): Promise<PaymentRow[]> {
  const succeeded = (where: (query: SelectQueryBuilder<Database, 'payments', PaymentRow>) => SelectQueryBuilder<Database, 'payments', PaymentRow>) =>
    where(db.selectFrom('payments').selectAll().where('status', '=', 'SUCCEEDED'))
      .$if(lock?.latestPaidFirst !== true, (query) => query.orderBy('created_at').orderBy('payment_id'))
      .$if(lock?.latestPaidFirst === true, (query) => query.orderBy('paid_at', 'desc').orderBy('created_at', 'desc').orderBy('payment_id', 'desc'));
  let payments = await succeeded((query) => query.where('order_id', '=', orderId)).execute();
  if (lock) {
    // locked by primary key, as they are now: a locking read by order_id locked that index up to
    // the next order's payments, and a buyer paying a newer order waited for the refund to commit.
    // A payment that paid the order since this snapshot moved it, which `whileLocked` refuses.
    const ids = payments.map((payment) => payment.payment_id);
    payments = ids.length === 0 ? [] : await succeeded((query) => query.where('payment_id', 'in', ids)).forUpdate().execute();
    await lock.whileLocked();
  }
  const fired = await db.selectFrom('order_history').select(['action', 'detail']).where('order_id', '=', orderId).where('action', 'in', PAYMENT_ACTIONS).execute();
  return payments.filter((payment) => paidTheOrder(payment.payment_id, fired));
}

/** An order's one shipment, opened at `status` (its time of leaving or arriving set with it). */
function shipmentRow(order: OrderRow, warehouseId: string, status: 'ACCEPTED' | 'SHIPPED' | 'DELIVERED', change: { trackingNo: string | null; at: Date }) {
  return {
    shipment_id: `shp-${order.order_id}`,
    order_id: order.order_id,
    warehouse_id: warehouseId,
    tracking_no: change.trackingNo,
    status,
    created_at: change.at,
    updated_at: change.at,
    ...(status === 'SHIPPED' ? { shipped_at: change.at } : status === 'DELIVERED' ? { delivered_at: change.at } : {}),
  };
}

/** What a new payment is written with; the table's other columns start NULL. */
const PAYMENT_COLUMNS = ['payment_id', 'order_id', 'purpose', 'attempt', 'method', 'amount_cents', 'status', 'transaction_id', 'paid_at', 'created_at', 'updated_at'] as const;

/** Payments, shipments, refunds and children: the rows the forward life adds to an order. */
export class ProcessRepository {
  constructor(private readonly db: OrderDb) {}

  /**
   * The payment to collect for (order, purpose): the one still pending if there is one
   * (asking twice charges once), else a new attempt after a failed one, or after one taken
   * that did not pay the order and goes back whole (the payment system named another amount
   * than it asked for). Payment ids are `<orderId>-<purpose>-<attempt>`, the idempotency key
   * the payment system sees. `beforeOpening` runs before a new attempt is written, never for
   * the pending one answered again: what it throws opens none.
   */
  async openPayment(request: NewPayment, beforeOpening?: () => Promise<void>): Promise<{ payment: PaymentRow; created: boolean }> {
    for (let round = 1; ; round++) {
      const previous = await this.db
        .selectFrom('payments')
        .selectAll()
        .where('order_id', '=', request.orderId)
        .where('purpose', '=', request.purpose)
        .orderBy('attempt', 'desc')
        .executeTakeFirst();
      const goesBack = previous?.status === 'SUCCEEDED' && !(await this.paymentApplied(request.orderId, previous.payment_id));
      if (previous && previous.status !== 'FAILED' && !goesBack) return { payment: previous, created: false };
      await beforeOpening?.();
      const attempt = (previous?.attempt ?? 0) + 1;
      // due by the order's deadline, by MySQL's clock as the expiry's is: a payment asked later (before the
      // expiry ran) would pay an order about to expire, or a balance whose deposit is about to be forfeited
      const deadline = request.purpose === 'balance' ? 'balance_deadline' : 'payment_deadline';
      // the row as written, every column the table has (the type says so): read back, it would cost the pay a round trip
      const opened: PaymentRow = {
        payment_id: `${request.orderId}-${request.purpose}-${attempt}`,
        order_id: request.orderId,
        purpose: request.purpose,
        attempt,
        method: request.method,
        amount_cents: request.amountCents,
        status: 'PENDING',
        transaction_id: null,
        paid_at: null,
        refund_due_at: null,
        requested_at: null,
        first_requested_at: null,
        undecided_at: null,
        created_at: request.at,
        updated_at: request.at,
      };
      try {
        const inserted = await this.db
          .insertInto('payments')
          .columns(PAYMENT_COLUMNS)
          .expression((eb) =>
            eb
              .selectFrom('orders')
              .select(PAYMENT_COLUMNS.map((column) => eb.val(opened[column]).as(column)))
              .where('order_id', '=', request.orderId)
              .where((where) => where.or([where(deadline, 'is', null), where(deadline, '>', sql<Date>`UTC_TIMESTAMP(3)`)])),
          )
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows) === 0) {
          const order = await this.db.selectFrom('orders').select(deadline).where('order_id', '=', request.orderId).executeTakeFirstOrThrow();
          throw new PaymentDeadlinePassed(request.purpose, order[deadline]!);
        }
        return { payment: opened, created: true };
      } catch (error) {
        // a concurrent request opened the same attempt: take theirs
        if (isDuplicateKey(error) && round < 3) continue;
        throw error;
      }
    }
  }

  /** When the order was last delivered (its after-sales window runs from then); null before its first delivery. */
  async lastDeliveredAt(orderId: string): Promise<Date | null> {
    const row = await this.db
      .selectFrom('order_history')
      .select('at')
      .where('order_id', '=', orderId)
      .where('to_status', '=', 'DELIVERED')
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row?.at ?? null;
  }

  /**
   * The transition that brought the order to the status it has, with the effects its rule
   * enqueues once it has committed: whoever committed it may have died, or lost MySQL's
   * answer, before enqueuing them. Enqueued again they are harmless (each job is named or
   * deduplicated by its order, and idempotent). A split order's steps since its split are its
   * children's, taken on with its status (deriveParentStatus), or carried out on them (a new
   * address): their effects were enqueued for the children, so none is for the order (a child's
   * refund enqueued for its parent gave back the parent's whole payment). Null when its history
   * has no such step.
   * With `action`, the order's latest step by that action instead, whatever steps came after
   * it: the step a callback sent again had fired (a payment's), whose jobs may be lost too.
   */
  async lastStep(orderId: string, { action }: { action?: string } = {}): Promise<LastStep | null> {
    const order = await this.db.selectFrom('orders').selectAll().where('order_id', '=', orderId).executeTakeFirst();
    if (!order) return null;
    const last = await this.db
      .selectFrom('order_history')
      .select(['from_status', 'action', 'to_status', 'actor'])
      .where('order_id', '=', orderId)
      .$if(action !== undefined, (query) => query.where('action', '=', action!))
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!last || (action === undefined && last.to_status !== order.status) || last.from_status === null) return null;
    const rule = stateMachineFor(order.type as OrderType).rule(last.from_status, last.action);
    const derived = last.action !== 'split' && (await this.hasChildren(orderId));
    return { order, action: last.action, actor: last.actor, effects: derived ? [] : (rule?.effects ?? []) };
  }

  /** The order's version at its latest step by `action`: null when it never took one. */
  async lastStepVersion(orderId: string, action: string): Promise<number | null> {
    const step = await this.db.selectFrom('order_history').select('version').where('order_id', '=', orderId).where('action', '=', action).orderBy('version', 'desc').limit(1).executeTakeFirst();
    return step?.version ?? null;
  }

  /** The version of the order's latest step into `status`: null when it never entered it. */
  async lastEntryInto(orderId: string, status: string): Promise<number | null> {
    const step = await this.db.selectFrom('order_history').select('version').where('order_id', '=', orderId).where('to_status', '=', status).orderBy('version', 'desc').limit(1).executeTakeFirst();
    return step?.version ?? null;
  }

  async findPayment(paymentId: string): Promise<PaymentRow | null> {
    return (await this.db.selectFrom('payments').selectAll().where('payment_id', '=', paymentId).executeTakeFirst()) ?? null;
  }

  /** An order's row and one payment of it (none when the payment is another order's), sent as one query: a payment's request and its callback read both. */
  async orderAndPayment(orderId: string, paymentId: string): Promise<{ order: OrderRow | null; payment: PaymentRow | null }> {
    const [[order], [payment]] = await selectTogether(this.db, [
      this.rowOf(orderId),
      this.db.selectFrom('payments').selectAll().where('payment_id', '=', paymentId).where('order_id', '=', orderId),
    ]);
    return { order: order ?? null, payment: payment ?? null };
  }

  async payments(orderId: string): Promise<PaymentRow[]> {
    return this.db.selectFrom('payments').selectAll().where('order_id', '=', orderId).orderBy('created_at').orderBy('payment_id').execute();
  }

  /** Whether a payment of the order succeeded (its parent's, for a child: payerOf): a refund or a return draws from it. */
  async isPaid(order: Pick<OrderRow, 'order_id' | 'parent_order_id'>): Promise<boolean> {
    return (await this.payments(payerOf(order))).some((payment) => payment.status === 'SUCCEEDED');
  }

  /** The payments that paid the order, oldest first (paymentsThatPaid). */
  async paymentsApplied(orderId: string): Promise<PaymentRow[]> {
    return paymentsThatPaid(this.db, orderId);
  }

  /** The transition a payment of this purpose fires: a deposit pays a presale's deposit, the others (full, balance) pay the order. */
  static paymentActionOf(purpose: string): 'pay' | 'pay_deposit' {
    return purpose === 'deposit' ? 'pay_deposit' : 'pay';
  }

  /**
   * In the pay transition's transaction: false when the payment was already settled (a
   * repeated callback). SUCCEEDED is final and settles a FAILED payment too: the payment
   * system took the money after it first reported a failure, and that money must be
   * recorded (applied to the order, or refunded), never dropped. `refundDue`: taken after its
   * order could take it, it is due to go back whole from now (by MySQL's clock, the overdue
   * sweep's) until its refund is recorded (clearRefundDue). `amountCents`: what the payment
   * system took, where it is not what the payment asked for.
   */
  static async settlePayment(
    trx: Transaction<Database>,
    paymentId: string,
    outcome: { status: 'SUCCEEDED'; transactionId: string; at: Date; refundDue?: boolean; amountCents?: number } | { status: 'FAILED'; transactionId: string | null; at: Date },
  ): Promise<boolean> {
    const taken = outcome.status === 'SUCCEEDED' ? outcome : undefined;
    const updated = await trx
      .updateTable('payments')
      .set({ status: outcome.status, transaction_id: outcome.transactionId, paid_at: taken?.at ?? null, updated_at: outcome.at })
      .$if(taken?.amountCents !== undefined, (query) => query.set({ amount_cents: taken?.amountCents }))
      .$if(taken?.refundDue === true, (query) => query.set({ refund_due_at: sql<Date>`UTC_TIMESTAMP(3)` }))
      .where('payment_id', '=', paymentId)
      .where('status', 'in', outcome.status === 'SUCCEEDED' ? ['PENDING', 'FAILED'] : ['PENDING'])
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  /** In the transaction recording a payment's refund whole: it is no longer due to go back. */
  static async clearRefundDue(trx: Transaction<Database>, paymentId: string): Promise<void> {
    await trx.updateTable('payments').set({ refund_due_at: null }).where('payment_id', '=', paymentId).where('refund_due_at', 'is not', null).execute();
  }

  /** Whether a payment paid its order (fired its pay transition), rather than arriving after the order could take it. */
  async paymentApplied(orderId: string, paymentId: string): Promise<boolean> {
    const prefix = paymentDetail(paymentId, '');
    const row = await this.db
      .selectFrom('order_history')
      .select('version')
      .where('order_id', '=', orderId)
      .where('action', 'in', PAYMENT_ACTIONS)
      .where('detail', 'like', `${prefix.replace(/[\\%_]/g, '\\$&')}%`)
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * A request for the payment (the first, or one asking again) is about to be sent to the payment
   * system: from now on, by MySQL's clock, it may take the money, whether its answer reaches us or
   * not, and its outcome is due by its callback.
   */
  async notePaymentRequested(paymentId: string): Promise<void> {
    await this.db
      .updateTable('payments')
      .set({ requested_at: sql<Date>`UTC_TIMESTAMP(3)`, first_requested_at: sql<Date>`COALESCE(first_requested_at, UTC_TIMESTAMP(3))` })
      .where('payment_id', '=', paymentId)
      .where('status', '=', 'PENDING')
      .execute();
  }

  /**
   * The request noted last certainly did nothing there (never sent, or answered "not now"): the payment was last sent when it was
   * before (null: never, and its PAYMENT_CONFIRMATION_GIVE_UP_MS starts only with a request that goes).
   */
  async notePaymentRequestVoid(paymentId: string, sentBefore: Date | null): Promise<void> {
    await this.db
      .updateTable('payments')
      .set({ requested_at: sentBefore, ...(sentBefore === null ? { first_requested_at: null } : {}) })
      .where('payment_id', '=', paymentId)
      .where('status', '=', 'PENDING')
      .execute();
  }

  /** The payment system, looked up, has not decided the payment yet (PROCESSING): it has no callback to send yet, none was lost. */
  async notePaymentUndecided(paymentId: string): Promise<void> {
    await this.db.updateTable('payments').set({ undecided_at: sql<Date>`UTC_TIMESTAMP(3)` }).where('payment_id', '=', paymentId).where('status', '=', 'PENDING').execute();
  }

  /**
   * Payments last sent to the payment system longer than `waitedForMs` ago by MySQL's clock and
   * not reported on (still PENDING), whatever their order is now, longest waiting first, a page of
   * them (of those `among`, when named): their callback was lost for good (a sender that gave up
   * while the api was away), their answer too maybe, and the money taken would be neither applied
   * nor given back. With `givenUpAfterMs`, those first sent longer ago are left out (paymentsGivenUp).
   */
  async paymentsUnconfirmed(waitedForMs: number, page: { offset: number; limit: number }, among?: readonly string[], givenUpAfterMs?: number): Promise<Array<{ orderId: string; paymentId: string }>> {
    const rows = await this.db
      .selectFrom('payments')
      .select(['order_id', 'payment_id'])
      .where('status', '=', 'PENDING')
      .where('requested_at', '<', overdueSince(waitedForMs))
      .$if(among !== undefined, (query) => query.where('payment_id', 'in', [...among!]))
      .$if(givenUpAfterMs !== undefined, (query) => query.where(firstRequested, '>=', overdueSince(givenUpAfterMs!)))
      // the payment's id breaks ties, so pages read at other offsets neither repeat nor miss one
      .orderBy('requested_at')
      .orderBy('payment_id')
      .limit(page.limit)
      .offset(page.offset)
      .execute();
    return rows.map((row) => ({ orderId: row.order_id, paymentId: row.payment_id }));
  }

  /**
   * How many payments (of those `among`, when named) sent to the payment system and still PENDING
   * were first sent longer than `givenUpAfterMs` ago by MySQL's clock: nothing asks about them any
   * more (PAYMENT_CONFIRMATION_GIVE_UP_MS), and an operator settles them with the payment provider.
   */
  async paymentsGivenUp(givenUpAfterMs: number, among?: readonly string[]): Promise<number> {
    const row = await this.db
      .selectFrom('payments')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where(paymentGivenUp(givenUpAfterMs))
      .$if(among !== undefined, (query) => query.where('payment_id', 'in', [...among!]))
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /**
   * An operator has the payment system's word that it can report on a payment given up on (sent,
   * still PENDING, first sent longer than `givenUpAfterMs` ago by MySQL's clock): it counts as
   * first sent now, so its request job asks about it, and the overdue sweep again, for
   * `givenUpAfterMs` more. False for any other payment (decided, never sent, or still asked about).
   */
  async askAboutGivenUpPaymentAgain(paymentId: string, givenUpAfterMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('payments')
      .set({ first_requested_at: sql<Date>`UTC_TIMESTAMP(3)` })
      .where('payment_id', '=', paymentId)
      .where(paymentGivenUp(givenUpAfterMs))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /**
   * How many payments still PENDING the payment system, looked up last, had not decided (PROCESSING),
   * first sent less than `givenUpAfterMs` ago by MySQL's clock: their callbacks are not lost, and
   * they are looked up again until then (those sent longer ago count in paymentsGivenUp).
   */
  async paymentsUndecided(givenUpAfterMs: number): Promise<number> {
    const row = await this.db
      .selectFrom('payments')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where('status', '=', 'PENDING')
      .where('undecided_at', 'is not', null)
      .where(firstRequested, '>=', overdueSince(givenUpAfterMs))
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** A payment the payment system declined (its callback's transaction id), or refused outright (none). */
  async failPayment(paymentId: string, transactionId: string | null, at: Date): Promise<boolean> {
    return this.db.transaction().execute((trx) => ProcessRepository.settlePayment(trx, paymentId, { status: 'FAILED', transactionId, at }));
  }

  async items(orderId: string): Promise<OrderItemRow[]> {
    return this.linesOf(orderId).execute();
  }

  /** The order's row and its lines, sent as one query: the workers read both at nearly every step of a paid order. */
  async orderWithLines(orderId: string): Promise<{ order: OrderRow; items: OrderItemRow[] } | null> {
    const [[order], items] = await selectTogether(this.db, [this.rowOf(orderId), this.linesOf(orderId)]);
    return order ? { order, items } : null;
  }

  /**
   * The order and its lines as of one version: a step committed between the two reads (a refund)
   * has them read again, so that what is sent of them carries the version its lines are of. Each
   * round reads the row, the lines and the row again as one query (one statement after the other,
   * each its own snapshot). Still moving after three rounds: the version read before the last
   * lines, older than they are, never newer (a refund read as opened after the change).
   */
  async orderAndLinesOfOneVersion(orderId: string): Promise<{ order: OrderRow; items: OrderItemRow[] } | null> {
    for (let round = 1; ; round++) {
      const [[order], items, [again]] = await selectTogether(this.db, [this.rowOf(orderId), this.linesOf(orderId), this.rowOf(orderId)]);
      if (!order) return null;
      if (!again || again.version === order.version || round === 3) return { order, items };
    }
  }

  /** The order's row and whether it was split (isSplitParent), sent as one query. */
  async orderAndWhetherSplit(orderId: string): Promise<{ order: OrderRow; splitParent: boolean } | null> {
    const [[order], [child]] = await selectTogether(this.db, [this.rowOf(orderId), firstChildOf(this.db, orderId)]);
    return order ? { order, splitParent: order.parent_order_id === null && child !== undefined } : null;
  }

  private rowOf(orderId: string) {
    return this.db.selectFrom('orders').selectAll().where('order_id', '=', orderId);
  }


  private linesOf(orderId: string) {
    return this.db.selectFrom('order_items').selectAll().where('order_id', '=', orderId).orderBy('line_no');
  }

  /**
   * Whether the order is a split one: it reads PAID while its children wait for their warehouses,
   * and they are handed over, each to its own, never it.
   */
  async isSplitParent(order: Pick<OrderRow, 'order_id' | 'parent_order_id'>): Promise<boolean> {
    return order.parent_order_id === null && this.hasChildren(order.order_id);
  }

  /** Whether the order was split: its children, not it, are handed over, each to its warehouse. */
  async hasChildren(orderId: string): Promise<boolean> {
    return (await firstChildOf(this.db, orderId).executeTakeFirst()) !== undefined;
  }

  async children(orderId: string): Promise<OrderRow[]> {
    return this.db.selectFrom('orders').selectAll().where('parent_order_id', '=', orderId).orderBy('order_id').execute();
  }

  /**
   * In the split transition's transaction: the children, their lines, and their first history
   * entry. A child's lines come with what was refunded of them before the split, which its
   * amounts count; a child refunded in full before the split has nothing left to send to its
   * warehouse, cancel or refund: it starts closed (REFUNDED), or REFUNDING while the buyer is
   * still owed a refund of the order (one the payment system declined, or not confirmed yet), as
   * an unsplit order refunded whole waits for its money (OrderRepository.closeSplitOrderOnceRefunded).
   */
  static async insertChildren(trx: Transaction<Database>, parent: OrderRow, children: readonly ChildToInsert[], at: Date): Promise<void> {
    if (children.length === 0) return;
    const refundedWhole = (plan: ChildToInsert['plan']) => plan.lines.every((line) => line.row.refunded_qty === line.row.qty);
    const refundedWholeAs = (await refundsOwedIn(trx, [parent.order_id])).length > 0 ? 'REFUNDING' : 'REFUNDED';
    const statusOf = (plan: ChildToInsert['plan']) => (refundedWhole(plan) ? refundedWholeAs : parent.status);
    await trx
      .insertInto('orders')
      .values(
        children.map(({ orderId, plan }) => ({
          order_id: orderId,
          parent_order_id: parent.order_id,
          type: parent.type,
          status: statusOf(plan),
          version: 1,
          user_id: parent.user_id,
          channel: plan.key.channel,
          subtotal_cents: plan.amounts.subtotalCents,
          discount_cents: plan.amounts.discountCents,
          shipping_cents: plan.amounts.shippingCents,
          payable_cents: plan.amounts.payableCents,
          refunded_cents: plan.lines.reduce((sum, line) => sum + Number(line.row.refunded_cents), 0),
          address: parent.address,
          coupon_code: parent.coupon_code,
          // the child's share of what the order used, from its lines' shares
          benefits:
            parent.benefits === null
              ? null
              : JSON.stringify(
                  benefitsOfPart(
                    plan.lines.flatMap((line) => (line.row.discounts === null ? [] : (JSON.parse(line.row.discounts) as DiscountShare[]))),
                    JSON.parse(parent.benefits) as AppliedBenefits,
                  ),
                ),
          accepted_at: parent.accepted_at,
          payment_deadline: parent.payment_deadline,
          created_at: at,
          updated_at: at,
        })),
      )
      .execute();
    await trx
      .insertInto('order_items')
      .values(
        children.flatMap(({ orderId, plan }) =>
          plan.lines.map((line) => ({
            ...line.row,
            order_id: orderId,
            discount_cents: line.discountCents,
            shipping_cents: line.shippingCents,
            payable_cents: line.payableCents,
          })),
        ),
      )
      .execute();
    await trx
      .insertInto('order_history')
      .values(
        children.map(({ orderId, plan }) => ({
          order_id: orderId,
          version: 1,
          from_status: null,
          action: 'split',
          to_status: statusOf(plan),
          actor: 'system',
          detail: refundedWhole(plan) ? `split from order ${parent.order_id}: every unit refunded before the split` : `split from order ${parent.order_id}`,
          at,
        })),
      )
      .execute();
  }

  async shipment(orderId: string): Promise<ShipmentRow | null> {
    return (await this.db.selectFrom('shipments').selectAll().where('order_id', '=', orderId).executeTakeFirst()) ?? null;
  }

  /** In the fulfil transition's transaction: the order's shipment, accepted by its warehouse. */
  static async openShipment(trx: Transaction<Database>, order: OrderRow, warehouseId: string, at: Date): Promise<void> {
    await trx.insertInto('shipments').values(shipmentRow(order, warehouseId, 'ACCEPTED', { trackingNo: null, at })).execute();
  }

  /** The order's shipment, accepted by the warehouse of its lines, unless it has one. */
  static async openShipmentIfNone(trx: Transaction<Database>, order: OrderRow, at: Date): Promise<void> {
    const line = await trx.selectFrom('order_items').select('warehouse_id').where('order_id', '=', order.order_id).orderBy('line_no').executeTakeFirst();
    if (!line) return;
    await trx.insertInto('shipments').values(shipmentRow(order, line.warehouse_id, 'ACCEPTED', { trackingNo: null, at })).ignore().execute();
  }

  /**
   * A parcel that left a warehouse whose hand-over was never recorded (the order refunded while
   * its hand-over was under way): its shipment, opened at the event's `status`; false when the
   * order has one already (the same event, sent again).
   */
  static async openShipmentAt(trx: Transaction<Database>, order: OrderRow, warehouseId: string, status: 'SHIPPED' | 'DELIVERED', change: { trackingNo: string | null; at: Date }): Promise<boolean> {
    const inserted = await trx.insertInto('shipments').values(shipmentRow(order, warehouseId, status, change)).ignore().executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /**
   * Once its warehouse was told that the parcel ships nothing (every unit refunded, or the order
   * cancelled): the order's parcel, if it has not left the warehouse, is CANCELLED, so it no longer
   * reads as one to ship. Not before: until then the warehouse may still ship it. False when it has
   * none, or it has left.
   */
  static async cancelUnshippedParcel(trx: Transaction<Database>, orderId: string, at: Date): Promise<boolean> {
    return ProcessRepository.advanceShipment(trx, orderId, [...UNSHIPPED_PARCEL], 'CANCELLED', { at });
  }

  /**
   * In a warehouse event's transaction: moves the shipment forward to `status` only from
   * one of `from`; false when it is already there or past (a repeated callback).
   */
  static async advanceShipment(
    trx: Transaction<Database>,
    orderId: string,
    from: readonly string[],
    status: string,
    change: { trackingNo?: string | null; at: Date },
  ): Promise<boolean> {
    const updated = await trx
      .updateTable('shipments')
      .set({
        status,
        updated_at: change.at,
        ...(change.trackingNo ? { tracking_no: change.trackingNo } : {}),
        ...(status === 'SHIPPED' ? { shipped_at: change.at } : {}),
        ...(status === 'DELIVERED' ? { delivered_at: change.at } : {}),
      })
      .where('order_id', '=', orderId)
      .where('status', 'in', [...from])
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  /**
   * A SHIPPED that came after the parcel's DELIVERED (which stands for a lost SHIPPED), or after its
   * channel or merchant reported it shipped (an imported order's, with no tracking number): the
   * tracking number and ship time it carries, on the parcel that lacks them. False when it had them (a repeat).
   */
  static async noteShippedLate(trx: Transaction<Database>, orderId: string, shipped: { trackingNo: string | null; at: Date }): Promise<boolean> {
    const updated = await trx
      .updateTable('shipments')
      .set((eb) => ({ tracking_no: eb.fn.coalesce('tracking_no', eb.val(shipped.trackingNo)), shipped_at: eb.fn.coalesce('shipped_at', eb.val(shipped.at)), updated_at: shipped.at }))
      .where('order_id', '=', orderId)
      .where('status', 'in', ['SHIPPED', 'DELIVERED'])
      .where((eb) => eb.or([eb('shipped_at', 'is', null), ...(shipped.trackingNo === null ? [] : [eb('tracking_no', 'is', null)])]))
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  /**
   * The ledger's record that a paid order's stock was committed (once, whoever commits
   * it first: the settle job or a cancel that overtook it): placement units left
   * "available" at checkout, payment-time units leave it now.
   */
  async recordStockCommitted(orderId: string, lines?: readonly OrderItemRow[]): Promise<void> {
    // a line's SKU, quantity and deduction never change: the caller's lines, when it has them read, are these
    const items = lines ?? (await this.items(orderId));
    await this.writeLedgerOnce(
      items.map((line) => ({ sku_id: line.sku_id, kind: 'commit' as const, ref: orderId, order_id: orderId, qty: line.deduction === 'payment' ? -line.qty : 0, reason: 'payment' })),
    );
  }

  /**
   * Records that the warehouse refused a change of the order's parcel as too late (the parcel
   * had left); false when it had refused one before: the parcel is counted once.
   */
  async noteChangeRefused(orderId: string, at: Date): Promise<boolean> {
    const updated = await this.db.updateTable('orders').set({ change_refused_at: at }).where('order_id', '=', orderId).where('change_refused_at', 'is', null).executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  /**
   * Before a hand-over asks the warehouse to take the order: from now on the warehouse may hold
   * its parcel, its answer not recorded yet, and a refund of it waits for the warehouse
   * (applyRefund). Under the order's row lock, so a refund commits wholly before or after it.
   * The time set; null when the order is no longer PAID, or was asked before (that ask stands).
   */
  async noteHandOverAsked(orderId: string, at: Date): Promise<Date | null> {
    const updated = await this.db.updateTable('orders').set({ handover_asked_at: at }).where('order_id', '=', orderId).where('status', '=', 'PAID').where('handover_asked_at', 'is', null).executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1 ? at : null;
  }

  /** The ask noted `at` (noteHandOverAsked) certainly did not reach the warehouse: the order's refunds need not wait for it. */
  async forgetHandOverAsked(orderId: string, at: Date): Promise<void> {
    await this.db.updateTable('orders').set({ handover_asked_at: null }).where('order_id', '=', orderId).where('handover_asked_at', '=', at).execute();
  }

  /** How the ledger has the order's reservation closed: committed (paid) or released; null while the order holds it. */
  async reservationClosedAs(orderId: string): Promise<'commit' | 'release' | null> {
    const row = await this.db.selectFrom('stock_ledger').select('kind').where('order_id', '=', orderId).where('kind', 'in', ['commit', 'release']).limit(1).executeTakeFirst();
    return row ? (row.kind as 'commit' | 'release') : null;
  }

  /** Ledger rows of a movement that may be written again on a retry: the unique (sku, kind, ref) keeps one. */
  async writeLedgerOnce(entries: Array<{ sku_id: string; kind: 'commit' | 'release'; ref: string; order_id: string; qty: number; reason: string }>): Promise<void> {
    if (entries.length > 0) await this.db.insertInto('stock_ledger').values(entries).ignore().execute();
  }

  /**
   * Of these orders, those still owing their payment (`owing`: the order's, or a presale's deposit;
   * its balance) that wait for a payment their buyer asked for before the deadline and the payment
   * system has not answered yet (the request still in the workers' backlog, an outage, a slow
   * callback), each with how long until it stops waiting, `waitMs` past the deadline by MySQL's
   * clock. Read for a deadline job's orders at once: a sale's orders fall due together. Every
   * payment was asked for in time: `openPayment` opens none after its deadline, by MySQL's clock
   * too (its `created_at`, the api host's, may read later on a host running ahead).
   */
  async paymentsAskedInTimeFor(owing: DeadlineOwing, orderIds: readonly string[], waitMs: number): Promise<Map<string, number>> {
    if (orderIds.length === 0) return new Map();
    const { statuses } = OWED_BY_DEADLINE[owing];
    const rows = await this.db
      .selectFrom('payments as p')
      .innerJoin('orders as o', 'o.order_id', 'p.order_id')
      .select(['p.order_id', awaitedForMs(owing, waitMs).as('leftMs')])
      .where('p.order_id', 'in', orderIds)
      .where(paymentAwaitedAt(owing, sql<Date>`UTC_TIMESTAMP(3)`, waitMs))
      .where('o.status', 'in', statuses)
      .execute();
    return new Map(rows.filter((row) => Number(row.leftMs) > 0).map((row) => [row.order_id, Number(row.leftMs)]));
  }

  /**
   * In a deadline's transition (an expiry, a forfeit), once it holds the order's row: throws
   * PaymentAwaited while a payment of what the deadline is owed (`owing`) that its buyer asked for
   * in time is unanswered, looked at again within `lookEveryMs`. The deadline job read none before
   * its transaction; a pay request between the two, before the deadline, opened one all the same.
   * A locking read: openPayment's insert reads the order's row shared, so one committed before this
   * transaction took the row is seen here (a plain read of its earlier snapshot missed it, and the
   * deposit was kept though the balance was asked for in time), and one after waits for this close
   * and finds the deadline passed.
   */
  static async refuseWhilePaymentAwaited(trx: Transaction<Database>, orderId: string, owing: DeadlineOwing, waitMs: number, lookEveryMs: number): Promise<void> {
    const awaited = await trx
      .selectFrom('payments as p')
      .innerJoin('orders as o', 'o.order_id', 'p.order_id')
      .select(awaitedForMs(owing, waitMs).as('leftMs'))
      .where('p.order_id', '=', orderId)
      .where(paymentAwaitedAt(owing, sql<Date>`UTC_TIMESTAMP(3)`, waitMs))
      .modifyEnd(sql`LOCK IN SHARE MODE`)
      .execute();
    const leftMs = Math.max(0, ...awaited.map((row) => Number(row.leftMs)));
    if (leftMs > 0) throw new PaymentAwaited(orderId, Math.min(leftMs, lookEveryMs));
  }

  /**
   * In the deposit's transaction: the balance is due `timeoutMs` from now by MySQL's clock, the
   * one its forfeit decides by, and its deadline job waits that long from the commit.
   */
  static async setBalanceDeadline(trx: Transaction<Database>, orderId: string, timeoutMs: number): Promise<void> {
    await trx
      .updateTable('orders')
      .set({ balance_deadline: sql<Date>`UTC_TIMESTAMP(3) + INTERVAL ${timeoutMs * 1000} MICROSECOND` })
      .where('order_id', '=', orderId)
      .execute();
  }
}

import { createHash, randomUUID } from 'node:crypto';
import { CLOSED_BEFORE_SHIPPING, allocateByLargestRemainder, drawRefund, refundForLines, RefundExceedsLine, StaleOrderVersion, type LineRefund, type RefundablePayment } from '@orders/domain';
import { sql, type RawBuilder, type Selectable, type Transaction } from 'kysely';
import type { OrderDb } from './connection.js';
import { isDuplicateKey } from './mysql-errors.js';
import { overdueSince } from './mysql-clock.js';
import { OrderRepository, historyDetail, notSplit, type TransitionResult } from './order-repository.js';
import { payerOf, paymentsThatPaid, ProcessRepository, UNSHIPPED_PARCEL } from './process-repository.js';
import { firstSent, unsettledRefundsOf } from './refunds-owed.js';
import type { Database, OrderRow, RefundPartsTable, RefundsTable } from './schema.js';

export type RefundKind = 'refund' | 'return';

/** A refund order (its own id, status and history) as API.md shows it. */
export interface RefundView {
  refundId: string;
  orderId: string;
  kind: RefundKind;
  status: string;
  reason: string;
  amountCents: number;
  items: Array<{ lineNo: number; skuId: string; qty: number; cents: number }>;
  history: Array<{ from: string | null; to: string; at: string; actor: string }>;
  /** where the money goes back to: one part per payment drawn, empty until the refund is due */
  parts: RefundPartView[];
  /**
   * its units are in a parcel the warehouse holds: they go back on sale (the ledger, then Redis)
   * once the warehouse has taken them out (releaseHeldRestock), never while they may still leave with it
   */
  restockHeld: boolean;
  createdAt: string;
  updatedAt: string;
}

/** Units of one order line: what a warehouse found of a return's line in its parcel. */
export interface LineUnits {
  lineNo: number;
  qty: number;
}

/** One payment's share of a refund order, as the payment system knows it (partId is its refund id there). */
export interface RefundPartView {
  partId: string;
  paymentId: string;
  amountCents: number;
  status: string;
  /** a part SETTLED_BY_HAND: how the shop paid it back, as the admin who settled it said */
  settledReference?: string;
  /** a part ASKED_AGAIN: the part its money was asked for again under, which owes it now */
  askedAgainAs?: string;
  /** when the payment system was first asked for it (its confirmation is given up REFUND_CONFIRMATION_GIVE_UP_MS after); absent before */
  sentAt?: string;
  /** a part SETTLED_BY_HAND or ASKED_AGAIN the payment system paid after all: when it said so (the buyer paid back twice) */
  paidAfterOwedElsewhereAt?: string;
}

export interface OpenRefund {
  refundId: string;
  kind: RefundKind;
  reason: string;
  /** the units to give back; 'rest': every unit not refunded yet (a cancellation) */
  items: ReadonlyArray<{ skuId: string; qty: number }> | 'rest';
  /** the ledger's reason for the units going back on sale ('cancel', 'refund') */
  restockReason: string;
  /**
   * PENDING: the money and the units go back now. REQUESTED (a return): the amounts are
   * fixed now, the order under review cannot change meanwhile; both go back when the
   * warehouse receives the units (receiveReturn).
   */
  status: 'PENDING' | 'REQUESTED';
  /** who asked: the first step of the refund's history */
  actor: string;
  at: Date;
}

/** What an Idempotency-Key of a refund (return) request is scoped to: the order named, the kind, the caller (`<role>:<sub>`) and the key. */
export interface RefundKey {
  orderId: string;
  kind: RefundKind;
  caller: string;
  key: string;
}

/**
 * The refund's history with one more step, in the UPDATE itself; it must come before
 * `status` in the SET list, since MariaDB reads `status` as already assigned after it.
 */
const withStep = (to: string, at: Date, actor: string): RawBuilder<string> =>
  sql<string>`JSON_ARRAY_APPEND(COALESCE(history, '[]'), '$', JSON_OBJECT('from', status, 'to', ${to}, 'at', ${at.toISOString()}, 'actor', ${actor}))`;

/** The refund a cancellation opens on an order part (one per part: cancelling again opens nothing). */
export const cancelRefundOf = (partId: string) => `${partId}-cancel`;

/** Refund ids repeat for a repeated request, so asking twice refunds once. */
export function refundIdFor(orderId: string, parts: readonly string[]): string {
  return `${orderId}-rf-${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16)}`;
}

const toPartView = (row: Selectable<RefundPartsTable>): RefundPartView => ({
  partId: row.part_id,
  paymentId: row.payment_id,
  amountCents: Number(row.amount_cents),
  status: row.status,
  ...(row.settled_reference === null ? {} : { settledReference: row.settled_reference }),
  ...(row.asked_again_as === null ? {} : { askedAgainAs: row.asked_again_as }),
  ...(row.sent_at === null ? {} : { sentAt: row.sent_at.toISOString() }),
  ...(row.paid_after_owed_elsewhere_at === null ? {} : { paidAfterOwedElsewhereAt: row.paid_after_owed_elsewhere_at.toISOString() }),
});

/**
 * Refund parts, with their refund, the payment system accepted (SENT) and has not confirmed for
 * longer than `waitedForMs` by MySQL's clock, and first sent less than `givenUpAfterMs` ago: the
 * ones asked for again (each asking again moves `updated_at`).
 */
const partsToAskAgain = (db: OrderDb, waitedForMs: number, givenUpAfterMs: number) =>
  db
    .selectFrom('refund_parts as p')
    .innerJoin('refunds as r', 'r.refund_id', 'p.refund_id')
    .where('p.status', '=', 'SENT')
    .where('p.updated_at', '<', overdueSince(waitedForMs))
    .where(firstSent, '>=', overdueSince(givenUpAfterMs));

/**
 * A part's statuses once it owes nothing: its money is back with the buyer (through the payment
 * system, or another way an admin named), or owed by the part it was asked for again under.
 */
const OWES_NOTHING = ['SUCCEEDED', 'SETTLED_BY_HAND', 'ASKED_AGAIN'];

/** The refund, due or sent, succeeds now on `actor`'s word; false when it had settled already. */
async function succeed(db: OrderDb | Transaction<Database>, refundId: string, at: Date, actor: string): Promise<boolean> {
  const updated = await db
    .updateTable('refunds')
    .set({ history: withStep('SUCCEEDED', at, actor), status: 'SUCCEEDED', version: (eb) => eb('version', '+', 1), updated_at: at })
    .where('refund_id', '=', refundId)
    .where('status', 'in', ['PENDING', 'SENT'])
    .executeTakeFirst();
  return Number(updated.numUpdatedRows) === 1;
}

/**
 * In a transaction holding the refund's row: the refund succeeds once every one of its parts is
 * paid back, `actor` the one whose word settled the last. True when it succeeded now.
 */
async function settleWhenPaidBack(trx: Transaction<Database>, refund: { refund_id: string }, at: Date, actor: string): Promise<boolean> {
  // the refund's parts, written with it, locked by primary key as they are now (a part confirmed
  // meanwhile included): a locking read by refund id locked that index up to the next refund's
  // parts, and the refunds of newer orders drawing their parts waited for this one to commit
  const parts = await trx.selectFrom('refund_parts').select('part_id').where('refund_id', '=', refund.refund_id).execute();
  const open = await trx
    .selectFrom('refund_parts')
    .select('part_id')
    .where('part_id', 'in', parts.map((sibling) => sibling.part_id))
    .where('status', 'not in', OWES_NOTHING)
    .forUpdate()
    .execute();
  return open.length === 0 && succeed(trx, refund.refund_id, at, actor);
}

/**
 * In a transaction holding the refund's row: its parts, locked. By primary key, from the ids
 * read first, not with a locking read by refund id (settleWhenPaidBack says why).
 */
async function lockParts(trx: Transaction<Database>, refundId: string): Promise<Array<Selectable<RefundPartsTable>>> {
  const ids = (await trx.selectFrom('refund_parts').select('part_id').where('refund_id', '=', refundId).execute()).map((row) => row.part_id);
  return ids.length === 0 ? [] : trx.selectFrom('refund_parts').selectAll().where('part_id', 'in', ids).forUpdate().execute();
}

/** A refund's parts are named from its id, so drawing again after a crash or a retry names them the same. */
const partIdOf = (refundId: string, index: number) => (index === 0 ? refundId : `${refundId}-${index + 1}`);

async function partsOf(db: OrderDb | Transaction<Database>, refundIds: readonly string[]): Promise<Map<string, RefundPartView[]>> {
  const byRefund = new Map<string, RefundPartView[]>();
  if (refundIds.length === 0) return byRefund;
  const rows = await db.selectFrom('refund_parts').selectAll().where('refund_id', 'in', [...refundIds]).orderBy('refund_id').orderBy('created_at').orderBy('part_id').execute();
  for (const row of rows) byRefund.set(row.refund_id, [...(byRefund.get(row.refund_id) ?? []), toPartView(row)]);
  return byRefund;
}

const toView = (row: Selectable<RefundsTable>, parts: RefundPartView[]): RefundView => ({
  refundId: row.refund_id,
  orderId: row.order_id,
  kind: row.kind,
  status: row.status,
  reason: row.reason,
  amountCents: Number(row.amount_cents),
  items: JSON.parse(row.items) as RefundView['items'],
  history: row.history === null ? [] : (JSON.parse(row.history) as RefundView['history']),
  parts,
  restockHeld: row.restock_held_reason !== null,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

/** Refund orders: some or all units of an order's lines given back, each line at most what it paid. */
export class RefundRepository {
  constructor(private readonly db: OrderDb) {}

  async find(refundId: string): Promise<RefundView | null> {
    const row = await this.db.selectFrom('refunds').selectAll().where('refund_id', '=', refundId).executeTakeFirst();
    return row ? toView(row, (await partsOf(this.db, [refundId])).get(refundId) ?? []) : null;
  }

  /**
   * Those of the order parts `partIds` (an order, or a split order's children) whose parcel left with the units of
   * a refund of theirs before the warehouse took them out: that refund was withdrawn (withdrawHeld, the one way a
   * refund is), a cancel's or one of some lines alike. They ship, whatever they read until their SHIPPED comes, and
   * the reverse flows that need the parcel still at the warehouse refuse them (a cancel, a refund of lines, an
   * address change: each would come to nothing); the actions offered follow.
   */
  async partsWhoseParcelLeft(partIds: readonly string[]): Promise<Set<string>> {
    if (partIds.length === 0) return new Set();
    const rows = await this.db.selectFrom('refunds').select('order_id').where('order_id', 'in', partIds).where('status', '=', 'WITHDRAWN').execute();
    return new Set(rows.map((row) => row.order_id));
  }

  /** The fingerprint of the request that took this Idempotency-Key; null while no refund (return) was opened under it. */
  async keyFingerprint(key: RefundKey): Promise<string | null> {
    const row = await this.db
      .selectFrom('refund_keys')
      .select('fingerprint')
      .where('order_id', '=', key.orderId)
      .where('kind', '=', key.kind)
      .where('caller', '=', key.caller)
      .where('idempotency_key', '=', key.key)
      .executeTakeFirst();
    return row?.fingerprint ?? null;
  }

  /**
   * Takes the Idempotency-Key for a request, in the transaction opening its refunds (returns);
   * false when another request took it first (its transaction committed since this one looked).
   */
  static async takeKey(trx: Transaction<Database>, key: RefundKey, fingerprint: string, at: Date): Promise<boolean> {
    try {
      await trx.insertInto('refund_keys').values({ order_id: key.orderId, kind: key.kind, caller: key.caller, idempotency_key: key.key, fingerprint, created_at: at }).execute();
      return true;
    } catch (error) {
      if (isDuplicateKey(error)) return false;
      throw error;
    }
  }

  /** A part of a refund order by the id the payment system knows it by; null for an unknown id. */
  async findPart(partId: string): Promise<(RefundPartView & { refundId: string }) | null> {
    const row = await this.db.selectFrom('refund_parts').selectAll().where('part_id', '=', partId).executeTakeFirst();
    return row ? { ...toPartView(row), refundId: row.refund_id } : null;
  }

  /** The refunds and returns of orders (an order and its children), oldest first. */
  async ofOrders(orderIds: readonly string[]): Promise<RefundView[]> {
    if (orderIds.length === 0) return [];
    const rows = await this.db.selectFrom('refunds').selectAll().where('order_id', 'in', [...orderIds]).orderBy('created_at').orderBy('refund_id').execute();
    const parts = await partsOf(this.db, rows.map((row) => row.refund_id));
    return rows.map((row) => toView(row, parts.get(row.refund_id) ?? []));
  }

  /**
   * Orders holding a refund due (PENDING) unchanged for longer than `waitedForMs` by MySQL's clock,
   * longest waiting first, a page of them (of those `among`, when named): their refund job, if none
   * holds them, was lost. With `heldForWarehouse`, the refunds that wait for the warehouse to take
   * their units out instead, which the fulfilment update's job pays (and the refund job leaves).
   */
  async ordersWithRefundsWaiting(waitedForMs: number, page: { offset: number; limit: number }, among?: readonly string[], heldForWarehouse = false): Promise<string[]> {
    const rows = await dueRefundOrders(this.db)
      .select('order_id')
      .where('restock_held_reason', heldForWarehouse ? 'is not' : 'is', null)
      .where('updated_at', '<', overdueSince(waitedForMs))
      .$if(among !== undefined, (query) => query.where('order_id', 'in', [...among!]))
      .groupBy('order_id')
      // the order's id breaks ties, so pages read at other offsets neither repeat nor miss an order
      .orderBy(sql`MIN(updated_at)`)
      .orderBy('order_id')
      .limit(page.limit)
      .offset(page.offset)
      .execute();
    return rows.map((row) => row.order_id);
  }

  /**
   * Orders the system refunded whole with no refund order (a payment-time SKU sold out before the
   * payment: every payment goes back whole, its rows written once paid back), REFUNDING unchanged
   * for longer than `waitedForMs` by MySQL's clock, longest waiting first, a page of them (of those
   * `among`, when named): their refund job, if none holds them, was lost. Split orders left out:
   * their children's refunds are their own; and children, paid by their order's payments: one
   * refunded whole before the split waits for that order's refund (closeSplitOrderOnceRefunded).
   */
  async ordersRefundedWholeWaiting(waitedForMs: number, page: { offset: number; limit: number }, among?: readonly string[]): Promise<string[]> {
    const rows = await this.db
      .selectFrom('orders as o')
      .select('o.order_id')
      .where('o.status', '=', 'REFUNDING')
      .$if(among !== undefined, (query) => query.where('o.order_id', 'in', [...among!]))
      .where('o.updated_at', '<', overdueSince(waitedForMs))
      // a refund order (one with a history) waits on its own; a late payment's whole refund row is not the order's refund
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('refunds as r').select('r.refund_id').whereRef('r.order_id', '=', 'o.order_id').where('r.history', 'is not', null))))
      .where(notSplit('o.order_id'))
      .where('o.parent_order_id', 'is', null)
      .orderBy('o.updated_at')
      .orderBy('o.order_id')
      .limit(page.limit)
      .offset(page.offset)
      .execute();
    return rows.map((row) => row.order_id);
  }

  /** Of these payments, the ones still due to go back whole. */
  async stillDue(paymentIds: readonly string[]): Promise<Set<string>> {
    if (paymentIds.length === 0) return new Set();
    const rows = await this.db.selectFrom('payments').select('payment_id').where('payment_id', 'in', [...paymentIds]).where('refund_due_at', 'is not', null).execute();
    return new Set(rows.map((row) => row.payment_id));
  }

  /**
   * Payments taken after their order could take them, due to go back whole for longer than
   * `waitedForMs` by MySQL's clock, longest waiting first: their refund job, if none holds them,
   * was lost (the api died, or Redis refused or lost the add, after the payment was recorded).
   */
  async latePaymentsWaiting(waitedForMs: number, page: { offset: number; limit: number }): Promise<Array<{ orderId: string; paymentId: string }>> {
    const rows = await this.db
      .selectFrom('payments')
      .select(['order_id', 'payment_id'])
      .where('refund_due_at', '<', overdueSince(waitedForMs))
      .orderBy('refund_due_at')
      .orderBy('payment_id')
      .limit(page.limit)
      .offset(page.offset)
      .execute();
    return rows.map((row) => ({ orderId: row.order_id, paymentId: row.payment_id }));
  }

  /** Refund orders of the order waiting for the payment system, with the payment parts each goes back to. */
  async pending(orderId: string): Promise<RefundView[]> {
    const rows = await dueRefundOrders(this.db).selectAll().where('order_id', '=', orderId).orderBy('created_at').execute();
    const parts = await partsOf(this.db, rows.map((row) => row.refund_id));
    return rows.map((row) => toView(row, parts.get(row.refund_id) ?? []));
  }

  /**
   * Orders holding refund parts the payment system accepted (SENT) and has not confirmed for
   * longer than `waitedForMs` by MySQL's clock, longest waiting first, a page of them: its
   * callback was lost for good (a sender that gave up, a bug), and the refund would stay
   * unconfirmed, its order REFUNDING, for ever. Parts drawn `givenUpAfterMs` ago or longer are
   * left out (partsGivenUp).
   */
  async ordersWithPartsUnconfirmed(waitedForMs: number, page: { offset: number; limit: number }, givenUpAfterMs: number): Promise<string[]> {
    const rows = await partsToAskAgain(this.db, waitedForMs, givenUpAfterMs)
      .select('r.order_id')
      .groupBy('r.order_id')
      .orderBy(sql`MIN(p.updated_at)`)
      .orderBy('r.order_id')
      .limit(page.limit)
      .offset(page.offset)
      .execute();
    return rows.map((row) => row.order_id);
  }

  /** The order's refund parts sent and not confirmed for longer than `waitedForMs`, drawn less than `givenUpAfterMs` ago (ordersWithPartsUnconfirmed), each with its refund. */
  async partsUnconfirmed(orderId: string, waitedForMs: number, givenUpAfterMs: number): Promise<Array<RefundPartView & { refund: Pick<RefundView, 'refundId' | 'orderId' | 'kind'> }>> {
    const rows = await partsToAskAgain(this.db, waitedForMs, givenUpAfterMs).selectAll('p').select(['r.order_id', 'r.kind']).where('r.order_id', '=', orderId).orderBy('p.part_id').execute();
    return rows.map((row) => ({ ...toPartView(row), refund: { refundId: row.refund_id, orderId: row.order_id, kind: row.kind } }));
  }

  /**
   * How many refund parts the payment system accepted (SENT) and never confirmed were first sent
   * longer than `givenUpAfterMs` ago by MySQL's clock: nothing asks for them any more
   * (REFUND_CONFIRMATION_GIVE_UP_MS), and an operator settles them with the payment provider.
   */
  async partsGivenUp(givenUpAfterMs: number): Promise<number> {
    const row = await this.db
      .selectFrom('refund_parts as p')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where('p.status', '=', 'SENT')
      .where(firstSent, '<', overdueSince(givenUpAfterMs))
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** The payment system was asked again to confirm a part: its wait starts again from `at`. */
  async markPartAskedAgain(partId: string, at: Date): Promise<void> {
    await this.db.updateTable('refund_parts').set({ updated_at: at }).where('part_id', '=', partId).where('status', '=', 'SENT').execute();
  }

  /** Refunds of the order due or sent but not confirmed by the payment system yet. */
  async unsettled(orderId: string): Promise<number> {
    const row = await unsettledRefundsOf(this.db, [orderId]).select((eb) => eb.fn.countAll<number | string>().as('count')).executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** The payment system accepted one part; its callback confirms it. */
  async markPartSent(partId: string, at: Date): Promise<void> {
    await this.db.updateTable('refund_parts').set({ status: 'SENT', sent_at: at, updated_at: at }).where('part_id', '=', partId).where('status', '=', 'PENDING').execute();
  }

  /** The payment system accepted every part of the refund; their callbacks confirm it (SUCCEEDED). */
  async markSent(refundId: string, at: Date): Promise<void> {
    await this.db
      .updateTable('refunds')
      .set({ history: withStep('SENT', at, 'system'), status: 'SENT', version: (eb) => eb('version', '+', 1), updated_at: at })
      .where('refund_id', '=', refundId)
      .where('status', '=', 'PENDING')
      .execute();
  }

  /** Whether the order has refund orders (rather than only whole-payment refunds, which keep no history). */
  async hasRefundOrders(orderId: string): Promise<boolean> {
    const row = await this.db.selectFrom('refunds').select('refund_id').where('order_id', '=', orderId).where('history', 'is not', null).executeTakeFirst();
    return row !== undefined;
  }

  /**
   * A return of the order in one of `from` (its only open one: the order is under review), or only
   * the one `returnId` names, moves to `to`; null when there is none.
   */
  static async moveReturn(trx: Transaction<Database>, orderId: string, from: readonly string[], to: string, at: Date, actor: string, returnId?: string): Promise<RefundView | null> {
    const row = await trx
      .selectFrom('refunds')
      .selectAll()
      .where('order_id', '=', orderId)
      .where('kind', '=', 'return')
      .where('status', 'in', [...from])
      .$if(returnId !== undefined, (query) => query.where('refund_id', '=', returnId!))
      .forUpdate()
      .executeTakeFirst();
    if (!row) return null;
    await trx.updateTable('refunds').set({ history: withStep(to, at, actor), status: to, version: row.version + 1, updated_at: at }).where('refund_id', '=', row.refund_id).execute();
    return toView((await trx.selectFrom('refunds').selectAll().where('refund_id', '=', row.refund_id).executeTakeFirst())!, (await partsOf(trx, [row.refund_id])).get(row.refund_id) ?? []);
  }

  /**
   * In the receive_return transaction: the approved return's units are back, so its
   * amounts count as refunded, the ledger restocks them (reason 'return') and the money
   * is due (PENDING for the refund job). Only the return the warehouse's event is for
   * moves; null when it is no longer APPROVED. `unitsReceived`: the units of each of its lines
   * the parcel held, when fewer than it named: the return is of those alone. Either way its
   * amounts are those of its units on the lines as they are now (receivedUnits): asked while a
   * refund of the parcel's units waited for the warehouse, the return was priced counting them
   * refunded, the parcel's shipping with what was then its last unit; that refund withdrawn since
   * (the parcel left with them), it is priced without them. Received while that refund still
   * waits, it pays the shipping early; the line's next refund is priced against what it has
   * refunded (refundForLines), so the shipping is not paid twice.
   */
  static async receiveReturn(trx: Transaction<Database>, order: OrderRow, returnId: string, at: Date, unitsReceived?: ReadonlyArray<LineUnits>): Promise<RefundView | null> {
    const moved = await RefundRepository.moveReturn(trx, order.order_id, ['APPROVED'], 'PENDING', at, 'warehouse', returnId);
    if (!moved) return null;
    const received = await receivedUnits(trx, order, moved, unitsReceived ?? moved.items.map(({ lineNo, qty }) => ({ lineNo, qty })));
    return { ...received, ...(await applyRefund(trx, order, received, 'return')) };
  }

  /**
   * The returns that wait for a merchant's review (asked for, neither approved nor refused), and
   * how long the oldest has waited by MySQL's clock (0: none waits): nothing moves one on by itself.
   */
  async returnsAwaitingReview(): Promise<WaitingRefunds> {
    return waitingSinceOpened(this.db.selectFrom('refunds').where('kind', '=', 'return').where('status', '=', 'REQUESTED'));
  }

  /**
   * The refunds held, unpaid, until the warehouse takes their units out of the parcel it holds,
   * and how long the oldest has waited since it was opened by MySQL's clock (0: none waits).
   */
  async refundsHeldForWarehouse(): Promise<WaitingRefunds> {
    return waitingSinceOpened(heldUnpaidRefunds(this.db));
  }

  /**
   * The refunds the payment system declined (a part FAILED) and nobody settled since: money the
   * buyers are still owed, and how long the oldest has been, since its part failed by MySQL's clock
   * (0: none). Nothing asks again by itself: an admin asks again or settles it by hand.
   */
  async refundsDeclinedOwed(): Promise<WaitingRefunds> {
    const row = await this.db
      .selectFrom('refund_parts')
      .where('status', '=', 'FAILED')
      .select([
        (eb) => eb.fn.count<number | string>('refund_id').distinct().as('count'),
        sql<number | string | null>`TIMESTAMPDIFF(MICROSECOND, MIN(updated_at), UTC_TIMESTAMP(3)) / 1000000`.as('waited'),
      ])
      .executeTakeFirstOrThrow();
    return { count: Number(row.count), oldestWaitedSeconds: Math.max(0, Number(row.waited ?? 0)) };
  }

  /** Whether a return of the order waits for the merchant's review (asked for, neither approved nor refused). */
  async returnAwaitingReview(orderId: string): Promise<boolean> {
    const row = await this.db.selectFrom('refunds').select('refund_id').where('order_id', '=', orderId).where('kind', '=', 'return').where('status', '=', 'REQUESTED').executeTakeFirst();
    return row !== undefined;
  }

  /** The order's open return (asked for or approved, its units not received yet): at most one, the order being under review; null when none is. */
  async openReturn(orderId: string): Promise<RefundView | null> {
    const row = await this.db.selectFrom('refunds').select('refund_id').where('order_id', '=', orderId).where('kind', '=', 'return').where('status', 'in', ['REQUESTED', 'APPROVED']).executeTakeFirst();
    return row ? this.find(row.refund_id) : null;
  }

  /**
   * Whether the return brings back every unit of its order not refunded for good. The units of a
   * refund held for the warehouse and not paid yet count as the buyer's: the parcel may have left
   * with them (the refund then withdrawn), and a return of the others closing the order RETURNED
   * would leave the buyer a unit no return could bring back.
   */
  async returnIsWhole(returned: { orderId: string; items: readonly LineUnits[] }): Promise<boolean> {
    const lines = await this.db.selectFrom('order_items').select(['line_no', 'qty', 'refunded_qty']).where('order_id', '=', returned.orderId).execute();
    const held = (await heldUnpaidRefunds(this.db).select('items').where('order_id', '=', returned.orderId).execute()).flatMap((row) => JSON.parse(row.items) as RefundView['items']);
    const units = (items: readonly LineUnits[], lineNo: number) => items.filter((item) => item.lineNo === lineNo).reduce((sum, item) => sum + item.qty, 0);
    return lines.every((line) => line.qty - line.refunded_qty + units(held, line.line_no) === units(returned.items, line.line_no));
  }

  /**
   * The payment system confirmed one part (possibly before we recorded sending it, or
   * after it first reported it failed: SUCCEEDED is final); the refund succeeds with its
   * last part. `changed` is false when the part was already confirmed, or owes nothing any more
   * (`owedElsewhere`: its status then, the first time the payment system says so; SETTLED_BY_HAND:
   * the buyer was paid back another way already, and now twice; ASKED_AGAIN: its money was asked
   * for again under another part, which may have paid it too).
   */
  async confirmPart(partId: string, at: Date): Promise<{ changed: boolean; refundSettled: boolean; owedElsewhere: 'SETTLED_BY_HAND' | 'ASKED_AGAIN' | null }> {
    return this.db.transaction().execute(async (trx) => {
      const part = await trx.selectFrom('refund_parts').select('refund_id').where('part_id', '=', partId).executeTakeFirstOrThrow();
      // the refund row first: two parts confirmed at once settle the refund once, in turn
      const refund = await trx.selectFrom('refunds').select('refund_id').where('refund_id', '=', part.refund_id).forUpdate().executeTakeFirstOrThrow();
      const updated = await trx.updateTable('refund_parts').set({ status: 'SUCCEEDED', updated_at: at }).where('part_id', '=', partId).where('status', 'in', ['PENDING', 'SENT', 'FAILED']).executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) {
        // paid though it owed nothing any more: said once, a callback sent again saying it again
        const paidAfter = await trx
          .updateTable('refund_parts')
          .set({ paid_after_owed_elsewhere_at: at })
          .where('part_id', '=', partId)
          .where('status', 'in', ['SETTLED_BY_HAND', 'ASKED_AGAIN'])
          .where('paid_after_owed_elsewhere_at', 'is', null)
          .executeTakeFirst();
        if (Number(paidAfter.numUpdatedRows) === 0) return { changed: false, refundSettled: false, owedElsewhere: null };
        const now = await trx.selectFrom('refund_parts').select('status').where('part_id', '=', partId).executeTakeFirstOrThrow();
        return { changed: false, refundSettled: false, owedElsewhere: now.status as 'SETTLED_BY_HAND' | 'ASKED_AGAIN' };
      }
      return { changed: true, refundSettled: await settleWhenPaidBack(trx, refund, at, 'payment'), owedElsewhere: null };
    });
  }

  /**
   * An admin says the refund's parts the payment system could not pay back (FAILED) were paid
   * back another way (`reference`: how, say a bank transfer's reference): they become
   * SETTLED_BY_HAND, and the refund succeeds once every part is paid back. `settled`: the parts
   * settled now; none when the refund has no FAILED part (`byHandBefore`: some were settled by
   * hand already, so this is a repeat). Null for an unknown refund.
   */
  async settleFailedPartsByHand(refundId: string, reference: string, at: Date): Promise<{ settled: RefundPartView[]; byHandBefore: boolean; refundSettled: boolean } | null> {
    return this.db.transaction().execute(async (trx) => {
      const refund = await trx.selectFrom('refunds').select('refund_id').where('refund_id', '=', refundId).forUpdate().executeTakeFirst();
      if (!refund) return null;
      const parts = await lockParts(trx, refundId);
      const failed = parts.filter((part) => part.status === 'FAILED');
      if (failed.length === 0) return { settled: [], byHandBefore: parts.some((part) => part.status === 'SETTLED_BY_HAND'), refundSettled: false };
      await trx
        .updateTable('refund_parts')
        .set({ status: 'SETTLED_BY_HAND', settled_reference: reference, updated_at: at })
        .where('part_id', 'in', failed.map((part) => part.part_id))
        .execute();
      const settled = failed.map((part) => toPartView({ ...part, status: 'SETTLED_BY_HAND', settled_reference: reference }));
      return { settled, byHandBefore: false, refundSettled: await settleWhenPaidBack(trx, refund, at, 'admin') };
    });
  }

  /**
   * An admin asks the payment system again for the refund's parts it could not pay back
   * (FAILED; a card blocked meanwhile unblocked, a decline the provider has since fixed): it
   * knows a refund by its id for good and would answer the same, so each is asked for under a
   * new part (`again-<uuid>`, PENDING, the same payment and amount), which the old one names
   * (ASKED_AGAIN: it owes nothing now, and draws nothing from its payment). The refund is due
   * again (PENDING, a step by `admin`), for the payment job to send. `askedAgain`: the new
   * parts.
   *
   * The parts it accepted (SENT) and never confirmed, first sent longer than `givenUpAfterMs` ago
   * (REFUND_CONFIRMATION_GIVE_UP_MS: nothing asks for them any more), are due again under their own
   * ids (PENDING, `sentAgain`): the payment system pays nothing twice under one id, and answers
   * one it paid by its callback again; sent again, their give-up runs from then. None of either
   * (`askedBefore`: an admin made the refund due again before, so this is a repeat). Null for an
   * unknown refund.
   */
  async askFailedPartsAgain(
    refundId: string,
    at: Date,
    givenUpAfterMs: number,
  ): Promise<{ askedAgain: RefundPartView[]; sentAgain: RefundPartView[]; askedBefore: boolean } | null> {
    return this.db.transaction().execute(async (trx) => {
      const refund = await trx.selectFrom('refunds').select(['refund_id', 'history']).where('refund_id', '=', refundId).forUpdate().executeTakeFirst();
      if (!refund) return null;
      const parts = await lockParts(trx, refundId);
      const failed = parts.filter((part) => part.status === 'FAILED');
      // by MySQL's clock, as the sweep that gave them up reads it
      const givenUp = new Set(
        (await trx.selectFrom('refund_parts as p').select('p.part_id').where('p.refund_id', '=', refundId).where('p.status', '=', 'SENT').where(firstSent, '<', overdueSince(givenUpAfterMs)).execute()).map(
          (row) => row.part_id,
        ),
      );
      if (failed.length === 0 && givenUp.size === 0) {
        const history = refund.history === null ? [] : (JSON.parse(refund.history) as RefundView['history']);
        return { askedAgain: [], sentAgain: [], askedBefore: parts.some((part) => part.status === 'ASKED_AGAIN') || history.some((step) => step.actor === 'admin' && step.to === 'PENDING') };
      }
      const again = failed.map((part) => ({ part_id: `again-${randomUUID()}`, refund_id: refundId, payment_id: part.payment_id, amount_cents: Number(part.amount_cents), status: 'PENDING', created_at: at, updated_at: at }));
      if (again.length > 0) await trx.insertInto('refund_parts').values(again).execute();
      for (const [index, part] of failed.entries()) {
        await trx.updateTable('refund_parts').set({ status: 'ASKED_AGAIN', asked_again_as: again[index]!.part_id, updated_at: at }).where('part_id', '=', part.part_id).execute();
      }
      if (givenUp.size > 0) await trx.updateTable('refund_parts').set({ status: 'PENDING', updated_at: at }).where('part_id', 'in', [...givenUp]).execute();
      await trx
        .updateTable('refunds')
        .set({ history: withStep('PENDING', at, 'admin'), status: 'PENDING', version: (eb) => eb('version', '+', 1), updated_at: at })
        .where('refund_id', '=', refundId)
        .where('status', '=', 'SENT')
        .execute();
      return {
        askedAgain: again.map((part) => toPartView({ ...part, settled_reference: null, asked_again_as: null, sent_at: null, paid_after_owed_elsewhere_at: null })),
        sentAgain: parts.filter((part) => givenUp.has(part.part_id)).map((part) => toPartView({ ...part, status: 'PENDING' })),
        askedBefore: false,
      };
    });
  }

  /**
   * The payment system could not pay one part back: recorded on the part, while its refund
   * stays unsettled (the money is still owed, and the order stays REFUNDING) for an
   * operator to settle (RefundsFailed). False when the part had already settled or failed.
   */
  async failPart(partId: string, at: Date): Promise<boolean> {
    const updated = await this.db.updateTable('refund_parts').set({ status: 'FAILED', updated_at: at }).where('part_id', '=', partId).where('status', 'in', ['PENDING', 'SENT']).executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  /**
   * The refunds of the order whose units wait in a parcel the warehouse holds, and which are paid
   * back once it has taken them out (nothing is paid before): their parcel left with the units
   * (the warehouse refused the change as too late, or reported the parcel shipped). Each is
   * withdrawn: nothing is paid back (its parts owe nothing: WITHDRAWN), its units and amounts no
   * longer count as refunded on the lines and the order (and a child's parent), and no restock
   * follows: the units left, sold. An order the refund moved to REFUNDING ships after all
   * (withdraw_refund: IN_FULFILLMENT, for its SHIPPED to move on); one refunded in part stays
   * where it is. Under the order's lock (the transition's, else a child's parent's then its own),
   * the refunds' rows locked by primary key and read again: one the warehouse released meanwhile
   * is left to be paid. `only`: those of these refunds alone (the others were taken out first).
   * Returns those withdrawn and, for an order in REFUNDING, its transition.
   */
  async withdrawHeld(orders: OrderRepository, orderId: string, at: Date, why: string, only?: ReadonlySet<string>): Promise<{ withdrawn: RefundView[]; transition: TransitionResult | null }> {
    const order = await orders.findOrderRow(orderId);
    if (!order || (await this.heldUnpaid(orderId)).length === 0) return { withdrawn: [], transition: null };
    let withdrawn: RefundView[] = [];
    if (order.status === 'REFUNDING') {
      try {
        const transition = await orders.applyTransition({
          orderId,
          action: 'withdraw_refund',
          actor: 'system',
          at,
          detail: why,
          effects: async (trx, current) => {
            withdrawn = await withdrawHeldIn(trx, current, at, only);
            // paid or released meanwhile: the order stays REFUNDING, the transaction rolled back
            if (withdrawn.length === 0) throw new NothingWithdrawn();
            // refunded before its hand-over was recorded, its parcel left all the same: the shipment its events move on
            await ProcessRepository.openShipmentIfNone(trx, current, at);
          },
        });
        return { withdrawn, transition };
      } catch (error) {
        if (error instanceof NothingWithdrawn) return { withdrawn: [], transition: null };
        throw error;
      }
    }
    await this.db.transaction().execute(async (trx) => {
      if (order.parent_order_id !== null) await trx.selectFrom('orders').select('order_id').where('order_id', '=', order.parent_order_id).forUpdate().execute();
      const current = await trx.selectFrom('orders').selectAll().where('order_id', '=', orderId).forUpdate().executeTakeFirstOrThrow();
      withdrawn = await withdrawHeldIn(trx, current, at, only);
    });
    return { withdrawn, transition: null };
  }

  /**
   * The order's version at the step that opened each refund (its detail: refundOpenedDetail): a
   * change of the parcel read at it or later left its units out.
   */
  async openedAtVersions(orderId: string, refundIds: readonly string[]): Promise<Map<string, number>> {
    if (refundIds.length === 0) return new Map();
    const steps = await this.db.selectFrom('order_history').select(['version', 'detail']).where('order_id', '=', orderId).where('action', 'in', ['refund', 'refund_lines']).execute();
    return new Map(refundIds.flatMap((refundId) => {
      const step = steps.find((one) => one.detail?.startsWith(refundOpenedDetail(refundId, '')));
      return step ? [[refundId, step.version] as const] : [];
    }));
  }

  /** The order's refunds held for the warehouse and not paid yet: what withdrawHeld would withdraw. */
  async heldUnpaid(orderId: string): Promise<RefundView[]> {
    const rows = await heldUnpaidRefunds(this.db).selectAll().where('order_id', '=', orderId).orderBy('created_at').execute();
    return rows.map((row) => toView(row, []));
  }

  /**
   * In the transaction of a cancellation or a refund, once its parts moved, or once the warehouse
   * took out the units of a refund it held: the buyer's use of the order's coupon goes back when no
   * part of the order is left live, none shipped (each closed before it shipped: cancelled, or
   * refunded whole, its units out of any parcel) and a cancellation closed at least one, whichever
   * request closed the last one, in whatever order; once only (the redemption row says so). A part
   * that shipped (delivered, returned...) keeps it used: the order was partly fulfilled; so do refunds
   * alone, with no cancellation (README); so does a part whose refund waits for the warehouse to take
   * its units out of the parcel, which may yet leave with them (the refund withdrawn, the order
   * shipping): the warehouse's answer gives it back then (updateFulfilment). The parts are locked as
   * they are now (OrderRepository.lockChildren) under the order's lock (taken first, as every child's
   * move takes it), so two requests closing the last parts at once see each other's; the
   * cancellations' refunds through the snapshot, once it holds every move of the order's parts (refuseStaleSnapshot).
   */
  static async restoreCouponOnceNoneLeft(trx: Transaction<Database>, orderId: string, at: Date): Promise<void> {
    const children = await OrderRepository.lockChildren(trx, orderId);
    const parts = children.length > 0 ? children : await trx.selectFrom('orders').select(['order_id', 'status']).where('order_id', '=', orderId).forUpdate().execute();
    if (!parts.every((part) => CLOSED_BEFORE_SHIPPING.has(part.status))) return;
    await RefundRepository.refuseStaleSnapshot(trx, orderId);
    const partIds = parts.map((part) => part.order_id);
    const held = await heldUnpaidRefunds(trx).select('refund_id').where('order_id', 'in', partIds).executeTakeFirst();
    if (held) return;
    const cancelled = await trx.selectFrom('refunds').select('refund_id').where('refund_id', 'in', partIds.map(cancelRefundOf)).execute();
    if (cancelled.length > 0) await OrderRepository.restoreCoupon(trx, orderId, at);
  }

  /**
   * A parcel reached the warehouse for a return closed without one (refused, or closed as never
   * sent), at `at` by the warehouse's clock: a step of the warehouse's in the return's history, its
   * status as it stands. False when that receipt was recorded already (the warehouse sending it again).
   */
  async recordParcelAfterClose(refundId: string, at: Date): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('refunds').select(['status', 'history']).where('refund_id', '=', refundId).forUpdate().executeTakeFirst();
      const history = row?.history ? (JSON.parse(row.history) as RefundView['history']) : [];
      if (!row || history.some((step) => step.actor === 'warehouse' && Date.parse(step.at) === at.getTime())) return false;
      await trx.updateTable('refunds').set({ history: withStep(row.status, at, 'warehouse') }).where('refund_id', '=', refundId).execute();
      return true;
    });
  }

  /** The order's refunds whose units wait in a parcel the warehouse holds (restockHeld), oldest first. */
  async restockHeldFor(orderId: string): Promise<RefundView[]> {
    const rows = await this.db.selectFrom('refunds').selectAll().where('order_id', '=', orderId).where('restock_held_reason', 'is not', null).orderBy('created_at').execute();
    return rows.map((row) => toView(row, []));
  }

  /**
   * The warehouse took a held refund's units out of its parcel: the ledger restocks them, with
   * the reason held, once (the hold is cleared in the same transaction). False when it was
   * restocked already. Redis follows, as after any refund. The refund is due from now, by
   * MySQL's clock: measured from its opening, the overdue sweep took it for one whose refund
   * job was lost (RefundJobsLost) in the moment before the job paying it was enqueued.
   */
  async releaseHeldRestock(refund: Pick<RefundView, 'refundId' | 'orderId' | 'items'>): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('refunds').select('restock_held_reason').where('refund_id', '=', refund.refundId).forUpdate().executeTakeFirst();
      if (!row?.restock_held_reason) return false;
      await trx.updateTable('refunds').set({ restock_held_reason: null, updated_at: sql<Date>`NOW(3)` }).where('refund_id', '=', refund.refundId).execute();
      await restockInLedger(trx, refund.orderId, refund, row.restock_held_reason);
      return true;
    });
  }

  /** A refund with nothing to pay back settles as it stands; false when it was already settled. */
  async markSucceeded(refundId: string, at: Date): Promise<boolean> {
    return succeed(this.db, refundId, at, 'payment');
  }

  /**
   * In a transition's transaction: opens a refund order for units of the order's lines.
   * Each line gives back its allocated payable by units (refundForLines), never more.
   * A PENDING refund counts at once on the lines and the order (so a concurrent request
   * sees it) and restocks in the ledger. Throws RefundExceedsLine (rolling back) for
   * units not left.
   */
  static async openRefund(trx: Transaction<Database>, order: OrderRow, request: OpenRefund): Promise<RefundView> {
    const lines = await refundableLines(trx, order);
    const asked =
      request.items === 'rest'
        ? lines.filter((line) => line.refundedQty < line.qty).map((line) => ({ lineNo: line.lineNo, qty: line.qty - line.refundedQty }))
        : request.items.map((item) => {
            const line = lines.find((l) => l.skuId === item.skuId);
            if (!line) throw new RefundExceedsLine(`SKU ${item.skuId}`);
            return { lineNo: line.lineNo, qty: item.qty };
          });
    const refunds: LineRefund[] = asked.length === 0 ? [] : refundForLines(lines, asked);
    if (refunds.length === 0) throw new RefundExceedsLine('any line');
    const { items, amountCents } = refundItemsOf(lines, refunds);
    const refund = await insertRefund(trx, order, { ...request, amountCents, items });
    if (request.status === 'PENDING') return { ...refund, ...(await applyRefund(trx, order, refund, request.restockReason)) };
    return refund;
  }

  /**
   * In a transition's transaction: opens a refund order (PENDING) of everything the
   * payments that paid the order have left to give back, and of no units: a presale called
   * off after its deposit, whose units were reserved, never sold, and go back as a released
   * reservation rather than a restock. The amount counts on the order and on its lines, spread
   * in proportion to what each line pays (exact to the cent, as pricing spreads a discount), so
   * the lines add up to the order and each merchant's view of its lines says what went back.
   */
  static async openPaymentRefund(trx: Transaction<Database>, order: OrderRow, request: Pick<OpenRefund, 'refundId' | 'reason' | 'actor' | 'at'>): Promise<RefundView> {
    // the lines locked before the payments, as openRefund does
    const lines = await lockLines(trx, order.order_id);
    const amountCents = (await refundablePayments(trx, order)).reduce((sum, payment) => sum + Math.max(0, payment.refundableCents), 0);
    const refund = await insertRefund(trx, order, { ...request, kind: 'refund', status: 'PENDING', amountCents, items: [] });
    await countSpreadOnLines(trx, order, lines, amountCents);
    return { ...refund, parts: await drawParts(trx, order, refund) };
  }

  /**
   * In the transaction holding the order's lock: `amountCents` of its payments given back whole, with
   * no units (its payment-time stock gone at its payment), counted on the order and spread on its lines
   * as openPaymentRefund spreads it, so each merchant's view of its lines says its share went back.
   */
  static async countPaymentsGivenBack(trx: Transaction<Database>, order: OrderRow, amountCents: number): Promise<void> {
    await countSpreadOnLines(trx, order, await lockLines(trx, order.order_id), amountCents);
  }

  /**
   * In a transaction holding the order's lock (an unsplit order's move holds its row, a
   * child's move its parent's first): StaleOrderVersion when the order or one of its children
   * moved since the transaction's snapshot, which its first read took, before it waited for
   * that lock. Every payment, refund (a cancellation's too) and return of the order moves one
   * of them (but a late payment given back whole, whose part draws from it alone), so once
   * this passes, plain reads see every one committed before; a retry of the request reads
   * from a new snapshot.
   */
  static async refuseStaleSnapshot(trx: Transaction<Database>, orderId: string): Promise<void> {
    const order = await trx.selectFrom('orders').select(['order_id', 'version']).where('order_id', '=', orderId).execute();
    const seen = [...order, ...(await trx.selectFrom('orders').select(['order_id', 'version']).where('parent_order_id', '=', orderId).execute())];
    // by primary key, rows that exist: record locks only, and none another move holds (its own row, or a sibling behind the parent's lock)
    const now = await trx.selectFrom('orders').select(['order_id', 'version']).where('order_id', 'in', seen.map((row) => row.order_id)).forUpdate().execute();
    const versionSeen = new Map(seen.map((row) => [row.order_id, row.version]));
    if (now.some((row) => versionSeen.get(row.order_id) !== row.version)) throw new StaleOrderVersion(orderId);
  }

  /** In a refund's transaction: whether every unit of the order is refunded, read from its locked lines (what a concurrent refund committed included). */
  static async everyUnitRefunded(trx: Transaction<Database>, orderId: string): Promise<boolean> {
    const lines = await trx.selectFrom('order_items').select(['qty', 'refunded_qty']).where('order_id', '=', orderId).forUpdate().execute();
    return lines.every((line) => line.refunded_qty === line.qty);
  }
}

/** The orders a refund of this one counts on: the order, and a child's parent. */
const owners = (order: OrderRow): string[] => (order.parent_order_id === null ? [order.order_id] : [order.order_id, order.parent_order_id]);

/** The order's lines as refundForLines reads them, locked: a refund's units and cents are counted on them in the same transaction. */
async function refundableLines(trx: Transaction<Database>, order: OrderRow) {
  const rows = await trx.selectFrom('order_items').selectAll().where('order_id', '=', order.order_id).orderBy('line_no').forUpdate().execute();
  return rows.map((row) => ({
    lineNo: row.line_no,
    skuId: row.sku_id,
    channel: row.channel,
    merchantId: row.merchant_id,
    warehouseId: row.warehouse_id,
    qty: row.qty,
    payableCents: Number(row.payable_cents),
    shippingCents: Number(row.shipping_cents),
    refundedQty: row.refunded_qty,
    refundedCents: Number(row.refunded_cents),
  }));
}

/** A refund's items (each line's SKU with its units and cents) and their sum. */
function refundItemsOf(lines: ReadonlyArray<{ lineNo: number; skuId: string }>, refunds: readonly LineRefund[]): Pick<RefundView, 'items' | 'amountCents'> {
  const items = refunds.map((r) => ({ lineNo: r.lineNo, skuId: lines.find((l) => l.lineNo === r.lineNo)!.skuId, qty: r.qty, cents: r.cents }));
  return { items, amountCents: items.reduce((sum, item) => sum + item.cents, 0) };
}

/**
 * The return of the units that came back, priced on the lines as they are at its receipt: they alone
 * are paid back, restocked and counted as refunded, each line's cents as refundForLines gives them
 * for those units (the parcel's shipping only with its last unit), so a later return of the rest
 * still adds up to the lines' payable exactly. A parcel holding fewer units than the return named
 * leaves the others the buyer's, sold.
 */
async function receivedUnits(trx: Transaction<Database>, order: OrderRow, returned: RefundView, unitsReceived: ReadonlyArray<LineUnits>): Promise<RefundView> {
  const lines = await refundableLines(trx, order);
  const { items, amountCents } = refundItemsOf(lines, refundForLines(lines, unitsReceived.filter((line) => line.qty > 0)));
  await trx.updateTable('refunds').set({ items: JSON.stringify(items), amount_cents: amountCents }).where('refund_id', '=', returned.refundId).execute();
  return { ...returned, items, amountCents };
}

/** Writes a refund order's row, its first step in its history. */
async function insertRefund(
  trx: Transaction<Database>,
  order: OrderRow,
  refund: Pick<OpenRefund, 'refundId' | 'kind' | 'status' | 'reason' | 'actor' | 'at'> & { amountCents: number; items: RefundView['items'] },
): Promise<RefundView> {
  try {
    await trx
      .insertInto('refunds')
      .values({
        refund_id: refund.refundId,
        order_id: order.order_id,
        kind: refund.kind,
        status: refund.status,
        version: 1,
        reason: refund.reason,
        amount_cents: refund.amountCents,
        items: JSON.stringify(refund.items),
        history: JSON.stringify([{ from: null, to: refund.status, at: refund.at.toISOString(), actor: refund.actor }]),
        created_at: refund.at,
        updated_at: refund.at,
      })
      .execute();
  } catch (error) {
    // its id is the request's (its key, or its reason and units): the same request, committed since the caller looked
    // for it (a transition keeping the status, refund_lines, lets both fire), is answered as opened once decided again
    throw isDuplicateKey(error) ? new StaleOrderVersion(order.order_id) : error;
  }
  return toView(await trx.selectFrom('refunds').selectAll().where('refund_id', '=', refund.refundId).executeTakeFirstOrThrow(), []);
}

/** The detail of the step that opens a refund: its id first, which openedAtVersions finds it by, then the reason given. */
export function refundOpenedDetail(refundId: string, reason: string): string {
  return historyDetail(`refund ${refundId}: ${reason}`);
}

/** Refund orders (whole-payment refunds keep no history) due: waiting to be sent to the payment system. */
function dueRefundOrders(db: OrderDb) {
  return db.selectFrom('refunds').where('status', '=', 'PENDING').where('history', 'is not', null);
}

function lockLines(trx: Transaction<Database>, orderId: string) {
  return trx.selectFrom('order_items').select(['line_no', 'payable_cents']).where('order_id', '=', orderId).orderBy('line_no').forUpdate().execute();
}

/** `amountCents` counts as refunded on the order and on its lines, in proportion to what each line pays (exact to the cent, as pricing spreads a discount), with no units. */
async function countSpreadOnLines(trx: Transaction<Database>, order: OrderRow, lines: ReadonlyArray<{ line_no: number; payable_cents: number | string }>, amountCents: number): Promise<void> {
  const shares = allocateByLargestRemainder(amountCents, lines.map((line) => Number(line.payable_cents)));
  const counted = lines.map((line, i) => ({ lineNo: line.line_no, qty: 0, cents: shares[i]! })).filter((line) => line.cents !== 0);
  await countRefunded(trx, order, counted, amountCents);
}

/** Units and cents count as refunded on their lines, and `amountCents` on the order: the order's own and, for a child, its parent's. */
async function countRefunded(trx: Transaction<Database>, order: OrderRow, lines: ReadonlyArray<{ lineNo: number; qty: number; cents: number }>, amountCents: number): Promise<void> {
  for (const line of lines) {
    await trx
      .updateTable('order_items')
      .set((eb) => ({ refunded_qty: eb('refunded_qty', '+', line.qty), refunded_cents: eb('refunded_cents', '+', line.cents) }))
      .where('order_id', 'in', owners(order))
      .where('line_no', '=', line.lineNo)
      .execute();
  }
  await trx
    .updateTable('orders')
    .set((eb) => ({ refunded_cents: eb('refunded_cents', '+', amountCents) }))
    .where('order_id', 'in', owners(order))
    .execute();
}

/**
 * The refund's amounts count as refunded on its lines and order (and a child's parent);
 * the ledger restocks its units, or the refund holds their restock while they are in a parcel
 * the warehouse holds (releaseHeldRestock); its money is drawn from the order's payments (drawParts).
 */
async function applyRefund(trx: Transaction<Database>, order: OrderRow, refund: RefundView, restockReason: string): Promise<Pick<RefundView, 'parts' | 'restockHeld'>> {
  const { items, amountCents } = refund;
  await countRefunded(trx, order, items, amountCents);
  let restockHeld = false;
  if (items.some((item) => item.qty > 0)) {
    // units in a parcel the warehouse holds may leave with it before it reads the change: on sale again only once it took them out;
    // so may those of an order it was asked to take, whose answer is not recorded (lost to a timeout, or on its way)
    const parcel = await trx.selectFrom('shipments').select('status').where('order_id', '=', order.order_id).executeTakeFirst();
    restockHeld = parcel ? UNSHIPPED_PARCEL.has(parcel.status) : await handOverAsked(trx, order.order_id);
    if (restockHeld) await trx.updateTable('refunds').set({ restock_held_reason: restockReason }).where('refund_id', '=', refund.refundId).execute();
    else await restockInLedger(trx, order.order_id, refund, restockReason);
  }
  return { parts: await drawParts(trx, order, refund), restockHeld };
}

/**
 * Whether the warehouse was asked to take the order (noteHandOverAsked), by a locking read: the ask
 * moves no version, so the transaction's snapshot, taken before its move of the order, may predate it.
 */
async function handOverAsked(trx: Transaction<Database>, orderId: string): Promise<boolean> {
  const row = await trx.selectFrom('orders').select('handover_asked_at').where('order_id', '=', orderId).forUpdate().executeTakeFirst();
  return (row?.handover_asked_at ?? null) !== null;
}

/**
 * Refunds whose units wait in a parcel the warehouse holds and that nothing paid yet: paid once it
 * has taken the units out, withdrawn should the parcel leave with them first.
 */
function heldUnpaidRefunds(db: OrderDb | Transaction<Database>) {
  return db.selectFrom('refunds').where('restock_held_reason', 'is not', null).where('status', '=', 'PENDING');
}

/** Refunds or returns that wait: how many, and how long the oldest has waited since it was opened (seconds; 0: none waits). */
export interface WaitingRefunds {
  count: number;
  oldestWaitedSeconds: number;
}

async function waitingSinceOpened(refunds: ReturnType<typeof heldUnpaidRefunds>): Promise<WaitingRefunds> {
  const row = await refunds
    .select([
      (eb) => eb.fn.countAll<number | string>().as('count'),
      sql<number | string | null>`TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(3)) / 1000000`.as('waited'),
    ])
    .executeTakeFirstOrThrow();
  return { count: Number(row.count), oldestWaitedSeconds: Math.max(0, Number(row.waited ?? 0)) };
}

/** Rolls back a withdrawal that found nothing left to withdraw under the order's lock. */
class NothingWithdrawn extends Error {}

/** withdrawHeld's work, in a transaction holding the order's lock: the refunds withdrawn. */
async function withdrawHeldIn(trx: Transaction<Database>, order: OrderRow, at: Date, only?: ReadonlySet<string>): Promise<RefundView[]> {
  const ids = (await heldUnpaidRefunds(trx).select('refund_id').where('order_id', '=', order.order_id).execute()).map((row) => row.refund_id).filter((id) => only?.has(id) ?? true);
  if (ids.length === 0) return [];
  // locked by primary key, and read again: paid or released since the first read, it is left as it is
  const rows = await heldUnpaidRefunds(trx).selectAll().where('refund_id', 'in', ids).forUpdate().execute();
  const withdrawn: RefundView[] = [];
  for (const row of rows) {
    const parts = await lockParts(trx, row.refund_id);
    // a part sent already (by a job from before refunds waited for the warehouse) is being paid back: that refund stands
    if (parts.some((part) => part.status !== 'PENDING')) continue;
    await trx
      .updateTable('refunds')
      .set({ history: withStep('WITHDRAWN', at, 'system'), status: 'WITHDRAWN', restock_held_reason: null, version: (eb) => eb('version', '+', 1), updated_at: at })
      .where('refund_id', '=', row.refund_id)
      .execute();
    if (parts.length > 0) await trx.updateTable('refund_parts').set({ status: 'WITHDRAWN', updated_at: at }).where('part_id', 'in', parts.map((part) => part.part_id)).execute();
    const refund = toView(row, []);
    await countRefunded(trx, order, refund.items.map((item) => ({ lineNo: item.lineNo, qty: -item.qty, cents: -item.cents })), -refund.amountCents);
    withdrawn.push(refund);
  }
  return withdrawn;
}

/** The ledger's restock of a refund's units (once per refund and SKU: the ledger's unique movement). */
async function restockInLedger(trx: Transaction<Database>, orderId: string, refund: Pick<RefundView, 'refundId' | 'items'>, reason: string): Promise<void> {
  const restock = refund.items.filter((item) => item.qty > 0);
  if (restock.length === 0) return;
  await trx
    .insertInto('stock_ledger')
    .values(restock.map((line) => ({ sku_id: line.skuId, kind: 'restock' as const, ref: refund.refundId, order_id: orderId, qty: line.qty, reason })))
    .ignore()
    .execute();
}

/**
 * The payments that paid the order (a child's: its parent's), latest first, each with what
 * it took less what earlier refunds drew from it. An attempt that took the money after
 * another had paid is left out: it goes back whole, as a late payment of its own, and
 * drawn from here too it would be given back twice while the one that paid kept its money.
 * The payments are locked, so refunds of two children drawing from one payment take turns;
 * the payer's history and the parts are then read through the transaction's snapshot, once
 * it is known to hold every refund committed before (refuseStaleSnapshot). Not with a locking
 * read of the parts: on their payment index it gap-locks where a payment's first parts go, a
 * gap the payments of other orders share, and refunds of different orders at once deadlock,
 * each insert of parts waiting on the other's gap lock.
 */
async function refundablePayments(trx: Transaction<Database>, order: OrderRow): Promise<RefundablePayment[]> {
  const payer = payerOf(order);
  const payments = await paymentsThatPaid(trx, payer, { latestPaidFirst: true, whileLocked: () => RefundRepository.refuseStaleSnapshot(trx, payer) });
  const ids = payments.map((payment) => payment.payment_id);
  // a part asked for again draws nothing (the part it was asked again under draws its money), nor does a withdrawn one
  const drawn = ids.length === 0 ? [] : await trx.selectFrom('refund_parts').select(['payment_id', 'amount_cents']).where('payment_id', 'in', ids).where('status', 'not in', ['ASKED_AGAIN', 'WITHDRAWN']).execute();
  const drawnFrom = (paymentId: string) => drawn.filter((part) => part.payment_id === paymentId).reduce((sum, part) => sum + Number(part.amount_cents), 0);
  return payments.map((payment) => ({ paymentId: payment.payment_id, refundableCents: Number(payment.amount_cents) - drawnFrom(payment.payment_id) }));
}

/** Draws the refund's money from the order's payments (refundablePayments), latest first, each at most what it has left. */
async function drawParts(trx: Transaction<Database>, order: OrderRow, refund: RefundView): Promise<RefundPartView[]> {
  if (refund.amountCents === 0) return [];
  const parts = drawRefund(refund.amountCents, await refundablePayments(trx, order)).map((part, index) => ({
    partId: partIdOf(refund.refundId, index),
    paymentId: part.paymentId,
    amountCents: part.amountCents,
    status: 'PENDING',
  }));
  await trx
    .insertInto('refund_parts')
    .values(parts.map((part) => ({ part_id: part.partId, refund_id: refund.refundId, payment_id: part.paymentId, amount_cents: part.amountCents, status: part.status })))
    .execute();
  return parts;
}

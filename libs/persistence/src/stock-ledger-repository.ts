import type { OrderType } from '@orders/domain';
import { sql } from 'kysely';
import type { OrderDb } from './connection.js';
import { reservationsOf, type OrderReservation } from './order-repository.js';

/** An order accepted under its buyer's Idempotency-Key, with what the key's record holds (checkoutKeys). */
export interface CheckoutKeyOfOrder {
  orderId: string;
  userId: string;
  type: OrderType;
  idempotencyKey: string;
  bodyHash: string;
  acceptedAt: Date;
  paymentDeadline: Date;
}

/** What the ledger says a SKU's Redis counters should hold once every accepted order is persisted. */
export interface LedgerStock {
  skuId: string;
  available: number;
  reserved: number;
  sold: number;
}

export interface LedgerSnapshot {
  stock: LedgerStock[];
  /** Of the order ids asked about, those already in MySQL (their reservations are in the ledger). */
  persisted: Set<string>;
  /** When asked for: the movements of recent orders, read in the same instant as `stock` (LedgerMovements). */
  movements?: LedgerMovements;
}

/**
 * The ledger's movements of the orders accepted since a point, as `stock` counts them: for
 * the stock repair to find those whose Redis side has not run yet, or whose ledger row is not written yet.
 */
export interface LedgerMovements {
  /** orders whose reservation the ledger has released or committed */
  closed: ClosedReservation[];
  restocks: LedgerRestock[];
}

/** An order's release or commit as the ledger has it, for the repair to make Redis follow it. */
export interface ClosedReservation {
  orderId: string;
  userId: string;
  kind: 'release' | 'commit';
  /** the transition that released it (cancel, expire, refund, ...) */
  reason: string;
  skuIds: string[];
}

/** A refund's or a return's units put back on sale, under its ref (the refund id). */
export interface LedgerRestock {
  ref: string;
  orderId: string;
  lines: Array<{ skuId: string; qty: number }>;
}

/** A flash sale running with a per-buyer limit, and the units of it each persisted order still counts toward its buyer's limit. */
export interface LimitedSale {
  skuId: string;
  startsAt: Date;
  endsAt: Date;
  /** per order (a split order's children by their parent, whose reservation record it is) */
  held: Array<{ orderId: string; userId: string; qty: number }>;
}

/** How old a ledger row must be before foldSettled counts it into the sums. */
const LEDGER_SETTLED_AFTER_MS = 60 * 60_000;

/**
 * Ledger rows one fold reads at most beyond the folded id: the first folds after an upgrade
 * catch up with a large ledger over several runs, each within RECONCILE_QUERY_TIMEOUT_MS.
 */
const FOLD_ROWS_AT_MOST = 500_000;

/** Rows written per statement. */
const FOLD_BATCH = 1000;

/** `write` once per FOLD_BATCH of `rows`, in turn. */
async function inBatches<T>(rows: readonly T[], write: (batch: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < rows.length; i += FOLD_BATCH) await write(rows.slice(i, i + FOLD_BATCH));
}

/**
 * One movement's counters, over its rows (a SKU's rows under one ref): available moves by every
 * row; a reservation neither released nor committed holds its units reserved; a commit sells the
 * units it carries (a payment-time one) and those its reservation held (a placement line's commit
 * carries 0), a restock puts sold units back on sale.
 */
const MOVEMENT_COUNTERS = sql`
  SUM(qty) AS available,
  CASE WHEN SUM(kind IN ('release', 'commit')) = 0 THEN -SUM(CASE WHEN kind = 'reserve' THEN qty ELSE 0 END) ELSE 0 END AS reserved,
  -SUM(CASE WHEN kind IN ('commit', 'restock') THEN qty ELSE 0 END)
    + CASE WHEN SUM(kind = 'commit') > 0 THEN -SUM(CASE WHEN kind = 'reserve' THEN qty ELSE 0 END) ELSE 0 END AS sold`;

/** A movement (grouped as MOVEMENT_COUNTERS) holding a reservation neither released nor committed. */
const STILL_OPEN = sql`SUM(kind = 'reserve') > 0 AND SUM(kind IN ('release', 'commit')) = 0`;

/** The ledger rows the settled sums leave out: above the settled id (up to `upTo`), and those at or below it listed unsettled. */
function rowsNotSettled(through: number, upTo = Number.MAX_SAFE_INTEGER) {
  return sql`
    SELECT id, sku_id, ref, kind, qty FROM stock_ledger WHERE id > ${through} AND id <= ${upTo}
    UNION ALL
    SELECT l.id, l.sku_id, l.ref, l.kind, l.qty FROM stock_ledger_unsettled u JOIN stock_ledger l ON l.id = u.ledger_id`;
}

/** The ledger id the settled sums reach, as this transaction's snapshot has it. */
async function settledThrough(db: OrderDb): Promise<number> {
  const row = await db.selectFrom('stock_ledger_settled_through').select('ledger_id').where('id', '=', 1).executeTakeFirst();
  return Number(row?.ledger_id ?? 0);
}

/** The reason of a paid order's cancellation on its restock rows (the cancel route's): what gives a flash-sale limit back. */
const CANCELLATION = 'cancel';

/**
 * The ledger read as stock counters, for the stock reconciler.
 * available: the sum of every movement. reserved: placement reservations neither
 * released nor committed. sold: committed units (a placement line's commit row carries
 * qty 0, so its units come from the reservation it committed) less units restocked after returns.
 */
export class StockLedgerRepository {
  constructor(
    private readonly db: OrderDb,
    private readonly options: { settledAfterMs: number; foldRowsAtMost: number } = { settledAfterMs: LEDGER_SETTLED_AFTER_MS, foldRowsAtMost: FOLD_ROWS_AT_MOST },
  ) {}

  /**
   * Units moved between two buckets of a SKU: a pair of `adjust` rows that cancel out,
   * so the ledger's totals stay as they are and the move is on record. Written once per
   * transfer id (a finished transfer is finished again after a crash).
   *
   * A voided transfer (a merchant's stock set came between its two sides) gets its
   * `out` row alone: the set's own row counted the SKU without the units on their way,
   * and they never arrived, so the ledger ends at the quantity set, as Redis does.
   */
  async recordTransfer(transfer: { transferId: string; skuId: string; from: number; to: number; qty: number; voided: boolean }): Promise<void> {
    const { transferId, skuId, from, to, qty } = transfer;
    const row = (side: 'out' | 'in', units: number, reason: string) => ({ sku_id: skuId, kind: 'adjust' as const, ref: `transfer:${transferId}:${side}`, order_id: null, qty: units, reason });
    const rows = transfer.voided
      ? [row('out', -qty, `taken from bucket ${from} for ${to}, voided by a stock set`)]
      : [row('out', -qty, `moved from bucket ${from} to bucket ${to}`), row('in', qty, `moved to bucket ${to} from bucket ${from}`)];
    await this.db.insertInto('stock_ledger').ignore().values(rows).execute();
  }

  /** Releases and commits of the orders accepted from `fromOrderId` on (order ids sort by acceptance). */
  async closedReservations(fromOrderId: string): Promise<ClosedReservation[]> {
    return closedReservations(this.db, fromOrderId);
  }

  /** The orders accepted from `fromOrderId` on whose placement reservation the ledger holds: reserved, neither released nor committed. */
  async openReservations(fromOrderId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('stock_ledger')
      .select('order_id')
      .where('order_id', '>=', fromOrderId)
      .groupBy('order_id')
      .having(sql<number>`SUM(kind = 'reserve')`, '>', 0)
      .having(sql<number>`SUM(kind IN ('release', 'commit'))`, '=', 0)
      .orderBy('order_id')
      .execute();
    return rows.map((row) => row.order_id!);
  }

  /** The orders accepted from `fromOrderId` on (not a split's children, which hold no reservation) whose reservation the ledger has neither released nor committed. */
  async unclosedOrders(fromOrderId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('orders as o')
      .select('o.order_id')
      .where('o.order_id', '>=', fromOrderId)
      .where('o.parent_order_id', 'is', null)
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('stock_ledger as l').select('l.id').whereRef('l.order_id', '=', 'o.order_id').where('l.kind', 'in', ['release', 'commit']))),
      )
      .orderBy('o.order_id')
      .execute();
    return rows.map((row) => row.order_id);
  }

  /** These orders' reservations as MySQL has them (reservationsOf), for the repair to put back records Redis lost. */
  async reservationsOf(orderIds: readonly string[]): Promise<OrderReservation[]> {
    if (orderIds.length === 0) return [];
    return reservationsOf(this.db, await this.db.selectFrom('orders').selectAll().where('order_id', 'in', [...orderIds]).orderBy('order_id').execute());
  }

  /**
   * The orders accepted from `fromOrderId` on, at `acceptedSince` or later, under a buyer's
   * Idempotency-Key (not imported ones, nor a split's children), with what the key's record holds:
   * for the repair to write again the records Redis lost (Inventory.restoreCheckoutKeys).
   */
  async checkoutKeys(fromOrderId: string, acceptedSince: Date): Promise<CheckoutKeyOfOrder[]> {
    const rows = await this.db
      .selectFrom('orders')
      .select(['order_id', 'user_id', 'type', 'idempotency_key', 'checkout_body_hash', 'accepted_at', 'payment_deadline'])
      .where('order_id', '>=', fromOrderId)
      .where('accepted_at', '>=', acceptedSince)
      .where('parent_order_id', 'is', null)
      .where('idempotency_key', 'is not', null)
      .where('checkout_body_hash', 'is not', null)
      .orderBy('order_id')
      .execute();
    return rows.map((row) => ({
      orderId: row.order_id,
      userId: row.user_id,
      type: row.type as OrderType,
      idempotencyKey: row.idempotency_key!,
      bodyHash: row.checkout_body_hash!,
      acceptedAt: row.accepted_at,
      paymentDeadline: row.payment_deadline,
    }));
  }

  /** Restocks of the orders accepted from `fromOrderId` on. */
  async restocks(fromOrderId: string): Promise<LedgerRestock[]> {
    return restocks(this.db, fromOrderId);
  }

  /**
   * Whose per-buyer limit a restock gives back (the Inventory's `restockStock`): a paid order's
   * cancellation (its restock rows' reason), of the SKUs the order bought in their flash sale with a
   * limit (accepted in the sale's window, as the catalog has it). Null for any other restock (a refund
   * of lines, a return: those units stay counted, as the coupon use stays used) or without such SKUs.
   */
  async limitGivenBack({ orderId, ref }: { orderId: string; ref: string }): Promise<{ userId: string; skuIds: string[]; acceptedAt: Date } | null> {
    const rows = await this.db
      .selectFrom('stock_ledger as l')
      .innerJoin('orders as o', 'o.order_id', 'l.order_id')
      .innerJoin('skus as s', 's.sku_id', 'l.sku_id')
      .select(['o.user_id', 'o.accepted_at', 'l.sku_id'])
      .where('l.order_id', '=', orderId)
      .where('l.kind', '=', 'restock')
      .where('l.ref', '=', ref)
      .where('l.reason', '=', CANCELLATION)
      .where('o.type', '=', 'flash_sale')
      .where('s.flash_per_user_limit', '>', 0)
      .whereRef('s.flash_starts_at', '<=', 'o.accepted_at')
      .whereRef('o.accepted_at', '<', 's.flash_ends_at')
      .execute();
    return rows.length === 0 ? null : { userId: rows[0]!.user_id, skuIds: rows.map((row) => row.sku_id), acceptedAt: rows[0]!.accepted_at };
  }

  /**
   * The flash sales running at `now` with a per-buyer limit, each with the units persisted orders
   * still count toward their buyers' limits: lines of orders accepted in the sale's window (a split
   * order's as its children hold them), neither released (cancelled, expired, or a release in the
   * ledger: a payment-time SKU sold out) nor put back by a cancellation after payment; a refund of
   * lines or a return leaves them counted. In one consistent snapshot (REPEATABLE READ) with which of
   * `acceptedIds` are persisted, so an order written meanwhile is counted from MySQL or from Redis, never both.
   */
  async limitedSales(now: Date, acceptedIds: readonly string[]): Promise<{ sales: LimitedSale[]; persisted: Set<string> }> {
    return this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        const lines = await trx
          .selectFrom('skus as s')
          .innerJoin('order_items as i', 'i.sku_id', 's.sku_id')
          .innerJoin('orders as o', 'o.order_id', 'i.order_id')
          .select(['s.sku_id', 's.flash_starts_at', 's.flash_ends_at', 'o.order_id', 'o.parent_order_id', 'o.user_id', 'i.qty'])
          .where('s.flash_per_user_limit', '>', 0)
          .where('s.flash_starts_at', '<=', now)
          .where('s.flash_ends_at', '>', now)
          .where('o.type', '=', 'flash_sale')
          .whereRef('o.accepted_at', '>=', 's.flash_starts_at')
          .whereRef('o.accepted_at', '<', 's.flash_ends_at')
          .where('o.status', 'not in', ['CANCELLED', 'EXPIRED'])
          // a split order's lines are counted as its children hold them
          .where(({ not, exists, selectFrom }) => not(exists(selectFrom('orders as c').select('c.order_id').whereRef('c.parent_order_id', '=', 'o.order_id'))))
          .where(({ not, exists, selectFrom }) => not(exists(selectFrom('stock_ledger as r').select('r.id').whereRef('r.order_id', '=', 'o.order_id').where('r.kind', '=', 'release'))))
          .execute();
        const orderIds = [...new Set(lines.map((line) => line.order_id))];
        const cancelled =
          orderIds.length === 0
            ? []
            : await trx
                .selectFrom('stock_ledger')
                .select(['order_id', 'sku_id', 'qty'])
                .where('kind', '=', 'restock')
                .where('reason', '=', CANCELLATION)
                .where('order_id', 'in', orderIds)
                .execute();
        const persisted = acceptedIds.length === 0 ? [] : await trx.selectFrom('orders').select('order_id').where('order_id', 'in', [...acceptedIds]).execute();
        const sales = new Map<string, LimitedSale>();
        for (const line of lines) {
          const sale = sales.get(line.sku_id) ?? { skuId: line.sku_id, startsAt: line.flash_starts_at!, endsAt: line.flash_ends_at!, held: [] };
          sales.set(line.sku_id, sale);
          sale.held.push({ orderId: line.parent_order_id ?? line.order_id, userId: line.user_id, qty: Number(line.qty) });
        }
        const lineOf = new Map(lines.map((line) => [`${line.order_id} ${line.sku_id}`, line]));
        for (const { order_id, sku_id, qty } of cancelled) {
          const line = lineOf.get(`${order_id} ${sku_id}`);
          if (line) sales.get(sku_id)!.held.push({ orderId: line.parent_order_id ?? line.order_id, userId: line.user_id, qty: -Number(qty) });
        }
        return { sales: [...sales.values()], persisted: new Set(persisted.map((row) => row.order_id)) };
      });
  }

  /**
   * Folds the ledger rows written more than `settledAfterMs` ago into the per-SKU sums the stock
   * check starts from, so that it reads the recent rows only (and those of reservations still
   * open) instead of every row ever written. Movement by movement: one closed (a reservation
   * released or committed) or holding no reservation (an adjustment, a restock, a payment-time
   * commit) counts the same whatever is written after it; a reservation still open is listed
   * (stock_ledger_unsettled) and read with the recent rows until a later fold finds it closed.
   * At most `foldRowsAtMost` rows a fold, so a large ledger is caught up over several runs.
   * The margin is for ids: MySQL hands them out at insert, so a row below the folded id may
   * belong to a transaction not yet committed, which no write here stays open for an hour.
   * The ledger is append-only; a row older than that, edited by hand, is not read again.
   * One fold at a time (a row lock; another finds it taken and leaves it). Returns the ledger id
   * the sums now reach, or undefined when another fold was under way.
   */
  async foldSettled(): Promise<number | undefined> {
    return this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        const { rows: locked } = await sql<{ ledger_id: number | string }>`
          SELECT ledger_id FROM stock_ledger_settled_through WHERE id = 1 FOR UPDATE SKIP LOCKED`.execute(trx);
        if (locked.length === 0) return undefined;
        const through = Number(locked[0]!.ledger_id);
        const { rows: newest } = await sql<{ id: number | string | null }>`
          SELECT MAX(id) AS id FROM (SELECT id, created_at FROM stock_ledger WHERE id > ${through} ORDER BY id LIMIT ${this.options.foldRowsAtMost}) r
          WHERE created_at < NOW(3) - INTERVAL ${this.options.settledAfterMs * 1000} MICROSECOND`.execute(trx);
        if (newest[0]?.id === null || newest[0]?.id === undefined) return through;
        const upTo = Number(newest[0].id);
        // a movement's rows come in order (a reservation before its release or commit, in another
        // transaction), so one whose reservation has no release or commit up to upTo is open then
        const rows = rowsNotSettled(through, upTo);
        // each SKU's new sums: what it had plus what this fold counts (read under the fold's lock, so current)
        const { rows: folded } = await sql<{ sku_id: string; available: number | string; sold: number | string }>`
          SELECT f.sku_id, COALESCE(c.available, 0) + f.available AS available, COALESCE(c.sold, 0) + f.sold AS sold
          FROM (
            SELECT sku_id, SUM(available) AS available, SUM(sold) AS sold
            FROM (SELECT sku_id, ${MOVEMENT_COUNTERS} FROM (${rows}) r GROUP BY sku_id, ref HAVING NOT (${STILL_OPEN})) g
            GROUP BY sku_id
          ) f
          LEFT JOIN stock_ledger_settled c ON c.sku_id = f.sku_id`.execute(trx);
        const { rows: left } = await sql<{ id: number | string }>`
          SELECT id FROM (
            SELECT id, SUM(kind = 'reserve') OVER movement AS reserves, SUM(kind IN ('release', 'commit')) OVER movement AS closes
            FROM (${rows}) r
            WINDOW movement AS (PARTITION BY sku_id, ref)
          ) m
          WHERE reserves > 0 AND closes = 0`.execute(trx);
        // the list changes by the reservations closed and those opened since: a presale's stay listed for weeks
        const listed = new Set((await trx.selectFrom('stock_ledger_unsettled').select('ledger_id').execute()).map((row) => Number(row.ledger_id)));
        const kept = new Set(left.map((row) => Number(row.id)));
        const gone = [...listed].filter((id) => !kept.has(id));
        const added = [...kept].filter((id) => !listed.has(id));
        await inBatches(gone, (batch) => trx.deleteFrom('stock_ledger_unsettled').where('ledger_id', 'in', batch).execute());
        await inBatches(added, (batch) => trx.insertInto('stock_ledger_unsettled').values(batch.map((id) => ({ ledger_id: id }))).execute());
        // REPLACE rather than an upsert adding VALUES(), which MySQL 8 deprecates and MariaDB alone keeps
        await inBatches(folded, (batch) =>
          trx
            .replaceInto('stock_ledger_settled')
            .values(batch.map((row) => ({ sku_id: row.sku_id, available: Number(row.available), sold: Number(row.sold) })))
            .execute(),
        );
        await trx.updateTable('stock_ledger_settled_through').set({ ledger_id: upTo, updated_at: sql`NOW(3)` }).where('id', '=', 1).execute();
        return upTo;
      });
  }

  /** How old, by MySQL's clock, the first ledger row past the folded sums is, in seconds; 0 when there is none. */
  async oldestUnfoldedAge(): Promise<number> {
    const { rows } = await sql<{ age: number | string | null }>`
      SELECT TIMESTAMPDIFF(MICROSECOND, l.created_at, NOW(3)) / 1000000 AS age
      FROM stock_ledger l
      WHERE l.id > COALESCE((SELECT ledger_id FROM stock_ledger_settled_through WHERE id = 1), 0)
      ORDER BY l.id LIMIT 1`.execute(this.db);
    return Math.max(Number(rows[0]?.age ?? 0), 0);
  }

  /**
   * One consistent snapshot (one REPEATABLE READ transaction) of the ledger of every
   * catalog SKU and of which of `orderIds` are persisted, so an order being written
   * meanwhile is counted either in the ledger or as not yet persisted, never both.
   * With `movementsFrom`, the movements of the orders accepted since (`orders`) and of their restocks (`restocks`) too.
   */
  async snapshot(orderIds: readonly string[], movementsFrom?: { orders: string; restocks: string }): Promise<LedgerSnapshot> {
    return this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        // the settled sums, and one pass over the rows not in them, each movement's rows summed
        // together first: a reservation is still held when its ref has no release or commit, sold
        // when it has a commit (a lookup of those per reserve row read a SKU's whole ledger once per row: minutes for a sale)
        const through = await settledThrough(trx);
        const { rows } = await sql<{ sku_id: string; available: number | string; reserved: number | string; sold: number | string }>`
          SELECT s.sku_id,
            COALESCE(c.available, 0) + COALESCE(m.available, 0) AS available,
            COALESCE(m.reserved, 0) AS reserved,
            COALESCE(c.sold, 0) + COALESCE(m.sold, 0) AS sold
          FROM skus s
          LEFT JOIN stock_ledger_settled c ON c.sku_id = s.sku_id
          LEFT JOIN (
            SELECT sku_id, SUM(available) AS available, SUM(reserved) AS reserved, SUM(sold) AS sold
            FROM (SELECT sku_id, ${MOVEMENT_COUNTERS} FROM (${rowsNotSettled(through)}) r GROUP BY sku_id, ref) g
            GROUP BY sku_id
          ) m ON m.sku_id = s.sku_id
          ORDER BY s.sku_id`.execute(trx);
        const persisted =
          orderIds.length === 0 ? [] : await trx.selectFrom('orders').select('order_id').where('order_id', 'in', [...orderIds]).execute();
        return {
          stock: rows.map((row) => ({ skuId: row.sku_id, available: Number(row.available), reserved: Number(row.reserved), sold: Number(row.sold) })),
          persisted: new Set(persisted.map((row) => row.order_id)),
          movements: movementsFrom && (await movementsOf(trx, movementsFrom)),
        };
      });
  }
}

async function closedReservations(db: OrderDb, fromOrderId: string): Promise<ClosedReservation[]> {
  const rows = await db
    .selectFrom('stock_ledger as l')
    .innerJoin('orders as o', 'o.order_id', 'l.order_id')
    .select(['l.order_id', 'l.kind', 'l.reason', 'l.sku_id', 'o.user_id'])
    .where('l.kind', 'in', ['release', 'commit'])
    .where('l.order_id', '>=', fromOrderId)
    .orderBy('l.id')
    .execute();
  const byOrder = new Map<string, ClosedReservation>();
  for (const row of rows) {
    const key = `${row.order_id}:${row.kind}`;
    const known = byOrder.get(key);
    if (known) known.skuIds.push(row.sku_id);
    else byOrder.set(key, { orderId: row.order_id!, userId: row.user_id, kind: row.kind as ClosedReservation['kind'], reason: row.reason, skuIds: [row.sku_id] });
  }
  return [...byOrder.values()];
}

async function restocks(db: OrderDb, fromOrderId: string): Promise<LedgerRestock[]> {
  const rows = await db
    .selectFrom('stock_ledger')
    .select(['ref', 'order_id', 'sku_id', 'qty'])
    .where('kind', '=', 'restock')
    .where('order_id', '>=', fromOrderId)
    .orderBy('id')
    .execute();
  const byRef = new Map<string, LedgerRestock>();
  for (const row of rows) {
    const line = { skuId: row.sku_id, qty: Number(row.qty) };
    const known = byRef.get(row.ref);
    if (known) known.lines.push(line);
    else byRef.set(row.ref, { ref: row.ref, orderId: row.order_id!, lines: [line] });
  }
  return [...byRef.values()];
}

async function movementsOf(db: OrderDb, from: { orders: string; restocks: string }): Promise<LedgerMovements> {
  return { closed: await closedReservations(db, from.orders), restocks: await restocks(db, from.restocks) };
}

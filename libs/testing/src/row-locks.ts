import type { OrderDb } from '@orders/persistence';
import { sql } from 'kysely';
import { waitFor } from './processes.js';

/** A row another session holds: released by `release` (a rollback), whatever the test found. */
export interface HeldRow {
  release(): Promise<void>;
}

/**
 * Other work holding a row of the system's database: a SELECT … FOR UPDATE in a transaction left
 * open until released, so that the system's writes to it queue behind it, in the order they come.
 */
export async function holdRow(db: OrderDb, table: 'orders' | 'payments' | 'refunds' | 'shipments' | 'skus' | 'warehouse_shipping' | 'pricing_rules_version', column: 'order_id' | 'payment_id' | 'refund_id' | 'sku_id' | 'warehouse_id' | 'id', id: string): Promise<HeldRow> {
  const other = await db.startTransaction().execute();
  await sql`SELECT 1 FROM ${sql.table(table)} WHERE ${sql.ref(column)} = ${id} FOR UPDATE`.execute(other);
  let open = true;
  return {
    async release() {
      if (!open) return;
      open = false;
      await other.rollback().execute();
    },
  };
}

/**
 * The transactions of this database waiting for a row lock now (a retry of the same work is a new
 * one). InnoDB refreshes these tables only when they were not read for 0.1 s, and reading them
 * more often held the waiting sessions up: poll them every 200 ms or so. Not a wait on InnoDB's
 * own dictionary (`SYS_TABLES`, ...): files reading them side by side can keep a snapshot from
 * while this database's tables were being created (CREATE TABLE ... LIKE, in parallel), which
 * told a write that never waited as held up. Nor on its persistent statistics (`mysql`.
 * `innodb_table_stats`, ...): a write that has them recalculated waits a moment behind another
 * file's CREATE or DROP DATABASE, which holds them; seen telling a batch held up by no lock of
 * the test's.
 */
export async function rowLockWaits(db: OrderDb): Promise<string[]> {
  const { rows } = await sql<{ trxId: string }>`
    SELECT t.trx_id AS trxId FROM information_schema.INNODB_TRX t
    JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
    LEFT JOIN information_schema.INNODB_LOCKS l ON l.lock_id = t.trx_requested_lock_id
    WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE() AND (l.lock_table IS NULL OR (l.lock_table NOT LIKE '\`SYS\\_%' AND l.lock_table NOT LIKE '\`mysql\`.%'))`.execute(db);
  return rows.map((row) => String(row.trxId));
}

/**
 * Another session holding a whole table (a long ALTER TABLE, a forgotten LOCK TABLES): every
 * statement of the system's on it waits until `release`.
 */
export async function holdTable(db: OrderDb, table: 'orders' | 'order_items' | 'stock_ledger' | 'webhook_deliveries'): Promise<HeldRow> {
  let locked!: () => void;
  let failed!: (error: unknown) => void;
  let release!: () => void;
  const held = new Promise<void>((resolve, reject) => ((locked = resolve), (failed = reject)));
  const released = new Promise<void>((resolve) => (release = resolve));
  const session = db.connection().execute(async (connection) => {
    await sql`LOCK TABLES ${sql.table(table)} WRITE`.execute(connection);
    locked();
    await released;
    await sql`UNLOCK TABLES`.execute(connection);
  });
  session.catch(failed);
  await held;
  return {
    async release() {
      release();
      await session;
    },
  };
}

/** The statements of this database waiting for a table another session holds (holdTable). */
export async function tableLockWaits(db: OrderDb): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND STATE LIKE 'Waiting for table%'`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/**
 * What the transactions of this database waiting for a lock wait on, one line each: the lock
 * asked for (table, index, mode, the record) and the statement of the transaction holding it.
 */
async function lockWaitsDescribed(db: OrderDb): Promise<string[]> {
  const { rows } = await sql<{ lockTable: string; lockIndex: string | null; lockMode: string; lockData: string | null; blockingQuery: string | null }>`
    SELECT l.lock_table AS lockTable, l.lock_index AS lockIndex, l.lock_mode AS lockMode, l.lock_data AS lockData, b.trx_query AS blockingQuery
    FROM information_schema.INNODB_LOCK_WAITS w
    JOIN information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id
    JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
    JOIN information_schema.PROCESSLIST p ON p.ID = r.trx_mysql_thread_id
    LEFT JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
    WHERE p.DB = DATABASE()`.execute(db);
  return rows.map((row) => `${row.lockTable} ${row.lockIndex ?? ''} ${row.lockMode} ${row.lockData ?? ''}, held by a transaction running ${row.blockingQuery ?? 'no statement now'}`);
}

/**
 * Whether `write`, sent while another transaction of the test holds its locks, went through or
 * waits for a row lock of that transaction (InnoDB's lock waits of this database); held up, the
 * answer names the lock, so a test expecting 'written' says what held it. A write held
 * up goes through once the holder commits: its failure then is left unheard, so the test file
 * leaves nothing waiting behind. The lock-wait poll ends with the answer: one left running would
 * query the database after the test file dropped it.
 */
export async function writtenOrHeldUp(db: OrderDb, write: Promise<unknown>, what: string): Promise<'written' | `held up on ${string}`> {
  let settled = false;
  const written = write.then(() => 'written' as const).finally(() => (settled = true));
  const poll = waitFor(async () => (settled ? ('settled' as const) : (await rowLockWaits(db)).length > 0 && ('held up' as const)), { what: `${what} written or waiting` });
  const outcome = await Promise.race([written, poll]).catch(async (error: unknown) => {
    await poll.catch(() => undefined);
    throw error;
  });
  if (outcome === 'held up') {
    void written.catch(() => undefined);
    return `held up on ${(await lockWaitsDescribed(db)).join('; ') || 'a lock no longer waited for'}`;
  }
  await poll;
  return 'written';
}

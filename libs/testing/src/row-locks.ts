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
 * more often held the waiting sessions up: poll them every 200 ms or so.
 */
export async function rowLockWaits(db: OrderDb): Promise<string[]> {
  const { rows } = await sql<{ trxId: string }>`
    SELECT t.trx_id AS trxId FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
    WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()`.execute(db);
  return rows.map((row) => String(row.trxId));
}

/**
 * Another session holding a whole table (a long ALTER TABLE, a forgotten LOCK TABLES): every
 * statement of the system's on it waits until `release`.
 */
export async function holdTable(db: OrderDb, table: 'orders' | 'order_items' | 'stock_ledger'): Promise<HeldRow> {
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
 * Whether `write`, sent while another transaction of the test holds its locks, went through or
 * waits for a row lock of that transaction (InnoDB's lock waits of this database). A write held
 * up goes through once the holder commits: its failure then is left unheard, so the test file
 * leaves nothing waiting behind. The lock-wait poll ends with the answer: one left running would
 * query the database after the test file dropped it.
 */
export async function writtenOrHeldUp(db: OrderDb, write: Promise<unknown>, what: string): Promise<'written' | 'held up'> {
  let settled = false;
  const written = write.then(() => 'written' as const).finally(() => (settled = true));
  const poll = waitFor(async () => (settled ? ('settled' as const) : (await rowLockWaits(db)).length > 0 && ('held up' as const)), { what: `${what} written or waiting` });
  const outcome = await Promise.race([written, poll]).catch(async (error: unknown) => {
    await poll.catch(() => undefined);
    throw error;
  });
  if (outcome === 'held up') {
    void written.catch(() => undefined);
    return outcome;
  }
  await poll;
  return 'written';
}

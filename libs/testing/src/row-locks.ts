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

/** A transaction waiting for a lock on a row of this database's tables, as InnoDB's monitor prints it. */
interface LockWait {
  trxId: string;
  /** The lock asked for (table, index, mode) and the statement that asked. */
  described: string;
}

/**
 * The transactions waiting for a lock on a row of this database's tables now (a retry of the same
 * work is a new one), read from InnoDB's monitor (SHOW ENGINE INNODB STATUS), which InnoDB writes
 * when asked. Not from information_schema.INNODB_TRX and INNODB_LOCKS: InnoDB refreshes those from
 * a cache only once nobody has read them for 0.1 s, so test files polling them side by side kept
 * the cache from ever being refreshed, and a write waiting for a held row read as not waiting for
 * as long as they polled (2 to 7 of the 24 lock-wait tests timed out when their 9 files ran
 * together). A wait on a table of another database is not this test's: InnoDB's persistent
 * statistics (`mysql`.`innodb_table_stats`), held by another file's CREATE or DROP DATABASE, or its
 * dictionary, which files creating their tables side by side hold.
 */
async function lockWaits(db: OrderDb): Promise<LockWait[]> {
  const [{ rows: names }, { rows: monitor }] = await Promise.all([sql<{ name: string }>`SELECT DATABASE() AS name`.execute(db), sql<{ Status: string }>`SHOW ENGINE INNODB STATUS`.execute(db)]);
  const database = names[0]?.name;
  const waits: LockWait[] = [];
  // each transaction's block: "---TRANSACTION <id>, ACTIVE ...", "LOCK WAIT ..." while it waits,
  // its thread and statement, then "------- TRX HAS BEEN WAITING ... TO BE GRANTED:" and the lock
  for (const block of (monitor[0]?.Status ?? '').split('\n---TRANSACTION ').slice(1)) {
    const trxId = /^(\d+),/.exec(block)?.[1];
    const lock = /\n------- TRX HAS BEEN WAITING [^\n]*\n([^\n]*)/.exec(block)?.[1];
    if (trxId === undefined || lock === undefined || !/\nLOCK WAIT /.test(block)) continue;
    const table = /table `([^`]*)`\.`([^`]*)`/.exec(lock);
    if (!table || table[1] !== database) continue;
    // the statement, between its thread's line and the wait, may run over several lines
    const query = /thread id \d+[^\n]*\n([\s\S]*?)\n------- TRX HAS BEEN WAITING/.exec(block)?.[1]?.replace(/\s+/g, ' ') ?? 'no statement';
    const index = / index (\S+) /.exec(lock)?.[1] ?? '';
    const mode = /lock[_ ]mode (.*?) waiting/.exec(lock)?.[1] ?? '';
    waits.push({ trxId, described: `\`${table[2]}\` ${index} ${mode}, asked by ${query}` });
  }
  return waits;
}

/** The ids of the transactions waiting for a row lock of this database now (lockWaits). Poll it every 200 ms or so. */
export async function rowLockWaits(db: OrderDb): Promise<string[]> {
  return (await lockWaits(db)).map((wait) => wait.trxId);
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
 * Whether `write`, sent while another transaction of the test holds its locks, went through or
 * waits for a row lock of that transaction (InnoDB's lock waits of this database); held up, the
 * answer names the lock and the statement waiting for it, so a test expecting 'written' says what
 * waited. A write held up goes through once the holder commits: its failure then is left unheard,
 * so the test file leaves nothing waiting behind. The lock-wait poll ends with the answer: one
 * left running would query the database after the test file dropped it.
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
    return `held up on ${(await lockWaits(db)).map((wait) => wait.described).join('; ') || 'a lock no longer waited for'}`;
  }
  await poll;
  return 'written';
}

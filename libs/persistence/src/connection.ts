import { urlWithoutPassword } from '@orders/config';
import { Kysely, Migrator, MysqlDialect, type MigrationResultSet, type MysqlPool, type MysqlPoolConnection, type MysqlQueryResult } from 'kysely';
import { createPool, type Pool, type PoolConnection, type PoolOptions } from 'mysql2';
import { createConnection } from 'mysql2/promise';
import { ensureBinaryCollation, refuseCaseInsensitiveTables } from './database-collation.js';
import { migrations } from './migrations/index.js';
import { NoConnectionInTime, StatementTooSlow, isDatabaseUnavailable, isNoSuchThread, isStatementTimeout } from './mysql-errors.js';
import type { Database } from './schema.js';

export type OrderDb = Kysely<Database>;

function poolOptions(mysqlUrl: string): PoolOptions & { database: string } {
  const url = new URL(mysqlUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]{1,64}$/.test(database)) {
    throw new Error(`MYSQL_URL must name a database of letters, digits and '_', got '${database}'`);
  }
  // TLS as the URL asks (loadConfig checked it): true, with the system's certificate authorities
  const ssl = url.searchParams.get('ssl');
  const tls = ssl === null ? undefined : (JSON.parse(ssl) as true | Record<string, unknown>);
  return {
    ...(tls === undefined ? {} : { ssl: tls === true ? {} : tls }),
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    database,
    // DATETIME columns hold UTC; without this mysql2 would read them in the process's zone
    timezone: 'Z',
    supportBigNumbers: true,
    // amounts are bigint columns; cents fit well inside 2^53
    bigNumberStrings: false,
    decimalNumbers: true,
    // selectTogether sends several SELECTs as one query. Every statement is built by Kysely with
    // its values as parameters (escaped by mysql2), none spliced into the text: a value cannot
    // end a statement and start another
    multipleStatements: true,
  };
}

/**
 * What a process or command that could not start on MySQL at `mysqlUrl` says, for an operator
 * to act on: what to fix, the user, its grants, the database or the server itself.
 */
export function mysqlStartFailure(mysqlUrl: string, error: unknown): Error {
  const where = urlWithoutPassword(mysqlUrl);
  const { code, message } = error as { code?: string; message: string };
  return new Error(whatToFix(where, code, message), { cause: error });
}

function whatToFix(where: string, code: string | undefined, message: string): string {
  switch (code) {
    case 'ER_ACCESS_DENIED_ERROR':
      return `MySQL at ${where} refused the user (${message}). Check the user and password in MYSQL_URL.`;
    case 'ER_DBACCESS_DENIED_ERROR':
    case 'ER_TABLEACCESS_DENIED_ERROR':
    case 'ER_SPECIFIC_ACCESS_DENIED_ERROR':
      return `MySQL at ${where} does not let the user do this (${message}). Grant the user the database's privileges, or set MYSQL_URL.`;
    case 'ER_BAD_DB_ERROR':
      return `MySQL at ${where} has no such database (${message}). npm run migrate creates it; or set MYSQL_URL.`;
    default:
      return `MySQL is not reachable at ${where} (${message}). Start MariaDB/MySQL or set MYSQL_URL.`;
  }
}

/** How long a start waits for MySQL to connect and answer: one that takes connections and answers nothing must not hold it, silent, for ever. */
const ANSWER_AT_START_MS = 10_000;

/**
 * Creates the database named in the URL if it is missing (npm start on a fresh machine). One that
 * exists keeps its collation, whatever it is: migrateToLatest makes it binary or refuses it.
 */
export async function ensureDatabase(mysqlUrl: string): Promise<void> {
  const { database, ...options } = poolOptions(mysqlUrl);
  const connection = await createConnection({ ...options, connectTimeout: ANSWER_AT_START_MS });
  try {
    await connection.query({ sql: `CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`, timeout: ANSWER_AT_START_MS });
  } finally {
    connection.destroy();
  }
}

/**
 * Ends a statement's server thread (its statement, its transaction and the locks it holds) from
 * a connection of its own: a client that gives up on a statement leaves it running on the server.
 * A thread already gone was ended by the server itself, which saw its connection close. Rejects
 * when the server cannot be reached within the deadline either.
 */
async function endOnServer(options: PoolOptions, threadId: number, timeoutMs: number): Promise<void> {
  const connection = await createConnection({ ...options, connectTimeout: timeoutMs });
  try {
    await connection.query({ sql: `KILL ${Number(threadId)}`, timeout: timeoutMs });
  } catch (error) {
    if (!isNoSuchThread(error)) throw error;
  } finally {
    connection.destroy();
  }
}

/**
 * The pool as kysely's MysqlDialect uses it, every statement with a deadline. Past it mysql2
 * answers with an error but keeps the connection, still waiting for a reply that a frozen
 * network or a failed-over server never sends, so every statement queued on it would wait as
 * well: the connection is destroyed, and the pool opens a fresh one for the next caller. The
 * statement's server thread is ended too; if that works the server was there and the
 * statement merely slow (StatementTooSlow, a failure like any other), else MySQL is away.
 */
function withStatementDeadline(pool: Pool, options: PoolOptions, timeoutMs: number, deadline: string): MysqlPool {
  const wrapped = new WeakMap<PoolConnection, MysqlPoolConnection>();
  const wrap = (connection: PoolConnection): MysqlPoolConnection => {
    // what a statement kysely still sends on the destroyed connection (its transaction's
    // rollback) fails with, so the log names the timeout rather than a closed connection
    let timedOut: unknown;
    return {
      query: ((sql: string, values: unknown[], callback?: (error: unknown, result: MysqlQueryResult) => void) => {
        const statement = { sql, values, timeout: timeoutMs };
        // kysely's streamQuery reads the rows as a stream of the query it gets back
        if (!callback) return connection.query(statement);
        if (timedOut) return callback(timedOut, []);
        let endedHere = false;
        connection.query(statement, (error, result) => {
          // the connection destroyed below, or its thread ended on the server, reports the statement
          // once more (connection lost): kysely would take that for the answer, and send its
          // rollback on the closed connection before the timeout below is known
          if (endedHere) return;
          if (!isStatementTimeout(error)) return callback(error, result as MysqlQueryResult);
          endedHere = true;
          const threadId = connection.threadId;
          connection.destroy();
          endOnServer(options, threadId, timeoutMs).then(
            () => callback((timedOut = new StatementTooSlow(timeoutMs, sql, deadline)), []),
            () => callback((timedOut = error), []),
          );
        });
      }) as MysqlPoolConnection['query'],
      release: () => connection.release(),
    };
  };
  return {
    getConnection(callback) {
      // mysql2's wait for a free connection has no deadline of its own: while MySQL stalls, every
      // caller would queue behind the statements ahead of it, each waiting out its own deadline
      // (its place in the queue × the deadline). Past the deadline the caller fails as MySQL away.
      let gaveUp = false;
      const timer = setTimeout(() => {
        gaveUp = true;
        callback(new NoConnectionInTime(timeoutMs, deadline), undefined as never);
      }, timeoutMs);
      pool.getConnection((error, connection) => {
        // the pool cannot take a caller out of its queue: what it hands over late goes back at once, for the next
        if (gaveUp) return error ? undefined : connection.release();
        clearTimeout(timer);
        if (error) return callback(error, connection);
        // one wrapper per connection: kysely keys its own per-connection state by it
        let deadlined = wrapped.get(connection);
        if (!deadlined) wrapped.set(connection, (deadlined = wrap(connection)));
        callback(null, deadlined);
      });
    },
    end: (callback) => pool.end(callback),
  };
}

/**
 * A pool of `poolSize` connections. With `statementTimeoutMs` (the long-running processes:
 * MYSQL_QUERY_TIMEOUT_MS; the stock check's ledger sums: RECONCILE_QUERY_TIMEOUT_MS, the
 * `deadline` its errors name) a statement, or the opening of a connection, that gets no answer
 * within it fails as MySQL unavailable instead of waiting until TCP gives up (~15 min); so does a
 * caller that gets no connection of the pool within it (NoConnectionInTime). The pool's queue has
 * no limit (queueLimit): the deadline bounds each wait, and a limit would refuse a busy worker's
 * work (WORKER_CONCURRENCY jobs per queue on MYSQL_POOL_SIZE connections) while MySQL answers.
 */
export function createDb(mysqlUrl: string, poolSize = 16, statementTimeoutMs?: number, deadline = 'MYSQL_QUERY_TIMEOUT_MS'): { db: OrderDb; pool: Pool } {
  const pool = createPool({
    ...poolOptions(mysqlUrl),
    connectionLimit: poolSize,
    waitForConnections: true,
    enableKeepAlive: true,
    ...(statementTimeoutMs === undefined ? {} : { connectTimeout: statementTimeoutMs }),
  });
  // DATETIMEs hold UTC (timezone above); NOW(3) and the columns' CURRENT_TIMESTAMP(3) defaults are in the
  // session's zone, the server's own unless set: a MySQL run in Tokyo's zone wrote them nine hours ahead.
  // Set before the connection's first statement (the pool runs a connection's statements in order)
  pool.on('connection', (connection) => connection.query(`SET time_zone = '+00:00'`, () => undefined));
  const db = new Kysely<Database>({ dialect: new MysqlDialect({ pool: statementTimeoutMs === undefined ? pool : withStatementDeadline(pool, poolOptions(mysqlUrl), statementTimeoutMs, deadline) }) });
  return { db, pool };
}

/**
 * How long a migration's DDL waits for its table's metadata lock (a long transaction holds it):
 * while it waits, every statement on that table waits behind it, the live system's too. Past
 * it the migration fails, named, and is run again by the next start.
 */
const MIGRATION_LOCK_WAIT_SECONDS = 60;
/** How often a migration still under way says so: a start waiting on MySQL is never silent. */
const STILL_MIGRATING_EVERY_MS = 30_000;

/**
 * Creates the database if it is missing and applies every pending migration, on a connection
 * of its own without the processes' statement deadline: a migration of a large table may
 * rightly take minutes. `stillMigrating` is told every 30 s while they run (or wait: for
 * another process's migrations, a lock, a MySQL that does not answer).
 */
export async function migrateDatabase(mysqlUrl: string, { stillMigrating }: { stillMigrating?: (message: string) => void } = {}): Promise<MigrationResultSet> {
  try {
    await ensureDatabase(mysqlUrl);
  } catch (error) {
    throw mysqlStartFailure(mysqlUrl, error);
  }
  const { db, pool } = createDb(mysqlUrl, 1);
  // a session variable on each connection, before its first statement (the pool runs them in order)
  pool.on('connection', (connection) => connection.query(`SET SESSION lock_wait_timeout = ${MIGRATION_LOCK_WAIT_SECONDS}`, () => undefined));
  const startedAt = Date.now();
  const heartbeat = setInterval(() => {
    const seconds = Math.round((Date.now() - startedAt) / 1000);
    stillMigrating?.(`still migrating MySQL at ${urlWithoutPassword(mysqlUrl)} after ${seconds} s: a migration is running, or waiting for another process's migrations, a table's lock or MySQL's answer`);
  }, STILL_MIGRATING_EVERY_MS).unref();
  try {
    return await migrateToLatest(db);
  } finally {
    clearInterval(heartbeat);
    await db.destroy();
  }
}

/** How often a process started before its migrations looks again, and says it waits, once in how many looks. */
const SCHEMA_LOOKED_AT_EVERY_MS = 2_000;
const SCHEMA_WAIT_SAID_EVERY = 15;

/**
 * Waits until MySQL holds every migration this build knows: a process started without migrating
 * (MIGRATE_ON_START=false) before the deploy's migration ran would run its jobs against tables
 * or columns not there yet, each failure spending an attempt, accepted orders ending in the dead
 * letters. It says what it waits for every half minute; a database not created yet (the migrate
 * step creates it) is waited for alike. A MySQL away (not answering in time, out of connections,
 * taking no writes) is not waited for: the process starts, and waits out the outage as it would
 * have (the intake takes checkouts without MySQL, the workers' jobs wait for it without spending
 * attempts). Any other answer (access denied) stops the start with it, as do tables whose text
 * compares without case (refuseCaseInsensitiveTables), which the migrate step refuses too.
 */
export async function awaitSchema(mysqlUrl: string, { waiting }: { waiting: (pending: string[]) => void }): Promise<void> {
  const { db } = createDb(mysqlUrl, 1, ANSWER_AT_START_MS);
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  try {
    for (let look = 0; ; look++) {
      const pending = await migrator.getMigrations().then(
        (known) => known.filter((migration) => migration.executedAt === undefined).map((migration) => migration.name),
        (error: unknown) => {
          if (isDatabaseUnavailable(error) || error instanceof StatementTooSlow) return [];
          if ((error as { code?: unknown }).code === 'ER_BAD_DB_ERROR') return Object.keys(migrations);
          throw error;
        },
      );
      if (pending.length === 0) {
        // a migrate step that refused the database's collation may have left no migration pending
        // (tables built by an earlier build): a process does not serve ids compared without case.
        // A MySQL away is not waited for, as above
        await refuseCaseInsensitiveTables(db).catch((error: unknown) => {
          if (!isDatabaseUnavailable(error) && !(error instanceof StatementTooSlow)) throw error;
        });
        return;
      }
      if (look % SCHEMA_WAIT_SAID_EVERY === 0) waiting(pending);
      await new Promise((resolve) => setTimeout(resolve, SCHEMA_LOOKED_AT_EVERY_MS));
    }
  } finally {
    await db.destroy();
  }
}

/**
 * Applies every pending migration; throws with the failing migration's name. First the database's
 * text is made to compare as bytes (a new database) or refused (tables that compare without case):
 * ids are case-sensitive, and MySQL compares them by their columns' collation (a buyer's orders, a merchant's).
 */
export async function migrateToLatest(db: OrderDb): Promise<MigrationResultSet> {
  await ensureBinaryCollation(db);
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${String(result.error)}`, { cause: result.error });
  }
  return result;
}

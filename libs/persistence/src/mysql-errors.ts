/** The error's code as mysql2 names it (`ER_…`, or the socket's `E…`), if it has one. */
function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

/** mysql2 reports a unique-key clash as ER_DUP_ENTRY (errno 1062). */
export function isDuplicateKey(error: unknown): boolean {
  return codeOf(error) === 'ER_DUP_ENTRY';
}

/** KILL of a server thread that has ended already (errno 1094). */
export function isNoSuchThread(error: unknown): boolean {
  return codeOf(error) === 'ER_NO_SUCH_THREAD';
}

/** mysql2's answer to a statement that outlived its `timeout` (createDb's statement deadline). */
export function isStatementTimeout(error: unknown): boolean {
  return codeOf(error) === 'PROTOCOL_SEQUENCE_TIMEOUT';
}

/** A statement's first keyword (`select`, `update`, …): what a log may name of it without its SQL. */
function statementKindOf(sql: string): string {
  return /^\W*(\w+)/.exec(sql)?.[1]?.toLowerCase() ?? 'unknown';
}

/**
 * A statement that outlived its deadline (MYSQL_QUERY_TIMEOUT_MS, or the setting `deadline`
 * names) on a server that answered: it was ended there (with its transaction). Not MySQL
 * being away: a job fails on it and spends an attempt, rather than asking for the same slow
 * statement again every backoff. Its message names the statement's kind, not its SQL, which
 * may carry a buyer's data written into it.
 */
export class StatementTooSlow extends Error {
  readonly code = 'STATEMENT_TOO_SLOW';
  /** The statement's first keyword (`select`, `update`, …). */
  readonly statementKind: string;
  constructor(
    readonly timeoutMs: number,
    sql: string,
    deadline = 'MYSQL_QUERY_TIMEOUT_MS',
  ) {
    const kind = statementKindOf(sql);
    super(`MySQL ${kind} statement ended after ${deadline} (${timeoutMs} ms)`);
    this.name = 'StatementTooSlow';
    this.statementKind = kind;
  }
}

/**
 * No connection of the pool came free within the statement deadline (createDb): all of them held
 * by statements MySQL does not answer, or by the callers queued ahead. MySQL away, as a connection
 * that cannot be opened in that time (its code is UNREACHABLE's): the work waits for it, and no
 * statement of it reached MySQL, so none of its rows is what failed.
 */
export class NoConnectionInTime extends Error {
  readonly code = 'POOL_WAIT_TIMEOUT';
  constructor(
    readonly timeoutMs: number,
    deadline = 'MYSQL_QUERY_TIMEOUT_MS',
  ) {
    super(`no MySQL connection of the pool came free within ${deadline} (${timeoutMs} ms)`);
    this.name = 'NoConnectionInTime';
  }
}

/** As deep as a log follows an error's causes to the MySQL error among them (isDatabaseUnavailable's depth). */
const CAUSES_FOLLOWED = 5;

/**
 * A MySQL message up to its first quote: the server quotes the values it names ("Duplicate
 * entry '<a phone number>' for key …", "… near '<the statement>'"), unescaped, and names of
 * keys alike, so nothing after it can be told apart from a buyer's data.
 */
function unquoted(message: string): string {
  const quote = message.indexOf("'");
  return quote < 0 ? message : `${message.slice(0, quote)}…`;
}

/**
 * An error as a log or a failed job may hold it. mysql2 puts on its errors the statement with
 * its values written in (`sql`: a buyer's address, phone number, name) and the server's message
 * (`sqlMessage`, the `message` too, and the stack's first line), which quotes values. A MySQL
 * error, and an error caused by one, is copied without them: its class, code, errno, fatal,
 * sqlState and the statement's kind (`statementKind`) stay, and the message up to its first
 * quote. Any other error is returned as it is.
 *
 * `codeInMessage` puts a MySQL error's code before its message ("ER_DUP_ENTRY: Duplicate entry
 * …"), for a holder that keeps the message and the stack alone: BullMQ stores a failed job's
 * message (its failedReason) and stack, not its code.
 */
export function withoutStatementValues<E>(error: E, { codeInMessage = false } = {}): E {
  return copiedWithoutValues(error, 0, codeInMessage);
}

/** A log's `err` serializer (`serialize`: pino's) that writes an error withoutStatementValues: the api's log and the worker's. */
export function serializedWithoutStatementValues<T>(serialize: (error: Error) => T): (error: Error) => T {
  return (error) => serialize(withoutStatementValues(error));
}

function copiedWithoutValues<E>(error: E, depth: number, codeInMessage: boolean): E {
  if (typeof error !== 'object' || error === null || depth > CAUSES_FOLLOWED) return error;
  const { sql, sqlMessage, cause, message, stack, name } = error as Partial<Error> & { sql?: unknown; sqlMessage?: unknown };
  const safeCause = copiedWithoutValues(cause, depth + 1, codeInMessage);
  const fromMysql = typeof sql === 'string' || typeof sqlMessage === 'string';
  if (!fromMysql && safeCause === cause) return error;
  const copy = Object.create(Object.getPrototypeOf(error), Object.getOwnPropertyDescriptors(error)) as Record<string, unknown>;
  // the stack as a plain value: V8's own accessor may not read the copy
  Object.defineProperty(copy, 'stack', { value: stack, writable: true, configurable: true });
  if (safeCause !== cause) copy.cause = safeCause;
  if (!fromMysql) return copy as E;
  delete copy.sql;
  delete copy.sqlMessage;
  if (typeof sql === 'string') copy.statementKind = statementKindOf(sql);
  if (typeof message === 'string') {
    const code = codeOf(error);
    const kept = codeInMessage && typeof code === 'string' ? `${code}: ${unquoted(message)}` : unquoted(message);
    const head = `${name ?? 'Error'}: ${message}`;
    // the stack's frames stay, behind a first line without the message's values
    const frames = typeof stack === 'string' && stack.startsWith(head) ? stack.slice(head.length) : '';
    Object.defineProperty(copy, 'message', { value: kept, writable: true, configurable: true });
    Object.defineProperty(copy, 'stack', { value: `${name ?? 'Error'}: ${kept}${frames}`, writable: true, configurable: true });
  }
  return copy as E;
}

/**
 * MySQL refused a transaction for now, not for good: InnoDB rolled it back to break a deadlock
 * (errno 1213), or one of its statements waited for a row lock past innodb_lock_wait_timeout
 * (errno 1205: by default only that statement is undone, and the transaction stays open with
 * its locks until its caller ends it). Either way the whole transaction may be run again once
 * it has ended, as InnoDB advises; a caller that gives up answers "busy, retry shortly".
 */
export function isTransientRefusal(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}

/** How often retryTransaction runs a transaction in all, unless told otherwise. */
const TRANSACTION_ATTEMPTS = 5;

export interface RetryOptions {
  /** runs in all, the first included */
  attempts?: number;
  /** another error after which the transaction is run again (a concurrent change it lost to: a stale version, a duplicate key) */
  alsoAfter?: (error: unknown) => boolean | Promise<boolean>;
}

/**
 * Runs `transaction` again after MySQL refused it transiently (isTransientRefusal) or after an
 * error `alsoAfter` names, at most `attempts` times in all; then its last error is thrown.
 * `transaction` begins and ends every transaction it runs (kysely's transaction().execute
 * rolls back on the way out), so each attempt is a whole transaction from its first read, never
 * the statement a lock wait undid run again inside the transaction it left open.
 */
export async function retryTransaction<T>(transaction: (attempt: number) => Promise<T>, { attempts = TRANSACTION_ATTEMPTS, alsoAfter }: RetryOptions = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction(attempt);
    } catch (error) {
      if (attempt < attempts && (isTransientRefusal(error) || (await alsoAfter?.(error)))) continue;
      throw error;
    }
  }
}

/**
 * What mysql2 reports when it cannot reach the server, loses the connection mid-query, or
 * gets no answer within the statement deadline (a frozen network, a failover: createDb); and
 * no connection of the pool free within it (NoConnectionInTime).
 */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'POOL_WAIT_TIMEOUT']);

/**
 * What a server answers that takes no writes for now, whatever the statement: read-only (a failover's
 * old primary, which still takes connections), its disk or a table full, or this user's connections
 * used up. Spending a job's attempts on it would send accepted orders to the dead letters.
 */
const REFUSING_WRITES_FOR_NOW = new Set([
  'ER_OPTION_PREVENTS_STATEMENT',
  'ER_READ_ONLY_MODE',
  'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION',
  'ER_RECORD_FILE_FULL',
  'ER_DISK_FULL',
  'ER_TOO_MANY_USER_CONNECTIONS',
  'ER_USER_LIMIT_REACHED',
]);

/**
 * True when MySQL is away (down, unreachable, restarting, out of connections) or takes no writes
 * for now (read-only, full) rather than refusing this statement: the work is sound and should
 * wait for the database, not fail.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  return isConnectionLost(error) || someCause(error, (code) => REFUSING_WRITES_FOR_NOW.has(code));
}

/**
 * What a server answers of a row it will not take, whatever the other rows of the statement: a value
 * too long, out of range or malformed for its column, a NULL where none goes, a constraint it breaks.
 */
const ROW_REFUSALS = new Set([
  'ER_DATA_TOO_LONG',
  'ER_WARN_DATA_TRUNCATED',
  'ER_DATA_OUT_OF_RANGE',
  'ER_WARN_DATA_OUT_OF_RANGE',
  'ER_TRUNCATED_WRONG_VALUE',
  'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD',
  'ER_INVALID_CHARACTER_STRING',
  'ER_INVALID_JSON_TEXT',
  'ER_BAD_NULL_ERROR',
  'ER_WARN_NULL_TO_NOTNULL',
  'ER_NO_DEFAULT_FOR_FIELD',
  'ER_NO_REFERENCED_ROW',
  'ER_NO_REFERENCED_ROW_2',
  'ER_CHECK_CONSTRAINT_VIOLATED',
  // one the writer's own retries did not settle (a key another row of this batch, or an earlier one, holds)
  'ER_DUP_ENTRY',
]);

/** True when the server refused a row of the statement for what it holds (ROW_REFUSALS): the statement's other rows may be taken without it. */
export function isRowRefused(error: unknown): boolean {
  return someCause(error, (code) => ROW_REFUSALS.has(code));
}

/** True when the server itself answered with an error (a MySQL error with its SQLSTATE), rather than our code or the network failing. */
export function isServerError(error: unknown): boolean {
  return someCause(error, () => false, (cause) => typeof (cause as { sqlState?: unknown }).sqlState === 'string');
}

/**
 * True when no answer came: MySQL unreachable, or the connection closed under the statement. A
 * server also closes it on a statement past its `max_allowed_packet`, which then reads the same.
 */
export function isConnectionLost(error: unknown): boolean {
  return someCause(error, (code) => UNREACHABLE.has(code), (cause) => (cause as { fatal?: unknown }).fatal === true);
}

/** Whether the error, or one of its causes, has a code `matches` takes, or is one `also` takes. */
function someCause(error: unknown, matches: (code: string) => boolean, also: (cause: object) => boolean = () => false): boolean {
  for (let cause = error, depth = 0; typeof cause === 'object' && cause !== null && depth < 5; depth++) {
    const code = codeOf(cause);
    if ((typeof code === 'string' && matches(code)) || also(cause)) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}

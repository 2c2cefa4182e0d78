/** The error's code as mysql2 names it (`ER_…`, or the socket's `E…`), if it has one. */
function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

/** mysql2 reports a unique-key clash as ER_DUP_ENTRY (errno 1062). */
export function isDuplicateKey(error: unknown): boolean {
  return codeOf(error) === 'ER_DUP_ENTRY';
}

/** mysql2's answer to a statement that outlived its `timeout` (createDb's statement deadline). */
export function isStatementTimeout(error: unknown): boolean {
  return codeOf(error) === 'PROTOCOL_SEQUENCE_TIMEOUT';
}

/**
 * A statement that outlived MYSQL_QUERY_TIMEOUT_MS on a server that answered: it was ended
 * there (with its transaction). Not MySQL being away: a job fails on it and spends an attempt,
 * rather than asking for the same slow statement again every backoff.
 */
export class StatementTooSlow extends Error {
  readonly code = 'STATEMENT_TOO_SLOW';
  /** The statement's first keyword (`select`, `update`, …): what a log may name of it without its SQL. */
  readonly statementKind: string;
  constructor(
    readonly timeoutMs: number,
    sql: string,
  ) {
    super(`MySQL statement ended after MYSQL_QUERY_TIMEOUT_MS (${timeoutMs} ms): ${sql.slice(0, 120)}`);
    this.name = 'StatementTooSlow';
    this.statementKind = /^\W*(\w+)/.exec(sql)?.[1]?.toLowerCase() ?? 'unknown';
  }
}

/** InnoDB chose this transaction to roll back to break a deadlock (errno 1213). */
export function isDeadlock(error: unknown): boolean {
  return codeOf(error) === 'ER_LOCK_DEADLOCK';
}

/**
 * What mysql2 reports when it cannot reach the server, loses the connection mid-query, or
 * gets no answer within the statement deadline (a frozen network, a failover: createDb).
 */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR']);

/**
 * True when MySQL is away (down, unreachable, restarting, out of connections) rather than
 * refusing this statement: the work is sound and should wait for the database, not fail.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let cause = error, depth = 0; typeof cause === 'object' && cause !== null && depth < 5; depth++) {
    const code = codeOf(cause);
    if ((typeof code === 'string' && UNREACHABLE.has(code)) || (cause as { fatal?: unknown }).fatal === true) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}

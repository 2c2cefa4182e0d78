import { sql, type Insertable, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/**
 * The most a statement's values may take, counted at 3 bytes per UTF-16 unit (UTF-8's most
 * for one) and a few per value: a statement past the server's `max_allowed_packet` (4 MiB by
 * default on MySQL 5.7, 16 on MariaDB, 64 on MySQL 8) is cut off with the connection, which reads
 * as MySQL away, and the batch, sent again whole, never got in. A drain's batch of hundreds of
 * orders is one statement per table well within it; a batch of large carts is several.
 */
const STATEMENT_VALUE_BUDGET_BYTES = 2 * 1024 * 1024;

/**
 * Multi-row INSERTs whose rows travel as ONE parameter, a list of lists that mysql2
 * expands to `(…), (…)` with its own escaping (and its `timezone: 'Z'` for dates).
 * Kysely's `insertInto().values()` builds and compiles a node per value: for the drain's
 * batches of hundreds of orders that cost more CPU than MySQL spent on the statement
 * (bench/README.md, item 12). The rows keep their Kysely types; every row must carry the
 * same fields (they are built by one mapper), the first row's fields name the columns.
 * One statement per STATEMENT_VALUE_BUDGET_BYTES of values, in the caller's transaction.
 */
export async function insertRows<T extends keyof Database & string>(
  db: Kysely<Database>,
  table: T,
  rows: ReadonlyArray<Insertable<Database[T]>>,
): Promise<void> {
  const first = rows[0];
  if (first === undefined) return;
  const columns = Object.keys(first) as Array<keyof typeof first>;
  const datetimes = new DatetimeLiterals();
  const into = sql`insert into ${sql.table(table)} (${sql.join(columns.map((column) => sql.ref(String(column))))}) values `;
  let values: unknown[][] = [];
  let bytes = 0;
  for (const row of rows) {
    const value = columns.map((column) => datetimes.of(row[column]));
    const size = sizeOf(value);
    if (values.length > 0 && bytes + size > STATEMENT_VALUE_BUDGET_BYTES) {
      await sql`${into}${values}`.execute(db);
      [values, bytes] = [[], 0];
    }
    values.push(value);
    bytes += size;
  }
  await sql`${into}${values}`.execute(db);
}

/** At most what a row's values take in the statement: a text 3 bytes per UTF-16 unit and its quotes, anything else its digits. */
function sizeOf(row: readonly unknown[]): number {
  let bytes = 4;
  for (const value of row) bytes += typeof value === 'string' ? 3 * value.length + 4 : 24;
  return bytes;
}

/**
 * A batch's rows share their dates (the transaction's `now` in every row): each is written
 * once as the DATETIME text mysql2 would write for it (UTC, `timezone: 'Z'`), not once per
 * row and column. Anything else passes through to mysql2's own escaping.
 */
class DatetimeLiterals {
  private readonly written = new Map<number, string>();

  of(value: unknown): unknown {
    if (!(value instanceof Date)) return value;
    const time = value.getTime();
    let text = this.written.get(time);
    if (text === undefined) {
      // an invalid date, or a year outside 0000–9999, is left to mysql2
      if (Number.isNaN(time)) return value;
      const iso = value.toISOString();
      if (iso.length !== 24) return value;
      text = `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
      this.written.set(time, text);
    }
    return text;
  }
}

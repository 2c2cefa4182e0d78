import { sql, type Insertable, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/**
 * One multi-row INSERT whose rows travel as ONE parameter, a list of lists that mysql2
 * expands to `(…), (…)` with its own escaping (and its `timezone: 'Z'` for dates).
 * Kysely's `insertInto().values()` builds and compiles a node per value: for the drain's
 * batches of hundreds of orders that cost more CPU than MySQL spent on the statement
 * (bench/README.md, item 12). The rows keep their Kysely types; every row must carry the
 * same fields (they are built by one mapper), the first row's fields name the columns.
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
  const values = rows.map((row) => columns.map((column) => datetimes.of(row[column])));
  await sql`insert into ${sql.table(table)} (${sql.join(columns.map((column) => sql.ref(String(column))))}) values ${values}`.execute(db);
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

import { sql, type Expression } from 'kysely';

/** The instant `ms` before now by MySQL's clock (UTC, as the DATETIME columns hold it): what a deadline is compared with, whichever process asks. */
export function overdueSince(ms: number): Expression<Date> {
  return sql<Date>`UTC_TIMESTAMP(3) - INTERVAL ${ms * 1000} MICROSECOND`;
}

/** The years MySQL's DATETIME holds (1000-01-01 to 9999-12-31), where every time the shop keeps is stored (in UTC). */
const FIRST_STORABLE_YEAR = 1000;
const LAST_STORABLE_YEAR = 9999;

/**
 * The instant an RFC 3339 time (the schemas' date-time format) names, or null when the shop
 * cannot keep it: a leap second (23:59:60), which Date cannot hold, or a year outside
 * DATETIME's in UTC. An offset moves 9999-12-31T23:59:59-05:00 into year 10000, which MySQL
 * refuses; a year below 1000 is written in fewer than four digits and read back as another
 * (0001 as 2001).
 */
export function storableInstant(time: string): Date | null {
  const at = new Date(time);
  if (Number.isNaN(at.getTime())) return null;
  const year = at.getUTCFullYear();
  return year >= FIRST_STORABLE_YEAR && year <= LAST_STORABLE_YEAR ? at : null;
}

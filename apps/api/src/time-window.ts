import { validationFailed } from './problems.js';

/**
 * A rule's time window from a body's RFC 3339 times, ending after it starts. RFC 3339 (so
 * the schemas' date-time format) allows a leap second, 23:59:60, that Date cannot hold:
 * such a time parses to NaN and would reach MySQL and Redis as one.
 */
export function timeWindow(times: { startsAt: string; endsAt: string }, prefix = ''): { startsAt: Date; endsAt: Date } {
  const startsAt = instant(times.startsAt, `${prefix}startsAt`);
  const endsAt = instant(times.endsAt, `${prefix}endsAt`);
  if (endsAt.getTime() <= startsAt.getTime()) throw validationFailed(`${prefix}endsAt must be after ${prefix}startsAt`);
  return { startsAt, endsAt };
}

function instant(time: string, field: string): Date {
  const at = new Date(time);
  if (Number.isNaN(at.getTime())) throw validationFailed(`${field} ${time} is not a time the shop can hold (a leap second?)`);
  return at;
}

import { storableInstant } from '@orders/domain';
import { validationFailed } from './problems.js';

/** A rule's time window from a body's RFC 3339 times (each an instant()), ending after it starts. */
export function timeWindow(times: { startsAt: string; endsAt: string }, prefix = ''): { startsAt: Date; endsAt: Date } {
  const startsAt = instant(times.startsAt, `${prefix}startsAt`);
  const endsAt = instant(times.endsAt, `${prefix}endsAt`);
  if (endsAt.getTime() <= startsAt.getTime()) throw validationFailed(`${prefix}endsAt must be after ${prefix}startsAt`);
  return { startsAt, endsAt };
}

/**
 * The instant a request's RFC 3339 time names, `field` naming it in the 400 when the shop
 * cannot keep it (storableInstant): the schemas' date-time format allows a leap second and
 * any year, which would reach MySQL as NaN, as a year it refuses (a 500), or as another year.
 */
export function instant(time: string, field: string): Date {
  const at = storableInstant(time);
  if (!at) throw validationFailed(`${field} ${time} is not a time the shop can keep: a leap second (23:59:60), or a year outside 1000–9999 in UTC`);
  return at;
}

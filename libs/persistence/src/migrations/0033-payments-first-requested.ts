import { sql, type Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * When a request for the payment was first sent to the payment system: PAYMENT_CONFIRMATION_GIVE_UP_MS
 * runs from then. A payment opened while the payment system's breaker is open is sent only once it
 * closes (hours later, in an outage), and counted from its opening it would get less than a day of
 * asking. No row is written: a payment sent before this column counts from its opening, as before,
 * so a deploy gives up none sooner, and brings back none given up already (its operator paged) to
 * be asked about again and given up, paged again, a day later. Its last request (requested_at) is
 * no stand-in: each asking again moves it, and a payment asked for until it was given up would get
 * a fresh day. Workers of the previous build, still running through a rolling update, send
 * payments without this column too, which counting them from their opening covers as well.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('payments').addColumn('first_requested_at', sql`datetime(3)`));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('payments').dropColumn('first_requested_at').execute();
}

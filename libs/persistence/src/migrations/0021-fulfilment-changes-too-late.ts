import { sql, type Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * When the warehouse first refused a change of the order's parcel (its address, its units)
 * because the parcel had left: counted and alerted once per parcel, though the job sending a
 * change may run again (the refund job enqueues it anew) and later changes are refused too.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('orders').addColumn('change_refused_at', sql`datetime(3)`));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('orders').dropColumn('change_refused_at').execute();
}

import type { Kysely } from 'kysely';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The version of the latest change of an order's parcel (its address, its units) that the
 * warehouse refused because the parcel had left: each such change is counted and logged once,
 * though the job sending it may run again (the refund job enqueues it anew).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('orders').addColumn('change_too_late_version', 'integer').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('orders').dropColumn('change_too_late_version').execute();
}

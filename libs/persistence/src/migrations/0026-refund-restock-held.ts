import type { Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A refund of units in a parcel the warehouse holds puts them back on sale only once the
 * warehouse has taken them out of it: until then the refund keeps the ledger's reason for the
 * restock here (null: restocked, or nothing to restock). A parcel that left with them keeps it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('refunds').addColumn('restock_held_reason', 'varchar(16)'));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('refunds').dropColumn('restock_held_reason').execute();
}

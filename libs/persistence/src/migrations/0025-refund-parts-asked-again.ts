import type { Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A refund part the payment system could not pay back, asked for again by an admin: the
 * payment system knows a refund by its id for good (the same id answers the same FAILED), so
 * the money is asked for under a new part, which the old one names.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('refund_parts').addColumn('asked_again_as', 'varchar(64)'));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('refund_parts').dropColumn('asked_again_as').execute();
}

import type { Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A refund part the payment system could not pay back, and that the shop paid back another way
 * (a bank transfer, store credit): an admin settles it by hand, naming how (its reference).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('refund_parts').addColumn('settled_reference', 'varchar(128)'));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('refund_parts').dropColumn('settled_reference').execute();
}

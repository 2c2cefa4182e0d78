import { sql, type Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * When the payment system, looked up, last answered that it had not decided the payment yet
 * (PROCESSING): its callback is not lost, it has none to send yet. Null for a payment never found
 * so, and for those looked up before this column: the next lookup marks those still undecided.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('payments').addColumn('undecided_at', sql`datetime(3)`));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('payments').dropColumn('undecided_at').execute();
}

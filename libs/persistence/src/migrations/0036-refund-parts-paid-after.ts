import { sql, type Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * When the payment system reported paid a refund part that owed nothing any more (SETTLED_BY_HAND:
 * the shop paid the buyer another way; ASKED_AGAIN: asked for again under another part): the buyer
 * was paid back twice. Recorded once, so that the callback sent again is not counted again.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('refund_parts').addColumn('paid_after_owed_elsewhere_at', sql`datetime(3)`));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('refund_parts').dropColumn('paid_after_owed_elsewhere_at').execute();
}

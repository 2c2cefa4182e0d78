import { sql, type Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * When a refund part was first sent to the payment system: REFUND_CONFIRMATION_GIVE_UP_MS runs
 * from then. A part is drawn when its refund falls due, and may be sent much later (its units in a
 * parcel the warehouse holds, the payment system's refunds away). Null for a part not sent yet,
 * and for one sent before this column: those count from their drawing, as before.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('refund_parts').addColumn('sent_at', sql`datetime(3)`));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('refund_parts').dropColumn('sent_at').execute();
}

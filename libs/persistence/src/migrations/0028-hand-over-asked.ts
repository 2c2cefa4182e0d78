import { sql, type Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * When the warehouse was asked to take a paid order whose hand-over is not recorded yet: from
 * then on it may hold the parcel (an answer lost to a timeout, or still on its way), so a refund
 * of the order waits for it as one of a parcel it holds does.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('orders').addColumn('handover_asked_at', sql`datetime(3)`));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('orders').dropColumn('handover_asked_at').execute();
}

import type { Kysely } from 'kysely';
import { createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The overdue sweep reads the refund parts sent and long unconfirmed (their callback lost) at
 * every sweep: by their status and age, not a scan of every part ever paid back.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await createIndexOnce(db, db.schema.createIndex('refund_parts_unconfirmed').on('refund_parts').columns(['status', 'updated_at']));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('refund_parts_unconfirmed').on('refund_parts').execute();
}

import type { Kysely } from 'kysely';
import { createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The overdue sweep looks, every interval, for refunds due (PENDING) and unchanged for a while
 * (their job lost): a range of this index, where no index served it and every refund ever made was read.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await createIndexOnce(db, db.schema.createIndex('refunds_status_updated').on('refunds').columns(['status', 'updated_at']));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('refunds_status_updated').on('refunds').execute();
}

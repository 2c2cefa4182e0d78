import type { Kysely } from 'kysely';
import { createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The backstop sweep of lost timer jobs reads orders waiting in one status since before a
 * time (shipped and never confirmed, delivered and never completed): without this index it
 * would read every order in that status, most of them still inside their time.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await createIndexOnce(db, db.schema.createIndex('orders_status_updated').on('orders').columns(['status', 'updated_at']));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('orders_status_updated').on('orders').execute();
}

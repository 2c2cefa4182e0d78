import type { Kysely } from 'kysely';
import { addColumnsOnce, createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Orders imported from other business order systems keep where they came from: their
 * channel and the id that channel gave them, unique together so an import is idempotent.
 * Both are null for orders taken by this shop's own checkout.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('orders').addColumn('source_channel', 'varchar(64)').addColumn('external_order_id', 'varchar(128)'));
  await createIndexOnce(db, db.schema.createIndex('orders_external_id').on('orders').columns(['source_channel', 'external_order_id']).unique());
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('orders_external_id').on('orders').execute();
  await db.schema.alterTable('orders').dropColumn('source_channel').dropColumn('external_order_id').execute();
}

import type { Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A hot SKU's stock may be split into buckets on different Redis slots so its checkouts
 * spread over the cluster; every SKU created before this is one bucket.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('skus').addColumn('stock_buckets', 'integer', (c) => c.notNull().defaultTo(1)));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('skus').dropColumn('stock_buckets').execute();
}

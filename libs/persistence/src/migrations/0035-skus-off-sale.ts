import { sql, type Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Since when the shop has a SKU off sale (every checkout of it refused); NULL: on sale, as every
 * SKU created before. The stock repair puts it on the SKU's buckets in Redis from here.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('skus').addColumn('off_sale_at', sql`datetime(3)`));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('skus').dropColumn('off_sale_at').execute();
}

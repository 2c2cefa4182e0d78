import { sql, type Kysely } from 'kysely';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A promotion may cover up to 1,000 SKUs (POST /v1/admin/promotions), whose ids of up to 64
 * characters take some 67,000 bytes as the JSON list kept here: past a TEXT column's 65,535, so
 * the largest lists failed (a 500) where the api had accepted them.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('promotions').modifyColumn('sku_ids', sql`mediumtext`).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('promotions').modifyColumn('sku_ids', 'text').execute();
}

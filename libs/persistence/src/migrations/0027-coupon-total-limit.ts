import type { Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A coupon for the first so many orders: at most `total_limit` orders hold a use of it at once
 * (0: no limit, as every coupon created before).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('coupons').addColumn('total_limit', 'integer', (column) => column.notNull().defaultTo(0)));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('coupons').dropColumn('total_limit').execute();
}

import { sql, type Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * How many times a promotion was ended early. Every other change of the pricing rules inserts a
 * row, so a batch that reads as many of them again knows it read the same ones; an end changes a
 * row a batch may have read (its ends_at), so a batch priced before an end committed is priced
 * again, whatever it read (PricingRepository.endPromotion, holdRulesVersion).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('pricing_rules_version').addColumn('promotion_ends', sql`bigint`, (column) => column.notNull().defaultTo(0)));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('pricing_rules_version').dropColumn('promotion_ends').execute();
}

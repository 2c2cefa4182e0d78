import { sql, type Kysely } from 'kysely';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * One row counting the changes of the pricing rules (promotions, member levels, members, shipping
 * fees). A change takes its row lock before it is dated, and a batch of orders is written holding
 * it shared: a change not committed yet when the batch was priced makes the batch priced again
 * (PricingRepository.rulesFor, OrderRepository.persistAcceptedOrders).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('pricing_rules_version')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .execute();
  await sql`INSERT IGNORE INTO pricing_rules_version (id, version) VALUES (1, 0)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('pricing_rules_version').ifExists().execute();
}

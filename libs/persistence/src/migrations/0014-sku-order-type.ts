import type { Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The type of the orders that sell a SKU (standard, presale, virtual): the checkout derives
 * an order's type from its SKUs'. Every SKU created before this sells standard orders.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('skus').addColumn('order_type', 'varchar(16)', (c) => c.notNull().defaultTo('standard')));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('skus').dropColumn('order_type').execute();
}

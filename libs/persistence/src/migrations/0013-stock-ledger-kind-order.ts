import type { Kysely } from 'kysely';
import { createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The stock repair reads one kind of movement (restocks; releases and commits) of the orders
 * accepted since an order id: a range of this index, where the order_id index alone read every
 * kind of those orders' movements.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await createIndexOnce(db, db.schema.createIndex('stock_ledger_kind_order').on('stock_ledger').columns(['kind', 'order_id']));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('stock_ledger_kind_order').on('stock_ledger').execute();
}

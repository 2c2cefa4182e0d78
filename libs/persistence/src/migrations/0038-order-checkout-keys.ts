import { sql, type Kysely } from 'kysely';
import { addColumnsOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The Idempotency-Key an order was accepted under, and the hash of the body it came with. The
 * key's record lived in Redis alone: after Redis lost its data, a buyer resending the checkout
 * whose 202 they never saw was accepted a second order. The stock repair writes the record again
 * from these (StockReconciler.restoreCheckoutKeys). Null for an imported order, and one accepted before.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('orders').addColumn('idempotency_key', sql`varchar(255)`).addColumn('checkout_body_hash', sql`varchar(64)`));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('orders').dropColumn('idempotency_key').dropColumn('checkout_body_hash').execute();
}

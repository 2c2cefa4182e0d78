import type { Kysely } from 'kysely';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * An order's delivery address may be missing: a cart of virtual SKUs alone ships nothing and
 * is checked out without one (NULL). Every order before this has one.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('orders').modifyColumn('address', 'text').execute();
}

/** Fails while an order without an address exists: such an order has no address to give back. */
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('orders').modifyColumn('address', 'text', (c) => c.notNull()).execute();
}

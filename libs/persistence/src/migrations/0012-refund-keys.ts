import { sql, type Kysely } from 'kysely';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The Idempotency-Keys of refund and return requests: one row per order, kind, caller and
 * key, written in the transaction that opens the refunds, so of two requests racing with
 * one key and different bodies the second finds the first's row (or clashes with it on the
 * primary key) instead of opening refunds of its own.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('refund_keys')
    .ifNotExists()
    .addColumn('order_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('caller', 'varchar(80)', (c) => c.notNull())
    .addColumn('idempotency_key', 'varchar(255)', (c) => c.notNull())
    .addColumn('fingerprint', 'char(64)', (c) => c.notNull())
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull())
    .addPrimaryKeyConstraint('refund_keys_pk', ['order_id', 'kind', 'caller', 'idempotency_key'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('refund_keys').execute();
}

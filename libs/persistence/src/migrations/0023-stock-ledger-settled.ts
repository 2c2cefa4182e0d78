import { sql, type Kysely } from 'kysely';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The stock check summed every ledger row at every run, a statement growing with every order
 * ever taken. Movements settled long ago (StockLedgerRepository.foldSettled) are kept summed per SKU
 * in `stock_ledger_settled`, up to the ledger id in `stock_ledger_settled_through`; the rows at
 * or below it whose movement was still open then are listed in `stock_ledger_unsettled`, and read
 * again with the rows above it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('stock_ledger_settled')
    .ifNotExists()
    .addColumn('sku_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('available', 'bigint', (c) => c.notNull())
    .addColumn('sold', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('stock_ledger_settled_through')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('ledger_id', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(sql`CURRENT_TIMESTAMP(3)`))
    .execute();
  await sql`INSERT IGNORE INTO stock_ledger_settled_through (id, ledger_id) VALUES (1, 0)`.execute(db);
  await db.schema
    .createTable('stock_ledger_unsettled')
    .ifNotExists()
    .addColumn('ledger_id', 'bigint', (c) => c.primaryKey())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['stock_ledger_unsettled', 'stock_ledger_settled_through', 'stock_ledger_settled']) await db.schema.dropTable(table).ifExists().execute();
}

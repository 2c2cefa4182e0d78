import { AddColumnNode, sql, type AlterTableColumnAlteringBuilder, type CreateIndexBuilder, type Kysely } from 'kysely';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/*
 * MySQL commits each DDL statement on its own, so a migration that fails after its first
 * steps (its lock wait timed out on a busy table) leaves them behind, and is not recorded as
 * run: the next `up` runs it again from the start. Each step therefore looks whether it is
 * done already (tables are created with IF NOT EXISTS; MySQL has no IF NOT EXISTS for an
 * index or a column).
 */

export async function tableExists(db: Kysely<any>, table: string): Promise<boolean> {
  const { rows } = await sql`
    SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ${table} LIMIT 1`.execute(db);
  return rows.length > 0;
}

export async function indexExists(db: Kysely<any>, table: string, index: string): Promise<boolean> {
  const { rows } = await sql`
    SELECT 1 FROM information_schema.statistics
    WHERE table_schema = DATABASE() AND table_name = ${table} AND index_name = ${index} LIMIT 1`.execute(db);
  return rows.length > 0;
}

async function columnExists(db: Kysely<any>, table: string, column: string): Promise<boolean> {
  const { rows } = await sql`
    SELECT 1 FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = ${table} AND column_name = ${column} LIMIT 1`.execute(db);
  return rows.length > 0;
}

/** Creates the index unless its table has one of that name already. */
export async function createIndexOnce(db: Kysely<any>, index: CreateIndexBuilder<any>): Promise<void> {
  const node = index.toOperationNode();
  const table = node.table?.table.identifier.name;
  if (table === undefined) throw new Error(`index ${node.name.name} names no table`);
  if (!(await indexExists(db, table, node.name.name))) await index.execute();
}

/**
 * Adds the columns unless the table has them already. They are added by one statement, so
 * either all of them are there or none.
 */
export async function addColumnsOnce(db: Kysely<any>, alter: AlterTableColumnAlteringBuilder): Promise<void> {
  const node = alter.toOperationNode();
  const table = node.table.table.identifier.name;
  const columns = (node.columnAlterations ?? []).filter((change) => AddColumnNode.is(change)).map((added) => added.column.column.column.name);
  if (columns.length === 0) throw new Error(`the change of ${table} adds no column`);
  const present = await Promise.all(columns.map((column) => columnExists(db, table, column)));
  if (!present.every(Boolean)) await alter.execute();
}

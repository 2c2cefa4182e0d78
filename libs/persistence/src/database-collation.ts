import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/**
 * Ids are opaque and case-sensitive (tokens' subjects, SKU ids, idempotency keys, coupon codes),
 * and MySQL compares text by its column's collation: under a case-insensitive one (MySQL 8.4's
 * default utf8mb4_0900_ai_ci, MariaDB's utf8mb4_general_ci) buyer U7kQ2 reads the orders of
 * buyer u7Kq2, merchant SHOP those of shop. Every text column must compare as bytes (utf8mb4_bin;
 * MySQL 8.4 may report utf8mb4_0900_bin: any collation ending in _bin).
 */
const isBinary = (collation: string) => collation.endsWith('_bin');

/** Kysely's own bookkeeping: migration names it writes itself, compared with no id of anyone's. */
const MIGRATION_TABLES = ['kysely_migration', 'kysely_migration_lock'];
/** How many columns a refusal names: enough to find them, the statements it gives cover every table. */
const COLUMNS_NAMED = 5;

const TO_BINARY = 'CHARACTER SET utf8mb4 COLLATE utf8mb4_bin';

/** A database, or tables in it, whose text compares without case: the migrations neither build nor run on it. */
export class CaseInsensitiveDatabase extends Error {
  readonly code = 'CASE_INSENSITIVE_DATABASE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CaseInsensitiveDatabase';
  }
}

interface Collations {
  database: string;
  defaultCollation: string;
  /** Tables whose text columns, or whose default for the columns a later migration adds, are not binary. */
  tables: string[];
  /** The first of their text columns that are not binary, `table.column (collation)`, and whether there are more. */
  columns: string[];
  moreColumns: boolean;
}

/**
 * The database's tables but the migrations' bookkeeping: not its views, whose computed text takes
 * the collation of the session that made them (a DBA's reporting view), and which no process reads.
 */
const baseTables = (database: string) =>
  sql`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${database} AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT IN (${sql.join(MIGRATION_TABLES)})`;

async function collationsOf(db: Kysely<Database>): Promise<Collations> {
  const { rows: schema } = await sql<{ database: string; collation: string }>`
    SELECT SCHEMA_NAME AS \`database\`, DEFAULT_COLLATION_NAME AS collation
    FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()`.execute(db);
  const { database, collation: defaultCollation } = schema[0]!;
  // a table's default matters as well: a column a later migration adds to it takes that, not the database's
  const { rows: tables } = await sql<{ table: string }>`
    SELECT TABLE_NAME AS \`table\` FROM information_schema.TABLES
    WHERE TABLE_SCHEMA = ${database} AND TABLE_NAME IN (${baseTables(database)}) AND TABLE_COLLATION NOT LIKE '%\\_bin'
    UNION
    SELECT DISTINCT TABLE_NAME FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = ${database} AND TABLE_NAME IN (${baseTables(database)})
      AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME NOT LIKE '%\\_bin'
    ORDER BY 1`.execute(db);
  const { rows: columns } = await sql<{ table: string; column: string; collation: string }>`
    SELECT TABLE_NAME AS \`table\`, COLUMN_NAME AS \`column\`, COLLATION_NAME AS collation FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = ${database} AND TABLE_NAME IN (${baseTables(database)})
      AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME NOT LIKE '%\\_bin'
    ORDER BY TABLE_NAME, ORDINAL_POSITION LIMIT ${COLUMNS_NAMED + 1}`.execute(db);
  return {
    database,
    defaultCollation,
    tables: tables.map((row) => row.table),
    columns: columns.map((row) => `${row.table}.${row.column} (${row.collation})`),
    moreColumns: columns.length > COLUMNS_NAMED,
  };
}

function tablesRefused({ database, defaultCollation, tables, columns, moreColumns }: Collations): CaseInsensitiveDatabase {
  const named = columns.length > 0 ? `its columns ${columns.slice(0, COLUMNS_NAMED).join(', ')}${moreColumns ? ' and more' : ''}` : `its tables' defaults`;
  const fixDatabase = isBinary(defaultCollation) ? '' : ` and ALTER DATABASE \`${database}\` ${TO_BINARY} (its default, ${defaultCollation}, too)`;
  return new CaseInsensitiveDatabase(
    `MySQL database ${database} compares text without case (${named}): ids that differ in case only (buyers', merchants', SKUs') would be one. ` +
      `With no process running on it, run ${tables.map((table) => `ALTER TABLE \`${database}\`.\`${table}\` CONVERT TO ${TO_BINARY};`).join(' ')}${fixDatabase}, then migrate again.`,
  );
}

/**
 * Refuses a database whose tables (the migrations' bookkeeping aside) hold text that compares
 * without case: built by an earlier start on a database created case-insensitive, or by a DBA's
 * restore. awaitSchema asks it too, so a process started after a refused migrate step does not
 * serve on it.
 */
export async function refuseCaseInsensitiveTables(db: Kysely<Database>): Promise<void> {
  const collations = await collationsOf(db);
  if (collations.tables.length > 0) throw tablesRefused(collations);
}

/**
 * Before the migrations: a database whose text would compare without case is made binary when
 * that changes no existing column (a new one, as a DBA or a cloud console creates it with the
 * server's default collation: CREATE DATABASE IF NOT EXISTS left it so), and refused, naming the
 * statements that fix it, when its tables were built so already.
 */
export async function ensureBinaryCollation(db: Kysely<Database>): Promise<void> {
  const collations = await collationsOf(db);
  if (collations.tables.length > 0) throw tablesRefused(collations);
  if (isBinary(collations.defaultCollation)) return;
  // only the default of the tables the migrations create from now on: every existing column is binary already
  const statement = `ALTER DATABASE \`${collations.database}\` ${TO_BINARY}`;
  await sql.raw(statement).execute(db).catch((error: Error) => {
    throw new CaseInsensitiveDatabase(
      `MySQL database ${collations.database} compares text without case (its collation is ${collations.defaultCollation}), and could not be made binary (${error.message}): ` +
        `ids that differ in case only (buyers', merchants', SKUs') would be one. Run ${statement}, before the first migration, then migrate again.`,
      { cause: error },
    );
  });
}

import { Kysely, Migrator, MysqlDialect, type MigrationResultSet } from 'kysely';
import { createPool, type Pool, type PoolOptions } from 'mysql2';
import { createConnection } from 'mysql2/promise';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';

export type OrderDb = Kysely<Database>;

function poolOptions(mysqlUrl: string): PoolOptions & { database: string } {
  const url = new URL(mysqlUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]{1,64}$/.test(database)) {
    throw new Error(`MYSQL_URL must name a database of letters, digits and '_', got '${database}'`);
  }
  return {
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    database,
    // DATETIME columns hold UTC; without this mysql2 would read them in the process's zone
    timezone: 'Z',
    supportBigNumbers: true,
    // amounts are bigint columns; cents fit well inside 2^53
    bigNumberStrings: false,
    decimalNumbers: true,
  };
}

/** Creates the database named in the URL if it is missing (npm start on a fresh machine). */
export async function ensureDatabase(mysqlUrl: string): Promise<void> {
  const { database, ...options } = poolOptions(mysqlUrl);
  const connection = await createConnection({ ...options, connectTimeout: 5000 });
  try {
    await connection.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await connection.end();
  }
}

export function createDb(mysqlUrl: string, poolSize = 16): { db: OrderDb; pool: Pool } {
  const pool = createPool({ ...poolOptions(mysqlUrl), connectionLimit: poolSize, waitForConnections: true, enableKeepAlive: true });
  const db = new Kysely<Database>({ dialect: new MysqlDialect({ pool }) });
  return { db, pool };
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: OrderDb): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${String(result.error)}`, { cause: result.error });
  }
  return result;
}

import { createDb, ensureDatabase, migrateToLatest, type OrderDb } from '@orders/persistence';
import { TEST_MYSQL_URL } from '@orders/testing';
import { sql } from 'kysely';

/** Four files side by side, each with its own api, workers and pools, at ~55 connections each at their peak. */
const CONNECTIONS_A_RUN_NEEDS = 400;

/**
 * MariaDB's default of 151 connections was reached by four files at their peak (a file refused
 * "Too many connections" failed a test that had nothing wrong): a local server allowing fewer is
 * raised until its restart; a server that refuses (no SUPER privilege) is left as it is, and said so.
 */
async function allowConnectionsForFourFiles(db: OrderDb): Promise<void> {
  const { rows } = await sql<{ allowed: number }>`SELECT @@GLOBAL.max_connections AS allowed`.execute(db);
  if (Number(rows[0]?.allowed) >= CONNECTIONS_A_RUN_NEEDS) return;
  await sql.raw(`SET GLOBAL max_connections = ${CONNECTIONS_A_RUN_NEEDS}`).execute(db).catch((error: Error) => {
    console.warn(`MySQL allows ${rows[0]?.allowed} connections and could not be raised to ${CONNECTIONS_A_RUN_NEEDS} (${error.message}): tests may be refused "Too many connections"`);
  });
}

/**
 * Migrates one database for the run, which createTestEnv copies for each test environment
 * (TEST_MYSQL_TEMPLATE, inherited by the test processes) instead of migrating each anew;
 * dropped after the run. Every project's setup runs it: the first makes it, the others find it.
 */
export default async function migratedTemplate(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.TEST_MYSQL_TEMPLATE) return undefined;
  const name = `t_template_${process.pid}`;
  const url = new URL(TEST_MYSQL_URL);
  url.pathname = `/${name}`;
  await ensureDatabase(url.toString());
  const { db } = createDb(url.toString(), 2);
  await allowConnectionsForFourFiles(db);
  await migrateToLatest(db);
  process.env.TEST_MYSQL_TEMPLATE = name;
  return async () => {
    delete process.env.TEST_MYSQL_TEMPLATE;
    await sql.raw(`DROP DATABASE IF EXISTS \`${name}\``).execute(db);
    await db.destroy();
  };
}

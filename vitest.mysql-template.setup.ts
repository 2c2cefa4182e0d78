import { createDb, ensureDatabase, migrateToLatest } from '@orders/persistence';
import { sql } from 'kysely';

/**
 * Migrates one database for the run, which createTestEnv copies for each test environment
 * (TEST_MYSQL_TEMPLATE, inherited by the test processes) instead of migrating each anew;
 * dropped after the run. Every project's setup runs it: the first makes it, the others find it.
 */
export default async function migratedTemplate(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.TEST_MYSQL_TEMPLATE) return undefined;
  const name = `t_template_${process.pid}`;
  const url = new URL(process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test');
  url.pathname = `/${name}`;
  await ensureDatabase(url.toString());
  const { db } = createDb(url.toString(), 2);
  await migrateToLatest(db);
  process.env.TEST_MYSQL_TEMPLATE = name;
  return async () => {
    delete process.env.TEST_MYSQL_TEMPLATE;
    await sql.raw(`DROP DATABASE IF EXISTS \`${name}\``).execute(db);
    await db.destroy();
  };
}

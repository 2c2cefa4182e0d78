import { awaitSchema } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { createConnection, type Connection } from 'mysql2/promise';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A process started with MIGRATE_ON_START=false while its MySQL user's connections are used up
 * (max_user_connections: the old replicas of a rolling deploy still hold them). MySQL is
 * "out of connections" for now (isDatabaseUnavailable), as with ER_CON_COUNT_ERROR: awaitSchema
 * should not stop the start, as it did not before fc53ff6.
 */
describe('awaitSchema while the MySQL user has no connection left', () => {
  let env: TestEnv;
  let held: Connection | undefined;
  const user = `aw_${Math.random().toString(36).slice(2, 8)}`;
  let url: string;

  beforeAll(async () => {
    env = await createTestEnv('await_user_limit');
    const db = new URL(env.config.MYSQL_URL).pathname.slice(1);
    await sql.raw(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw' WITH MAX_USER_CONNECTIONS 1`).execute(env.db);
    await sql.raw(`GRANT ALL ON \`${db}\`.* TO '${user}'@'%'`).execute(env.db);
    const u = new URL(env.config.MYSQL_URL);
    u.username = user;
    u.password = 'pw';
    url = u.toString();
    held = await createConnection({ host: u.hostname, port: Number(u.port || 3306), user, password: 'pw', database: db });
  });

  afterAll(async () => {
    await held?.end();
    await sql.raw(`DROP USER IF EXISTS '${user}'@'%'`).execute(env.db);
    await env?.cleanup();
  });

  it('does not stop the start (it returns or waits; it does not throw)', async () => {
    const outcome = await Promise.race([
      awaitSchema(url, { waiting: () => undefined }).then(
        () => 'started',
        (error: Error & { code?: string }) => `threw ${error.code}: ${error.message}`,
      ),
      new Promise((resolve) => setTimeout(() => resolve('waiting'), 3_000)),
    ]);
    expect(outcome).not.toMatch(/^threw/);
  });
});

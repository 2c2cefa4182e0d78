import { StatementTooSlow, createDb, isDatabaseUnavailable, type OrderDb } from '@orders/persistence';
import { createTestEnv, waitFor, type TestEnv } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('a statement past MYSQL_QUERY_TIMEOUT_MS on a MySQL that answers', () => {
  let env: TestEnv;
  let db: OrderDb;

  beforeAll(async () => {
    env = await createTestEnv('statement_deadline');
    ({ db } = createDb(env.config.MYSQL_URL, 2, 500));
  });
  afterAll(async () => {
    await db?.destroy();
    await env?.cleanup();
  });

  const stillRunning = async () => {
    const { rows } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(3)%'`.execute(env.db);
    return Number(rows[0]!.n);
  };

  it('is ended on the server too, fails as too slow (not as MySQL away, which a job would wait out and ask again for ever), and the pool goes on', async () => {
    const started = Date.now();
    // a buyer's phone number written into the statement
    const failed = await sql`SELECT SLEEP(3), ${sql.lit('+44 20 7946 0000')} AS phone`.execute(db).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(StatementTooSlow);
    // named by its kind, not by its SQL, wherever its message goes (a log, a failed job's reason)
    expect(failed).toMatchObject({ statementKind: 'select', message: 'MySQL select statement ended after MYSQL_QUERY_TIMEOUT_MS (500 ms)' });
    expect(isDatabaseUnavailable(failed)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_500);
    // a client that gave up left it running there, with any locks its transaction held. KILL answers
    // once it has told the thread to end, which it does a moment later (later still on a busy box):
    // gone well before its SLEEP(3) would have ended by itself
    await waitFor(async () => (await stillRunning()) === 0, { what: 'the statement ended on the server', timeoutMs: Math.max(0, started + 2_700 - Date.now()), intervalMs: 20 });
    expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(db)).rows).toEqual([{ one: 1 }]);
  });
});

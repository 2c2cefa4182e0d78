import { awaitSchema, ensureDatabase, migrateDatabase } from '@orders/persistence';
import { createTestEnv, freePort, httpClient, spawnApp, waitFor, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A deploy whose processes start before its migrate step has run (MIGRATE_ON_START=false, as
 * compose and a cluster's rolling update run them): a worker taking jobs then would run them
 * against tables not there yet, each failure spending an attempt, accepted orders ending in the
 * dead letters; an api would answer reads with 500s.
 */
describe('an api and a worker started before their migrations ran', () => {
  let env: TestEnv;
  let bareUrl: string;
  const started: SpawnedProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnv('before_migrations');
    const url = new URL(env.env.MYSQL_URL!);
    url.pathname = `${url.pathname}_bare`;
    bareUrl = url.toString();
    await ensureDatabase(bareUrl);
  });
  afterAll(async () => {
    await Promise.all(started.map((process) => process.killAll()));
    await sql.raw(`DROP DATABASE IF EXISTS \`${new URL(bareUrl).pathname.slice(1)}\``).execute(env.db);
    await env?.cleanup();
  });

  it('wait for a database not created yet as for one not migrated yet', async () => {
    const missing = new URL(bareUrl);
    missing.pathname = `${missing.pathname}_missing`;
    const said: string[][] = [];
    const waited = awaitSchema(missing.toString(), { waiting: (pending) => said.push(pending) }).then(() => 'started');
    expect(await Promise.race([waited, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 2_500))])).toBe('still waiting');
    expect(said[0]!.length).toBeGreaterThan(0);
    // the deploy's migrate step creates and migrates it
    await migrateDatabase(missing.toString());
    expect(await waited).toBe('started');
    await sql.raw(`DROP DATABASE \`${missing.pathname.slice(1)}\``).execute(env.db);
  });

  it('wait, saying what for, take no job and answer no request until the migrations have run, then start', async () => {
    const [metricsPort, apiPort] = [await freePort(), await freePort()];
    const worker = spawnApp('worker', { ...env.env, MYSQL_URL: bareUrl, WORKER_METRICS_PORT: String(metricsPort) });
    const api = spawnApp('api', { ...env.env, MYSQL_URL: bareUrl, PORT: String(apiPort) });
    started.push(worker, api);
    const [workerHealth, apiHealth] = [httpClient(`http://127.0.0.1:${metricsPort}`, 1), httpClient(`http://127.0.0.1:${apiPort}`, 1)];
    const answers = async (client: typeof workerHealth) => (await client.request('GET', '/health/live').catch(() => ({ status: 0 }))).status;
    await waitFor(async () => worker.output().includes('waiting for the migrations this build needs') && api.output().includes('waiting for the migrations this build needs'), {
      what: 'both to say they wait for the migrations',
    });
    expect([await answers(workerHealth), await answers(apiHealth)]).toEqual([0, 0]);
    // no table was made by them meanwhile: the deploy's migrate step makes them
    expect((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ${new URL(bareUrl).pathname.slice(1)}`.execute(env.db)).rows[0]!.n).toBe(0);

    await migrateDatabase(bareUrl);
    await waitFor(async () => (await answers(workerHealth)) === 200 && (await answers(apiHealth)) === 200, { what: 'both to start once migrated', timeoutMs: 20_000 });
    await Promise.all([workerHealth.close(), apiHealth.close()]);
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDb, ensureDatabase } from '@orders/persistence';
import { TEST_MYSQL_URL, TEST_REDIS_URL, removeLeftoversOfDeadRuns, waitFor } from '@orders/testing';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** A process that ran and has ended: its pid names a run that is over. */
async function endedPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

/** A process that runs until killed, and its end. */
function running(child: ChildProcess) {
  return { child, exited: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
}

describe('what a test run killed before its end left, removed by the next run', () => {
  const redis = new Redis(TEST_REDIS_URL);
  const { db } = createDb(TEST_MYSQL_URL, 2);
  const thisRun = process.env.TEST_RUN_ID!;
  let endedRun: string;
  const databases = async () => (await sql<{ name: string }>`SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE 't\\_%'`.execute(db)).rows.map((row) => row.name);
  const made: { databases: string[]; keys: string[]; directories: string[]; processes: ReturnType<typeof running>[] } = { databases: [], keys: [], directories: [], processes: [] };

  beforeAll(async () => {
    endedRun = String(await endedPid());
  });

  afterAll(async () => {
    for (const { child } of made.processes) child.kill('SIGKILL');
    for (const name of made.databases) await sql.raw(`DROP DATABASE IF EXISTS \`${name}\``).execute(db);
    if (made.keys.length > 0) await redis.unlink(...made.keys);
    for (const directory of made.directories) rmSync(directory, { recursive: true, force: true });
    redis.disconnect();
    await db.destroy();
  });

  const databaseUrl = (database: string) => Object.assign(new URL(TEST_MYSQL_URL), { pathname: `/${database}` }).toString();

  /**
   * What a file of `run` makes, named as it names them: a database, a key, a queue's key, an app
   * (in the run's environment) and a redis-server in its data directory (on a socket there: no test reaches it).
   */
  async function leftoversOf(run: string) {
    const name = `${run}_leftovers_${randomBytes(4).toString('hex')}`;
    const database = `t_${name}`;
    await ensureDatabase(databaseUrl(database));
    const keys = [`t:${name}:{g0}:sku:LAMP`, `tq_${name}:orders:meta`];
    await redis.set(keys[0]!, '1');
    await redis.set(keys[1]!, '1');
    const directory = mkdtempSync(path.join(tmpdir(), `orders-redis-${run}-`));
    const app = running(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env: { ...process.env, TEST_RUN_ID: run }, stdio: 'ignore' }));
    const redisServer = running(spawn('redis-server', ['--port', '0', '--unixsocket', path.join(directory, 'redis.sock'), '--dir', directory, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }));
    made.databases.push(database);
    made.keys.push(...keys);
    made.directories.push(directory);
    made.processes.push(app, redisServer);
    // the server is in its directory before it is looked for
    await waitFor(async () => existsSync(`/proc/${redisServer.child.pid}/cwd`) && readlinkSync(`/proc/${redisServer.child.pid}/cwd`) === directory, { what: 'the redis-server to run in its directory' });
    return { database, keys, directory, processes: [app, redisServer] };
  }

  it("stops an ended run's processes and removes its databases, keys and Redis directories, and leaves a run under way all of its own", async () => {
    const ended = await leftoversOf(endedRun);
    const template = `t_template_${endedRun}`;
    await ensureDatabase(databaseUrl(template));
    made.databases.push(template);
    const underWay = await leftoversOf(thisRun);

    const removed = await removeLeftoversOfDeadRuns();

    await Promise.all(ended.processes.map(({ exited }) => exited));
    expect(removed.processes).toBeGreaterThanOrEqual(2);
    expect(removed.databases).toEqual(expect.arrayContaining([ended.database, template]));
    expect(await databases()).not.toContain(ended.database);
    expect(await databases()).not.toContain(template);
    expect(await redis.exists(...ended.keys)).toBe(0);
    expect(existsSync(ended.directory)).toBe(false);

    for (const { child } of underWay.processes) expect([child.exitCode, child.signalCode]).toEqual([null, null]);
    expect(await databases()).toContain(underWay.database);
    expect(await redis.exists(...underWay.keys)).toBe(2);
    expect(existsSync(underWay.directory)).toBe(true);
  });
});

import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDb } from '@orders/persistence';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { waitFor } from './processes.js';
import { TEST_MYSQL_URL, TEST_REDIS_URL } from './test-services.js';

/**
 * The run a test process belongs to: the pid of the vitest process that started it, which sets
 * TEST_RUN_ID before any test process starts (vitest.config.ts); outside vitest (the bench), the
 * process's own. Every database, key prefix, queue prefix and Redis data directory a
 * test makes carries it, so a later run can tell what a killed run left (its pid gone) from what a
 * run under way holds, and remove the first only.
 */
function testRunId(): string {
  return process.env.TEST_RUN_ID ?? String(process.pid);
}

/** `<run>_<name>_<random>`: a name of the test's own, within its run (`name` cut to 24 characters, word characters only). */
export function testRunName(name: string): string {
  return `${testRunId()}_${name.replace(/[^a-z0-9]/gi, '_').slice(0, 24)}_${randomBytes(4).toString('hex')}`;
}

/** The prefix of the data directories test files start servers in (startRedisServer, startRedisCluster, startMysqlServer). */
export function serverDirPrefix(kind: 'redis' | 'redis-cluster' | 'mysql'): string {
  return path.join(tmpdir(), `orders-${kind}-${testRunId()}-`);
}

const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The fields of /proc/<pid>/stat after the command's name (state, parent, …), whose parentheses may hold anything; null once it is gone. */
function statOf(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Ended: no such process, or a zombie its parent has not reaped yet (its sockets closed already). */
const exited = (pid: number): boolean => {
  const stat = statOf(pid);
  return stat === null ? !running(pid) : stat[0] === 'Z';
};

/** A server's data directory a test made: `orders-redis-<run>-…`, `orders-redis-cluster-<run>-…`, `orders-mysql-<run>-…`. */
const SERVER_DIR = /^orders-(?:redis(?:-cluster)?|mysql)-(\d+)-/;

/** The run a name was made in (`t_<run>_…`, `t:<run>_…`, `tq_<run>_…`, a Redis data directory, the template `t_template_<run>`) when that run has ended. */
function deadRunOf(name: string, pattern: RegExp): boolean {
  const run = pattern.exec(name)?.[1];
  return run !== undefined && exited(Number(run));
}

export interface LeftoversRemoved {
  processes: number;
  databases: string[];
  keys: number;
  directories: string[];
}

/**
 * What runs that were killed left behind (vitest stopped before its files' afterAll: a Ctrl-C
 * twice, a CI job cancelled): the apps and redis-servers their files started (still running, on
 * their ports, writing), their databases, their keys in the shared Redis and their Redis data
 * directories. Only runs whose vitest process is gone are touched: files of a run under way,
 * this one's or another's, keep everything. Names made before runs carried their id are not
 * recognised, and stay.
 */
export async function removeLeftoversOfDeadRuns(): Promise<LeftoversRemoved> {
  const processes = await killProcessesOfDeadRuns();
  const databases = await dropDatabasesOfDeadRuns(TEST_MYSQL_URL);
  const keys = await unlinkKeysOfDeadRuns(TEST_REDIS_URL);
  const directories = readdirSync(tmpdir()).filter((entry) => deadRunOf(entry, SERVER_DIR));
  for (const directory of directories) rmSync(path.join(tmpdir(), directory), { recursive: true, force: true });
  return { processes, databases, keys, directories };
}

/**
 * Processes of runs that have ended (Linux's /proc; elsewhere none are found): by the run in their
 * environment, or, for a redis-server (which writes its title over its environment), by the data
 * directory it runs in.
 */
async function killProcessesOfDeadRuns(): Promise<number> {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return 0;
  }
  // /proc's environment is a process's at its start: a shell that exported a stale TEST_RUN_ID
  // would name a dead run for this process and those that started it, which are never taken for leftovers
  const ours = ancestry();
  const orphans = entries.filter((pid) => {
    if (ours.has(pid)) return false;
    try {
      const run = /(?:^|\0)TEST_RUN_ID=(\d+)(?:\0|$)/.exec(readFileSync(`/proc/${pid}/environ`, 'latin1'))?.[1];
      if (run !== undefined) return exited(Number(run));
      return deadRunOf(path.basename(readlinkSync(`/proc/${pid}/cwd`)), SERVER_DIR);
    } catch {
      // gone meanwhile, or not ours to read
      return false;
    }
  });
  for (const pid of orphans) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  // gone before their databases are dropped and their keys deleted: none writes after
  await waitFor(async () => orphans.every((pid) => exited(Number(pid))), { what: 'the processes of ended test runs to exit', timeoutMs: 10_000, intervalMs: 50 });
  return orphans.length;
}

/** This process and those that started it, up to init. */
function ancestry(): Set<string> {
  const pids = new Set<string>();
  for (let pid = String(process.pid); pid !== '0' && !pids.has(pid); pid = statOf(pid)?.[1] ?? '0') pids.add(pid);
  return pids;
}

async function dropDatabasesOfDeadRuns(mysqlUrl: string): Promise<string[]> {
  const { db } = createDb(mysqlUrl, 1);
  try {
    return await db.connection().execute(async (connection) => {
      const { rows } = await sql<{ name: string }>`SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE 't\\_%'`.execute(connection);
      const dead = rows.map((row) => row.name).filter((name) => deadRunOf(name, /^t_(?:template_)?(\d+)(?:_|$)/));
      // a session a killed run's process left (its client gone, its statement still running) would hold the drop
      await sql`SET SESSION lock_wait_timeout = 30`.execute(connection);
      for (const name of dead) {
        const sessions = await sql<{ id: number }>`SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ${name}`.execute(connection);
        for (const { id } of sessions.rows) await sql.raw(`KILL ${Number(id)}`).execute(connection).catch(() => {});
        await sql.raw(`DROP DATABASE IF EXISTS \`${name}\``).execute(connection);
      }
      return dead;
    });
  } finally {
    await db.destroy();
  }
}

async function unlinkKeysOfDeadRuns(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let unlinked = 0;
    for (const pattern of ['t:*', 'tq_*']) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        const dead = keys.filter((key) => deadRunOf(key, /^(?:t:|tq_)(\d+)_/));
        if (dead.length > 0) unlinked += await redis.unlink(...dead);
      } while (cursor !== '0');
    }
    return unlinked;
  } finally {
    redis.disconnect();
  }
}

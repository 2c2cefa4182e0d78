import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureDatabase } from '@orders/persistence';
import { freePort } from './http-client.js';
import { waitFor } from './processes.js';
import { serverDirPrefix } from './test-run.js';

export interface MysqlServer {
  /** root, no password, database `orders` (created) */
  url: string;
  /** Stops it and removes its data directory. */
  remove(): Promise<void>;
}

/** Debian's packages put the server in /usr/sbin, off a non-root user's PATH. */
const MARIADBD = existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : 'mariadbd';

/**
 * A MariaDB server owned by one test file, for what the shared one cannot be changed for (its
 * settings are every file's): its own free loopback port and temp directory, its system time zone
 * `timeZone` (`+09:00`: a shop's database host run in its own zone).
 */
export async function startMysqlServer({ timeZone }: { timeZone: string }): Promise<MysqlServer> {
  const port = await freePort();
  const dir = mkdtempSync(serverDirPrefix('mysql'));
  const data = path.join(dir, 'data');
  // ~100 MB of system tables: not left behind when the install fails
  await promisify(execFile)('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--user=root']).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  let output = '';
  const server = spawn(
    MARIADBD,
    ['--no-defaults', `--datadir=${data}`, `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${path.join(dir, 'sock')}`, `--pid-file=${path.join(dir, 'pid')}`, '--user=root', `--default-time-zone=${timeZone}`, '--skip-log-bin', '--innodb-buffer-pool-size=32M'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  const remove = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `mysql://root@127.0.0.1:${port}/orders`;
  try {
    await waitFor(() => ensureDatabase(url).then(() => true, () => false), { what: `mariadbd on ${port}`, timeoutMs: 30_000, intervalMs: 100, explain: async () => `its output: ${output}` });
  } catch (error) {
    await remove();
    throw error;
  }
  return { url, remove };
}

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './http-client.js';
import { waitFor } from './processes.js';
import { serverDirPrefix } from './test-run.js';

const run = promisify(execFile);

export interface RedisServer {
  port: number;
  url: string;
  /** SIGTERM: a restart as systemd or an operator does it; Redis flushes its AOF and exits. */
  stop(): Promise<void>;
  /** SIGKILL: a crash of the process; Redis comes back with what it had written to its AOF. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory (the AOF is replayed). */
  start(): Promise<void>;
  /** Kills it and removes its data directory. */
  remove(): Promise<void>;
  /** The last of what the running server printed (its log). */
  output(): string;
}

export async function ping(port: number): Promise<boolean> {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'ping']);
    return stdout.trim() === 'PONG';
  } catch {
    return false;
  }
}

/**
 * A redis-server owned by one test file: its own free loopback port and temp directory,
 * AOF on with `appendfsync everysec` (what BullMQ's docs advise for production).
 */
export async function startRedisServer(extraArgs: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(serverDirPrefix('redis'));
  let child: ChildProcess | undefined;
  let output = '';
  // kept across restarts: what a killed server printed before it died is what a failure needs
  const start = async () => {
    // a master here has one replica at most: Redis's default 5 s wait for more to join each full sync
    // (a replica started, restarted or behind) was most of a replication test's time
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--repl-diskless-sync-delay', '0', ...extraArgs];
    const started = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
    started.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
    child = started;
    await waitFor(() => ping(port), { what: `redis-server on ${port}`, timeoutMs: 15_000, intervalMs: 50, explain: async () => `its output: ${output}` });
  };
  const end = async (signal: NodeJS.Signals) => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    // a redis-server refuses a SIGTERM while it writes its first AOF (just after a full sync from its master): asked again until it goes
    const askedAgain = setInterval(() => running.kill(signal), 1_000);
    running.kill(signal);
    await exited;
    clearInterval(askedAgain);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    start,
    output: () => output,
    async remove() {
      await end('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ReplicatedRedis {
  master: RedisServer;
  replica: RedisServer;
  /** Whether the replica is synced and acknowledges the master's writes (a WAIT for it is answered). */
  inSync(): Promise<boolean>;
  /** The replica as a client reads it: what a failover to it would keep. */
  replicaClient: Redis;
  /** Removes both; the master last, as a test file's key scan may still need it. */
  remove(): Promise<void>;
}

/** A master and one replica of it, each a redis-server of the test file's own, the replica synced before this returns. */
export async function startReplicatedRedis(): Promise<ReplicatedRedis> {
  const master = await startRedisServer();
  const replica = await startRedisServer(['--replicaof', '127.0.0.1', String(master.port)]);
  const replicaClient = new Redis(replica.url, { maxRetriesPerRequest: null });
  // the replica is stopped and started by the tests: its client reconnects
  replicaClient.on('error', () => {});
  const masterClient = new Redis(master.url, { maxRetriesPerRequest: null });
  masterClient.on('error', () => {});
  // the link reading up is not enough: a replica just synced acknowledges late (writing its first
  // AOF), and a reservation's WAIT then times out. A WAIT by a client that wrote nothing is answered
  // at once, so a short-lived write gives it something to wait for.
  const inSync = async () =>
    /master_link_status:up/.test(await replicaClient.info('replication')) &&
    (await masterClient.set('replica-in-sync-probe', '1', 'PX', 1000)) === 'OK' &&
    Number(await masterClient.call('WAIT', '1', '500')) >= 1;
  await waitFor(inSync, { what: 'the replica to sync with its master' });
  return {
    master,
    replica,
    inSync,
    replicaClient,
    async remove() {
      replicaClient.disconnect();
      masterClient.disconnect();
      await replica.remove();
      await master.remove();
    },
  };
}

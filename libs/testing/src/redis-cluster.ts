import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './http-client.js';
import { waitFor } from './processes.js';
import { ping } from './redis-server.js';
import { serverDirPrefix } from './test-run.js';

const run = promisify(execFile);

export interface RedisCluster {
  /** the masters as REDIS_CLUSTER_NODES takes them: `127.0.0.1:port,...` */
  nodes: string;
  /** Kills every node and removes their directory. */
  stop(): Promise<void>;
}

async function clusterStateOk(port: number): Promise<boolean> {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info']);
    return stdout.includes('cluster_state:ok');
  } catch {
    return false;
  }
}

/** Free loopback ports, none twice: one per node for clients and one for the cluster bus. */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * A Redis Cluster of `masters` masters (no replicas) owned by the caller: each node a
 * redis-server on free loopback ports in one temp directory, without persistence, the
 * slots spread by `redis-cli --cluster create`. Resolves once every node says
 * `cluster_state:ok`.
 */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(serverDirPrefix('redis-cluster'));
  const ports = await distinctFreePorts(2 * masters);
  const nodes = ports.slice(0, masters).map((port, i) => ({ port, busPort: ports[masters + i]! }));
  const children: ChildProcess[] = [];
  let output = '';
  // a test run that dies without its teardown must not leave the nodes running
  const killAll = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async () => {
    process.off('exit', killAll);
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const { port, busPort } of nodes) {
      const args = [
        ...['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1'],
        ...['--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, `nodes-${port}.conf`)],
        ...['--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
      ];
      const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-5_000)));
      child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-5_000)));
      children.push(child);
    }
    for (const { port } of nodes) await waitFor(() => ping(port), { what: `redis-server on ${port}`, timeoutMs: 15_000, intervalMs: 50, explain: async () => `their output: ${output}` });
    const addresses = nodes.map(({ port }) => `127.0.0.1:${port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
    for (const { port } of nodes) await waitFor(() => clusterStateOk(port), { what: `cluster_state:ok on ${port}`, timeoutMs: 30_000, intervalMs: 100 });
    return { nodes: addresses.join(','), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serviceNodeOptions } from '@orders/config';
import { callgrindArgs } from './instructions.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface Server {
  name: string;
  child: ChildProcess;
  output(): string;
  /** Peak resident memory (MB) of the process and its children since the last reset. */
  peakRssMb(): number;
  resetPeak(): void;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  env: Record<string, string>;
  /** Writes a .cpuprofile into this folder when the process exits (node --cpu-prof). */
  cpuProfDir?: string;
  /** Runs node under valgrind's callgrind, its dumps in this folder (instructions per request). */
  callgrindDir?: string;
  /** The port it serves on: passed as PORT, and waited for. */
  port?: number;
  /** A port it opens on its own (a worker's metrics), waited for. */
  waitForPort?: number;
}

function rssKb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) found.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // the process is gone
  }
  return found;
}

/** RSS of a process tree (node:cluster workers included), in KB. Bounded depth. */
export function treeRssKb(pid: number, depth = 0): number {
  if (depth > 3) return 0;
  return rssKb(pid) + childrenOf(pid).reduce((sum, child) => sum + treeRssKb(child, depth + 1), 0);
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU seconds (user + system) a process has used so far; 0 when it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name may hold spaces; after it come state (field 3) … utime (14), stime (15)
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

function treeCpuSeconds(pid: number, depth = 0): number {
  if (depth > 3) return 0;
  return cpuSeconds(pid) + childrenOf(pid).reduce((sum, child) => sum + treeCpuSeconds(child, depth + 1), 0);
}

/** The pids of the local services this box runs (Redis, MariaDB), found by command name. */
export function servicePids(command: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === command;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The whole box's CPU seconds so far from /proc/stat: busy, idle and stolen by the hypervisor. */
function boxSeconds(): { busy: number; idle: number; steal: number } {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: (user! + nice! + system! + irq! + softirq!) / CLOCK_TICKS, idle: (idle! + iowait!) / CLOCK_TICKS, steal: (steal ?? 0) / CLOCK_TICKS };
}

/**
 * How many cores each process tree (and this process, the load generator) used between
 * `start` and `read`, and what the rest of the box did (`other`: processes not measured,
 * `idle`, `steal`): on a box where everything shares two cores, this says where they went
 * and whether something else took them.
 */
export class CoreUse {
  private constructor(
    private readonly pids: Record<string, number[]>,
    private readonly startedAt: number,
    private readonly before: Record<string, number>,
  ) {}

  static start(pids: Record<string, number[]>): CoreUse {
    return new CoreUse(pids, performance.now(), CoreUse.sample(pids));
  }

  private static sample(pids: Record<string, number[]>): Record<string, number> {
    const seconds: Record<string, number> = {};
    for (const [name, list] of Object.entries(pids)) seconds[name] = list.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0);
    const own = process.cpuUsage();
    seconds['load generator'] = (own.user + own.system) / 1e6;
    const box = boxSeconds();
    seconds['other'] = box.busy - Object.values(seconds).reduce((sum, used) => sum + used, 0);
    seconds['idle'] = box.idle;
    seconds['steal'] = box.steal;
    return seconds;
  }

  read(): Record<string, number> {
    const wallSeconds = (performance.now() - this.startedAt) / 1000;
    return Object.fromEntries(Object.entries(this.secondsUsed()).map(([name, seconds]) => [name, Number((seconds / Math.max(wallSeconds, 0.001)).toFixed(2))]));
  }

  /** CPU seconds each used since the start (idle and steal: the box's), unrounded: what a piece of work cost, divided by how many. */
  secondsUsed(): Record<string, number> {
    const after = CoreUse.sample(this.pids);
    return Object.fromEntries(Object.entries(after).map(([name, seconds]) => [name, seconds - (this.before[name] ?? 0)]));
  }
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Runs a server as its own process, as it ships: the apps from their compiled `dist/`, what
 * `npm start` and the images run (through tsx, every named function a call creates is wrapped
 * in esbuild's `__name()`: 1-1.6 % of a worker's CPU, bench/README item 39); the bench's own
 * small servers (`.ts`) through tsx, the workspace packages they import from `dist/` too.
 */
export function spawnService(name: string, entry: string, options: SpawnOptions): Promise<Server> {
  const args = entry.endsWith('.ts') ? ['--import', 'tsx'] : [];
  if (options.cpuProfDir) args.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`,);
  const [command, commandArgs] = options.callgrindDir
    ? ['valgrind', [...callgrindArgs(options.callgrindDir, name), process.execPath, ...args, entry]]
    : [process.execPath, [...args, entry]];
  return spawnServer(name, command, commandArgs, {
    // every server, the ceilings too, runs with the flags the services ship with
    env: { ...process.env, ...options.env, NODE_OPTIONS: serviceNodeOptions(process.env.NODE_OPTIONS), ...(options.port ? { PORT: String(options.port) } : {}) },
    listening: options.port ?? options.waitForPort,
    // under valgrind, loading the api's modules alone takes a minute or more
    startTimeoutMs: options.callgrindDir ? 300_000 : 60_000,
  });
}

/**
 * --instructions: a Redis server of the bench's own, under callgrind, so what Redis executes
 * for a request is counted beside what the server does (the box's own Redis cannot be).
 * Keeps nothing on disk, as the box's does not.
 */
export function spawnCountedRedis(callgrindDir: string, port: number): Promise<Server> {
  const args = [...callgrindArgs(callgrindDir, 'redis'), 'redis-server', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'];
  return spawnServer('redis', 'valgrind', args, { env: { ...process.env }, listening: port, startTimeoutMs: 60_000 });
}

async function spawnServer(name: string, command: string, args: string[], options: { env: NodeJS.ProcessEnv; listening: number | undefined; startTimeoutMs: number }): Promise<Server> {
  const child = spawn(command, args, { cwd: repoRoot, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let peak = 0;
  const sampler = setInterval(() => {
    if (child.pid) peak = Math.max(peak, treeRssKb(child.pid));
  }, 250);
  sampler.unref();

  const server: Server = {
    name,
    child,
    output: () => output,
    peakRssMb: () => Math.round(Math.max(peak, child.pid ? treeRssKb(child.pid) : 0) / 1024),
    resetPeak: () => {
      peak = 0;
    },
    async stop() {
      clearInterval(sampler);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };

  if (options.listening) {
    const deadline = Date.now() + options.startTimeoutMs;
    while (!(await portOpen(options.listening))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await server.stop();
        throw new Error(`${name} did not start listening on ${options.listening}:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return server;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { appEntry } from '@orders/config';
import { assertBuilt } from './builds.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

export interface SpawnedProcess {
  child: ChildProcess;
  output: () => string;
  /** SIGKILL: the process gets no chance to finish anything. */
  kill(): Promise<void>;
  /** SIGKILL to it and to every process it started (forked api processes, tsx's esbuild): nothing of it is left running; then all it printed is in output(). */
  killAll(): Promise<void>;
  /** A graceful shutdown: SIGTERM (or SIGINT, an operator's Ctrl-C), then its exit code. */
  stop(signal?: 'SIGTERM' | 'SIGINT'): Promise<number | null>;
}

/** The processes `pid` started and that still run (Linux: /proc). */
export function childProcessesOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    // it has exited meanwhile
    return [];
  }
}

const descendantsOf = (pid: number): number[] => childProcessesOf(pid).flatMap((child) => [child, ...descendantsOf(child)]);

/** `node <args>` in the repository's root with the test's environment, its output kept. */
export function spawnNode(args: string[], env: Record<string, string>): SpawnedProcess {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // enough for a test's whole run at LOG_LEVEL=info, so a line is still there when it is looked for
  const keep = 4_000_000;
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-keep)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-keep)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const outputEnded = new Promise((resolve) => child.once('close', resolve));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    output: () => output,
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
    async killAll() {
      // found before it dies: its orphans would no longer be its children
      const started = running() ? descendantsOf(child.pid!) : [];
      if (running()) child.kill('SIGKILL');
      for (const pid of started) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already: a forked api process goes when its primary does
        }
      }
      await exited;
      // what it printed last may still be on its way; a process that escaped would hold the pipes open
      await Promise.race([outputEnded, delay(1_000)]);
    },
    async stop(signal = 'SIGTERM') {
      if (running()) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Runs an app as its own OS process from its build (the api and the worker from their bundles),
 * as npm start and the image run it (through tsx each start cost 1–2 s of CPU, so a worker a test
 * SIGKILLs under load was still loading), with the test file's environment; a stale build is
 * refused (assertBuilt).
 */
export function spawnApp(app: 'worker' | 'api' | 'payment-sim' | 'warehouse-sim', env: Record<string, string>): SpawnedProcess {
  assertBuilt([`apps/${app}`], 'The apps a test starts');
  return spawnNode([appEntry(app)], { ...env, MIGRATE_ON_START: 'false' });
}

/** The first pause of a poll: what a job or a request usually takes here. */
const FIRST_POLL_PAUSE_MS = 25;

/**
 * Polls until `check` returns a truthy value; fails with the last value after `timeoutMs`, and
 * with what `explain` then says (the state a rare failure needs to be understood: counts, logs).
 * The pauses double from 25 ms up to `intervalMs`: most waits end within a job's run, and a wait
 * on a timer of seconds then reads the order a few times a second, where polling every 50 ms
 * read it (an api request and its MySQL queries) hundreds of times, on cores the suite's other
 * files were waiting for.
 */
export async function waitFor<T>(
  check: () => Promise<T>,
  { timeoutMs = 30_000, intervalMs = 200, what = 'condition', explain }: { timeoutMs?: number; intervalMs?: number; what?: string; explain?: () => Promise<string> } = {},
): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  let pauseMs = Math.min(FIRST_POLL_PAUSE_MS, intervalMs);
  do {
    last = await check();
    if (last) return last as Exclude<T, false | 0 | '' | null | undefined>;
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    pauseMs = Math.min(pauseMs * 2, intervalMs);
  } while (Date.now() < deadline);
  const explanation = explain ? `\n${await explain()}` : '';
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (last value: ${JSON.stringify(last)})${explanation}`);
}

export const buyerAddress = {
  name: 'Ada Lovelace',
  phone: '+44 20 7946 0000',
  line1: '12 Sale Street',
  city: 'London',
  postalCode: 'N1 9GU',
  country: 'GB',
};

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

export interface SpawnedProcess {
  child: ChildProcess;
  output: () => string;
  /** SIGKILL: the process gets no chance to finish anything. */
  kill(): Promise<void>;
  /** SIGTERM and wait: a graceful shutdown. */
  stop(): Promise<number | null>;
}

/**
 * Runs an app's main.ts as its own OS process (through tsx, so tests never depend on a
 * stale build), with the test file's environment.
 */
export function spawnApp(app: 'worker' | 'api' | 'payment-sim' | 'warehouse-sim', env: Record<string, string>): SpawnedProcess {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', `apps/${app}/src/main.ts`], {
    cwd: root,
    env: { ...process.env, ...env, MIGRATE_ON_START: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // enough for a test's whole run at LOG_LEVEL=info, so a line is still there when it is looked for
  const keep = 4_000_000;
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-keep)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-keep)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * Polls until `check` returns a truthy value; fails with the last value after `timeoutMs`, and
 * with what `explain` then says (the state a rare failure needs to be understood: counts, logs).
 */
export async function waitFor<T>(
  check: () => Promise<T>,
  { timeoutMs = 30_000, intervalMs = 100, what = 'condition', explain }: { timeoutMs?: number; intervalMs?: number; what?: string; explain?: () => Promise<string> } = {},
): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  do {
    last = await check();
    if (last) return last as Exclude<T, false | 0 | '' | null | undefined>;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
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

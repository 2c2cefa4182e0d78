import { assertBuilt } from './builds.js';
import { spawnNode, type SpawnedProcess } from './processes.js';

/** The operator commands of scripts/, each `npm run <name>` (npm start for start). */
export type OperatorCommand = 'start' | 'migrate' | 'seed' | 'token' | 'dlq' | 'reconcile' | 'stack';

export interface CommandAnswer {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr as a terminal shows them, in the order they were written */
  output: string;
}

/** scripts, what it imports, and the apps npm start runs from their dist (the api and worker from their bundles) beside it. */
const BUILT_FOR_SCRIPTS = ['scripts', 'apps/api', 'apps/worker', 'apps/payment-sim', 'apps/warehouse-sim'];

/** An operator command as npm runs it (node on scripts/dist/<name>.js), with the test's environment; stop() or kill() ends it. */
export function startOperatorCommand(command: OperatorCommand, args: string[], env: Record<string, string>): SpawnedProcess {
  assertBuilt(BUILT_FOR_SCRIPTS, 'The operator commands');
  return spawnNode([`scripts/dist/${command}.js`, ...args], env);
}

/**
 * Runs an operator command to its end and answers what it printed and its exit code. One
 * that has not ended after `timeoutMs` is killed, with everything it started, and the test
 * fails with what it printed.
 */
export async function runOperatorCommand(command: OperatorCommand, args: string[], env: Record<string, string>, { timeoutMs = 45_000 } = {}): Promise<CommandAnswer> {
  const running = startOperatorCommand(command, args, env);
  let stdout = '';
  let stderr = '';
  running.child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  running.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise<number | null>((resolve) => running.child.once('close', (code) => resolve(code)));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timed out'>((resolve) => (timer = setTimeout(() => resolve('timed out'), timeoutMs)));
  const ended = await Promise.race([closed, timedOut]);
  clearTimeout(timer);
  if (ended === 'timed out') {
    await running.killAll();
    throw new Error(`${command} ${args.join(' ')} had not ended after ${timeoutMs} ms; its output:\n${running.output()}`);
  }
  return { exitCode: ended, stdout, stderr, output: running.output() };
}

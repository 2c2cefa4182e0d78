import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnNode, type SpawnedProcess } from './processes.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The operator commands of scripts/, each `npm run <name>` (npm start for start). */
export type OperatorCommand = 'start' | 'migrate' | 'seed' | 'token' | 'dlq' | 'reconcile';

export interface CommandAnswer {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr as a terminal shows them, in the order they were written */
  output: string;
}

/** scripts, what it imports, and the apps npm start runs from their dist beside it. */
const BUILT_FOR_SCRIPTS = ['scripts', 'apps/payment-sim', 'apps/warehouse-sim'];

/** Every project `tsc -b` builds for `project`: it and, in turn, those its tsconfig references. */
function withReferences(project: string, seen = new Set<string>()): Set<string> {
  if (seen.has(project)) return seen;
  seen.add(project);
  const { references = [] } = JSON.parse(readFileSync(path.join(root, project, 'tsconfig.json'), 'utf8')) as { references?: Array<{ path: string }> };
  for (const reference of references) withReferences(path.relative(root, path.resolve(root, project, reference.path)), seen);
  return seen;
}

function newestSource(dir: string): { file: string; mtimeMs: number } {
  let newest = { file: dir, mtimeMs: 0 };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = path.join(entry.parentPath, entry.name);
    const { mtimeMs } = statSync(file);
    if (mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
  }
  return newest;
}

/**
 * npm run runs a command from its build after `tsc -b` (npm test builds first, too): a test of a
 * stale build would pass or fail for code that is no longer there, so it refuses, as tsc -b
 * would rebuild: a project with a source newer than its .tsbuildinfo.
 */
function assertBuilt(): void {
  const projects = new Set(BUILT_FOR_SCRIPTS.flatMap((project) => [...withReferences(project)]));
  for (const project of projects) {
    const buildInfo = path.join(root, project, 'dist/.tsbuildinfo');
    const newest = newestSource(path.join(root, project, 'src'));
    if (!existsSync(buildInfo) || newest.mtimeMs > statSync(buildInfo).mtimeMs) {
      throw new Error(`The operator commands run from their build, and ${path.relative(root, newest.file)} is newer than ${project}/dist: run npx tsc -b first`);
    }
  }
}

/** An operator command as npm runs it (node on scripts/dist/<name>.js), with the test's environment; stop() or kill() ends it. */
export function startOperatorCommand(command: OperatorCommand, args: string[], env: Record<string, string>): SpawnedProcess {
  assertBuilt();
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

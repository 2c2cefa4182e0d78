import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '@orders/config';

/** Arguments a command does not take: it prints why, then its usage, and exits 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface CommandLine<A> {
  /** What --help prints: how to call the command and what it does. */
  usage: string;
  /** The command's own reading of its arguments; throws UsageError for any it does not take. Without it, the command takes none. */
  parse?: (args: readonly string[]) => A;
  /** The flags the command takes (--repair), which npm keeps for itself when they come before `--`. */
  flags?: readonly string[];
}

/** Refuses `args`, arguments left over that the command does not take. */
export function refuseArguments(args: readonly string[]): void {
  if (args.length > 0) throw new UsageError(`unknown argument${args.length === 1 ? '' : 's'}: ${args.join(' ')}`);
}

/** The name npm gives a setting in the environment of the scripts it runs: npm_config_<name>. */
const npmEnvName = (setting: string) => setting.replaceAll('-', '_').toLowerCase();

/** What npm exports to its scripts beside its settings (@npmcli/config's set-envs.js). */
const NPM_EXPORTS_BESIDE_SETTINGS = ['global_prefix', 'local_prefix', 'npm_version', 'node_gyp'];

/**
 * The names of npm's own settings, read from the npm running the command (npm 10 and later);
 * undefined when no npm runs it (node itself, docker compose run) or one that does not have them.
 */
function npmSettings(): Set<string> | undefined {
  const npm = process.env.npm_execpath;
  if (npm === undefined) return undefined;
  try {
    const { definitions } = createRequire(npm)('@npmcli/config/lib/definitions') as { definitions: Record<string, unknown> };
    return new Set([...Object.keys(definitions).map(npmEnvName), ...NPM_EXPORTS_BESIDE_SETTINGS]);
  } catch {
    return undefined;
  }
}

/**
 * The settings written in the npmrc files npm read (the project's, the user's, the global one
 * and npm's own): npm exports them as npm_config_* too, and an old or foreign one (nodedir,
 * always-auth) is no flag typed on the command line.
 */
function npmrcSettings(): Set<string> {
  const env = process.env;
  const files = [
    env.npm_config_local_prefix && join(env.npm_config_local_prefix, '.npmrc'),
    env.npm_config_userconfig ?? join(homedir(), '.npmrc'),
    env.npm_config_globalconfig ?? (env.npm_config_global_prefix && join(env.npm_config_global_prefix, 'etc', 'npmrc')),
    env.npm_execpath && join(dirname(dirname(env.npm_execpath)), 'npmrc'),
  ];
  const settings = new Set<string>();
  for (const file of files) {
    if (!file) continue;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const [, setting] of text.matchAll(/^\s*([^\s;#=[][^=]*?)\s*(?:\[\])?\s*=/gm)) settings.add(npmEnvName(setting!));
  }
  return settings;
}

/**
 * npm ran this very command (`npm run reconcile`), rather than a process npm ran that started it
 * (npm test, npx vitest): only then did the operator type the npm_config_* it was given.
 */
const ranByNpm = () => process.env.npm_lifecycle_script?.includes(basename(process.argv[1] ?? '')) ?? false;

/**
 * Refuses a flag npm kept for itself: `npm run reconcile --repair`, without `--`, runs the command
 * without it (npm warns only that it does not know the setting, and hands it over as
 * npm_config_repair). Run without it, a command would check where a repair was asked for, or
 * refuse a seed asking for the --demo-shop it was given. Any flag npm does not know is refused so,
 * not only the command's own: `npm run reconcile --reapir` would otherwise run a check and exit 0.
 * A setting of npm's own (--silent, --force) is npm's, and one from an npmrc file was not typed.
 */
function refuseFlagsNpmKept(args: readonly string[], flags: readonly string[]): void {
  if (!ranByNpm()) return;
  const fromNpmrc = npmrcSettings();
  const keptByNpm = (name: string) => process.env[`npm_config_${name}`] !== undefined && !fromNpmrc.has(name);
  const own = flags.filter((flag) => !args.includes(flag) && keptByNpm(npmEnvName(flag.slice(2))));
  const settings = npmSettings();
  const unknown = Object.keys(process.env)
    .filter((variable) => variable.startsWith('npm_config_'))
    .map((variable) => variable.slice('npm_config_'.length))
    .filter((name) => settings !== undefined && !settings.has(name) && keptByNpm(name))
    .map((name) => `--${name.replaceAll('_', '-')}`);
  const kept = [...new Set([...own, ...unknown])];
  if (kept.length > 0) throw new UsageError(`npm kept ${kept.join(' ')} for itself and did not pass ${kept.length === 1 ? 'it' : 'them'} on: put ${kept.length === 1 ? 'it' : 'them'} after --, as below`);
}

/**
 * Runs an operator command. Its arguments are read first, before it reaches any service:
 * --help or -h prints the usage and exits 0, and an argument the command does not take
 * prints why and the usage and exits 1 (a mistyped flag must never run the command as if
 * it were not there). Then a clear message and exit code 1 on failure, never a stack trace
 * for known faults. A command may return its own exit code for a finding (not a failure).
 *
 * A command's module imports only what reading its arguments needs; `command` imports the
 * code that reaches MySQL and Redis (`await import`) once they are read. Loading the apps'
 * modules takes 1–2 s of CPU, which --help or a mistyped flag should not wait for.
 */
export function runCommand<A = void>(commandLine: CommandLine<A>, command: (args: A) => Promise<void | number>): void {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(commandLine.usage);
    process.exit(0);
  }
  let parsed: A;
  try {
    refuseFlagsNpmKept(args, commandLine.flags ?? []);
    parsed = commandLine.parse ? commandLine.parse(args) : (refuseArguments(args) as A);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n${commandLine.usage}`);
    process.exit(1);
  }
  command(parsed).then(
    (exitCode) => process.exit(exitCode ?? 0),
    (error: unknown) => {
      console.error(error instanceof ConfigError ? error.message : `Failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}

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

/**
 * Refuses a flag npm kept for itself: `npm run reconcile --repair`, without `--`, runs the command
 * without it (npm warns only that it does not know the setting, and hands it over as
 * npm_config_repair). Run without it, a command would check where a repair was asked for, or
 * refuse a seed asking for the --demo-shop it was given.
 */
function refuseFlagsNpmKept(args: readonly string[], flags: readonly string[]): void {
  const kept = flags.filter((flag) => !args.includes(flag) && process.env[`npm_config_${flag.slice(2).replaceAll('-', '_')}`] !== undefined);
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

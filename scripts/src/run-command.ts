import { ConfigError } from '@orders/config';

/**
 * Runs an operator command: a clear message and exit code 1 on failure, never a stack trace
 * for known faults. A command may return its own exit code for a finding (not a failure).
 */
export function runCommand(command: () => Promise<void | number>): void {
  command().then(
    (exitCode) => process.exit(exitCode ?? 0),
    (error: unknown) => {
      console.error(error instanceof ConfigError ? error.message : `Failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}

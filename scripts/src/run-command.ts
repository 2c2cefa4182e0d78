import { ConfigError } from '@orders/config';

/** Runs an operator command: a clear message and exit code 1 on failure, never a stack trace for known faults. */
export function runCommand(command: () => Promise<void>): void {
  command().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error instanceof ConfigError ? error.message : `Failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}

import { removeLeftoversOfDeadRuns } from '@orders/testing';

/**
 * Removes what earlier runs killed before their end left (their id is in each name, and in each
 * process's environment: TEST_RUN_ID, vitest.config.ts): their apps and redis-servers still
 * running, their databases, keys and Redis data directories. A run under way beside this one (its
 * vitest process alive) keeps all of its own.
 */
export default async function removeLeftoversOfEndedRuns(): Promise<void> {
  const removed = await removeLeftoversOfDeadRuns();
  if (removed.processes + removed.databases.length + removed.keys + removed.directories.length > 0) {
    console.warn(
      `Removed what test runs killed before their end left: ${removed.processes} process(es), ${removed.databases.length} database(s), ${removed.keys} Redis key(s), ${removed.directories.length} Redis data directory(ies)`,
    );
  }
}

import { defineConfig } from 'vitest/config';
import LongestFirstSequencer from './vitest.sequencer.js';

export default defineConfig({
  resolve: {
    // workspace packages resolve to their TypeScript sources (the "source" export condition)
    conditions: ['source'],
  },
  ssr: {
    resolve: { conditions: ['source'] },
  },
  test: {
    include: ['apps/*/test/**/*.test.ts', 'libs/*/test/**/*.test.ts', 'scripts/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits as long as an answer may take with four files, their apps and a browser
    // on two busy cores: vitest's 1 s default failed a console page that was only slow
    expect: { poll: { timeout: 10_000 } },
    // files run in parallel: each owns its database, key prefix and queue prefix
    fileParallelism: true,
    // vitest's default is one file at a time on two cores (cores - 1); the files mostly wait
    // on Redis, MySQL and the processes they start (the whole run kept 1.3 of 2 cores busy with
    // three side by side), so four side by side, each still with its own names
    maxWorkers: 4,
    pool: 'forks',
    // a worker process keeps the modules it loaded for its next file: loading the apps again
    // for each was 130 s of a 340 s run here (2026-12-01). Files share no state but what they
    // name with their own database, prefixes and ports; none mocks a module or sets globals.
    isolate: false,
    sequence: { sequencer: LongestFirstSequencer },
    reporters: ['default'],
  },
});

import { defineConfig } from 'vitest/config';

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
    // files run in parallel: each owns its database, key prefix and queue prefix
    fileParallelism: true,
    pool: 'forks',
    reporters: ['default'],
  },
});

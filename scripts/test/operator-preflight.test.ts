import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

/** Nothing listens on port 1: a service that is down. */
const REDIS_DOWN = 'redis://127.0.0.1:1';
const MYSQL_DOWN = 'mysql://root@127.0.0.1:1/orders';

describe('operator commands say which service is down, as npm start does', () => {
  let env: TestEnv;

  async function command(script: string, args: string[], overrides: Record<string, string>): Promise<{ exitCode: number; output: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--conditions=source', '--import', 'tsx', `scripts/src/${script}.ts`, ...args], {
        cwd: root,
        env: { ...process.env, ...env.env, ...overrides },
      });
      return { exitCode: 0, output: stdout + stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { exitCode: failed.code, output: failed.stdout + failed.stderr };
    }
  }

  beforeAll(async () => {
    env = await createTestEnv('operator_preflight');
  }, 60_000);

  afterAll(async () => {
    await env?.cleanup();
  });

  it('npm run dlq with Redis down: exit 1 and where Redis was looked for', async () => {
    const { exitCode, output } = await command('dlq', ['list'], { REDIS_URL: REDIS_DOWN });
    expect(exitCode).toBe(1);
    expect(output).toContain(`Failed: Redis is not reachable at ${REDIS_DOWN}`);
    expect(output).toContain('Start redis-server or set REDIS_URL');
  });

  it('npm run reconcile with MySQL down: exit 1 and where MySQL was looked for', async () => {
    const { exitCode, output } = await command('reconcile', [], { MYSQL_URL: MYSQL_DOWN });
    expect(exitCode).toBe(1);
    expect(output).toContain(`Failed: MySQL is not reachable at ${MYSQL_DOWN}`);
  });

  it('npm run migrate needs MySQL alone: it migrates while Redis is down', async () => {
    const { exitCode, output } = await command('migrate', [], { REDIS_URL: REDIS_DOWN });
    expect([exitCode, output]).toEqual([0, expect.stringContaining('Database is up to date.')]);
  });
});

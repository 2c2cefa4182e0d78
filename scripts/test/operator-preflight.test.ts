import { createTestEnv, runOperatorCommand, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Nothing listens on port 1: a service that is down. */
const REDIS_DOWN = 'redis://127.0.0.1:1';
const MYSQL_DOWN = 'mysql://root@127.0.0.1:1/orders';

describe('operator commands say which service is down, as npm start does', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('operator_preflight');
  }, 60_000);

  afterAll(async () => {
    await env?.cleanup();
  });

  it('npm run dlq with Redis down: exit 1 and where Redis was looked for', async () => {
    const { exitCode, output } = await runOperatorCommand('dlq', ['list'], { ...env.env, REDIS_URL: REDIS_DOWN });
    expect(exitCode).toBe(1);
    expect(output).toContain(`Failed: Redis is not reachable at ${REDIS_DOWN}`);
    expect(output).toContain('Start redis-server or set REDIS_URL');
  });

  it('npm run reconcile with MySQL down: exit 1 and where MySQL was looked for', async () => {
    const { exitCode, output } = await runOperatorCommand('reconcile', [], { ...env.env, MYSQL_URL: MYSQL_DOWN });
    expect(exitCode).toBe(1);
    expect(output).toContain(`Failed: MySQL is not reachable at ${MYSQL_DOWN}`);
  });

  it('npm run migrate needs MySQL alone: it migrates while Redis is down', async () => {
    const { exitCode, output } = await runOperatorCommand('migrate', [], { ...env.env, REDIS_URL: REDIS_DOWN });
    expect([exitCode, output]).toEqual([0, expect.stringContaining('Database is up to date.')]);
  });
});

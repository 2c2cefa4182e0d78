import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '@orders/config';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

describe('npm run token', () => {
  it('prints one line, the token, so that TOKEN=$(npm run -s token -- buyer alice) works', async () => {
    const { AUTH_JWT_SECRET: _unused, ...env } = process.env;
    const { stdout } = await run('npm', ['run', '-s', 'token', '--', 'buyer', 'alice'], { cwd: root, env });
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const [header, payload, signature] = lines[0]!.split('.');
    // signed with the development secret a fresh checkout runs with
    expect(createHmac('sha256', loadConfig({}).AUTH_JWT_SECRET).update(`${header}.${payload}`).digest('base64url')).toBe(signature);
    expect(JSON.parse(Buffer.from(payload!, 'base64url').toString())).toMatchObject({ sub: 'alice', role: 'buyer' });
  });

  /** The command run as `npm run token -- ...args`, from its source; its exit code and what it wrote. */
  async function token(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--conditions=source', '--import', 'tsx', 'scripts/src/token.ts', ...args], { cwd: root });
      return { exitCode: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { exitCode: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  }

  it.each([
    { args: ['buyer', 'ann smith'], says: "sub must be 1 to 64 letters, digits or . _ : @ - (as the api accepts), not 'ann smith'" },
    { args: ['buyer', 'x'.repeat(65)], says: 'sub must be 1 to 64 letters' },
    { args: ['buyer', 'alice', 'extra'], says: 'too many arguments: extra' },
    { args: ['owner', 'alice'], says: "role must be buyer, merchant or admin, not 'owner'" },
  ])('prints no token the api would refuse: $args', async ({ args, says }) => {
    const { exitCode, stdout, stderr } = await token(...args);
    expect([exitCode, stdout]).toEqual([1, '']);
    expect(stderr).toContain(says);
  });

  it('accepts every subject the api accepts', async () => {
    const { exitCode, stdout } = await token('merchant', 'shop-1.eu:north@acme_co');
    expect(exitCode).toBe(0);
    expect(JSON.parse(Buffer.from(stdout.trim().split('.')[1]!, 'base64url').toString())).toMatchObject({ sub: 'shop-1.eu:north@acme_co', role: 'merchant' });
  });
});

import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '@orders/config';
import { runOperatorCommand } from '@orders/testing';
import { describe, expect, it } from 'vitest';
import { tokenRequest } from '../src/token-request.js';

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

  it('prints no token and exits 1 for a token the api would refuse, saying why', async () => {
    const refused = await runOperatorCommand('token', ['buyer', 'ann smith'], {});
    expect(refused).toMatchObject({ exitCode: 1, stdout: '' });
    expect(refused.stderr).toContain("sub must be 1 to 64 letters, digits or . _ : @ | + -, and not . or .. (as the api accepts), not 'ann smith'");
  });

  it.each([
    { args: ['buyer', 'x'.repeat(65)], says: 'sub must be 1 to 64 letters' },
    { args: ['buyer', '..'], says: "and not . or .. (as the api accepts), not '..'" },
    { args: ['buyer', 'alice', 'extra'], says: 'too many arguments: extra' },
    { args: ['owner', 'alice'], says: "role must be buyer, merchant or admin, not 'owner'" },
  ])('refuses what the api would refuse: $args', ({ args, says }) => {
    expect(() => tokenRequest(args)).toThrow(says);
  });

  it('prints a token living no longer than the api accepts: an hour when AUTH_JWT_MAX_LIFETIME_MS is one, a day at most', async () => {
    const lifetimeOf = async (settings: Record<string, string>) => {
      const printed = await runOperatorCommand('token', ['admin', 'ops'], settings);
      const { exp, iat } = JSON.parse(Buffer.from(printed.stdout.trim().split('\n').at(-1)!.split('.')[1]!, 'base64url').toString()) as { exp: number; iat: number };
      return exp - iat;
    };
    expect([await lifetimeOf({ AUTH_JWT_MAX_LIFETIME_MS: '3600000' }), await lifetimeOf({})]).toEqual([3600, 86_400]);
  });

  it('asks for every subject the api accepts, and a default subject per role', () => {
    expect(tokenRequest(['merchant', 'shop-1.eu:north@acme_co'])).toEqual({ role: 'merchant', sub: 'shop-1.eu:north@acme_co' });
    expect(tokenRequest([])).toEqual({ role: 'buyer', sub: 'demo-buyer' });
    expect(tokenRequest(['admin'])).toEqual({ role: 'admin', sub: 'ops' });
  });
});

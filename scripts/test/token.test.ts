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
});

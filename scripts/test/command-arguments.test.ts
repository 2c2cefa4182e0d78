import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestEnv, runOperatorCommand, type OperatorCommand, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Nothing listens on port 1: a command that reaches for a service fails saying so, not with its usage. */
const SERVICES_DOWN = { MYSQL_URL: 'mysql://root@127.0.0.1:1/orders', REDIS_URL: 'redis://127.0.0.1:1' };

/** Each command, how its usage begins, a way of asking for help, and arguments it does not take. */
const COMMANDS: Array<{ script: OperatorCommand; usage: string; help: string; refused: string[][] }> = [
  { script: 'migrate', usage: 'usage: npm run migrate\n', help: '--help', refused: [['up']] },
  { script: 'start', usage: 'usage: npm start [-- --demo-shop]\n', help: '-h', refused: [['--port', '4000']] },
  { script: 'dlq', usage: 'usage: npm run dlq -- list | replay <id> | replay-all [--yes] | drop <id> [--yes]\n', help: '--help', refused: [['purge'], ['replay'], ['drop', 'a', 'b'], ['list', '--yes'], ['replay', 'a', '--yes']] },
  { script: 'reconcile', usage: 'usage: npm run reconcile [-- --repair [--into-empty-prefix]]\n', help: '-h', refused: [['--repiar'], ['--into-empty-prefix']] },
  { script: 'token', usage: 'usage: npm run token -- [buyer|merchant|admin] [sub]\n', help: '--help', refused: [['buyer', 'alice', 'extra']] },
  { script: 'stack', usage: 'usage: npm run stack [-- <file>]\n', help: '-h', refused: [['a.txt', 'b.txt']] },
];
const SEED_USAGE = 'usage: npm run seed [-- --demo-shop]\n';

// each command is a process of its own, which loads the apps' code: a few at a time
describe.concurrent('every operator command reads its arguments before it reaches MySQL or Redis', { timeout: 120_000 }, () => {
  it.each(COMMANDS)('$script $help prints its usage and exits 0, with MySQL and Redis down', async ({ script, usage, help }) => {
    const answer = await runOperatorCommand(script, [help], SERVICES_DOWN);
    expect(answer.exitCode).toBe(0);
    expect(answer.stdout.slice(0, usage.length)).toBe(usage);
    expect(answer.stderr).toBe('');
  });

  it.each(COMMANDS.flatMap(({ script, usage, refused }) => refused.map((args) => ({ script, usage, args, shown: args.join(' ') }))))(
    '$script $shown: says why, prints its usage and exits 1, with MySQL and Redis down',
    async ({ script, usage, args }) => {
      const answer = await runOperatorCommand(script, args, SERVICES_DOWN);
      expect(answer.exitCode).toBe(1);
      expect(answer.stdout).toBe('');
      expect(answer.stderr).toContain(`\n${usage}`);
      expect(answer.stderr).not.toMatch(/not reachable|Failed/);
    },
  );
});

describe('npm run seed against a real database', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('seed_arguments');
  });
  afterAll(async () => env?.cleanup());

  it('answers --help and -h with its usage and refuses --yes, creating no demo SKU, promotion or coupon: asking for help never opens a store-wide discount', { timeout: 120_000 }, async () => {
    const [help, h, yes] = await Promise.all([runOperatorCommand('seed', ['--help'], env.env), runOperatorCommand('seed', ['-h'], env.env), runOperatorCommand('seed', ['--yes'], env.env)]);
    for (const answer of [help, h]) expect([answer.exitCode, answer.stdout.slice(0, SEED_USAGE.length), answer.stderr]).toEqual([0, SEED_USAGE, '']);
    expect([yes.exitCode, yes.stdout, yes.stderr]).toEqual([1, '', expect.stringContaining(`unknown argument: --yes\n${SEED_USAGE}`)]);
    expect(await env.db.selectFrom('skus').select('sku_id').execute()).toEqual([]);
    expect(await env.db.selectFrom('promotions').select('promotion_id').execute()).toEqual([]);
    expect(await env.db.selectFrom('coupons').select('code').execute()).toEqual([]);
  });

  it('refuses to seed a stack running with NODE_ENV=production, or start the demo system on it, unless told it is a demo shop (--demo-shop), then seeds it', { timeout: 120_000 }, async () => {
    const production = { ...env.env, NODE_ENV: 'production', AUTH_JWT_SECRET: 'a-real-jwt-secret-of-this-shop-0123456789', PAYMENT_CALLBACK_SECRET: 'a-real-payment-secret-0123456789', WAREHOUSE_CALLBACK_SECRET: 'a-real-warehouse-secret-0123456789' };
    const refused = await runOperatorCommand('seed', [], production);
    expect([refused.exitCode, refused.stdout, refused.stderr]).toEqual([1, '', expect.stringContaining('NODE_ENV is production: the demo catalog would open a store-wide discount')]);
    // npm start would seed it too, run simulators in place of the payment system and print an admin token
    const notStarted = await runOperatorCommand('start', [], production);
    expect([notStarted.exitCode, notStarted.stdout, notStarted.stderr]).toEqual([1, '', expect.stringContaining('it would print an admin token signed with the shop’s secret. For a demo stack, run it again with --demo-shop')]);
    expect(await env.db.selectFrom('coupons').select('code').execute()).toEqual([]);

    const seeded = await runOperatorCommand('seed', ['--demo-shop'], production);
    expect([seeded.exitCode, seeded.stdout]).toEqual([0, expect.stringMatching(/^Seeded: /)]);
    expect((await env.db.selectFrom('coupons').select('code').execute()).map((row) => row.code)).toContain('WELCOME15');
  });
});

describe('a flag given to npm run before --', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  let env: TestEnv;

  /** The command as an operator types it, through npm. */
  async function npmRun(args: string[], overrides: Record<string, string> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    return promisify(execFile)('npm', ['run', '-s', ...args], { cwd: root, env: { ...process.env, ...env.env, ...overrides } }).then(
      ({ stdout, stderr }) => ({ exitCode: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ exitCode: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
  }

  beforeAll(async () => {
    env = await createTestEnv('npm_kept_flags');
  });
  afterAll(async () => env?.cleanup());

  it('npm run reconcile --repair and npm run seed --demo-shop: npm keeps the flag, and the command says so and does nothing, rather than check where a repair was asked for', { timeout: 120_000 }, async () => {
    const repair = await npmRun(['reconcile', '--repair']);
    expect([repair.exitCode, repair.stdout]).toEqual([1, '']);
    expect(repair.stderr).toContain('npm kept --repair for itself and did not pass it on: put it after --, as below\nusage: npm run reconcile [-- --repair [--into-empty-prefix]]\n');

    // in production the seed asked for the flag it was given, again and again
    const production = { NODE_ENV: 'production', AUTH_JWT_SECRET: 'a-real-jwt-secret-of-this-shop-0123456789', PAYMENT_CALLBACK_SECRET: 'a-real-payment-secret-0123456789', WAREHOUSE_CALLBACK_SECRET: 'a-real-warehouse-secret-0123456789' };
    const seed = await npmRun(['seed', '--demo-shop'], production);
    expect([seed.exitCode, seed.stdout]).toEqual([1, '']);
    expect(seed.stderr).toContain('npm kept --demo-shop for itself and did not pass it on: put it after --, as below\nusage: npm run seed [-- --demo-shop]\n');
    expect(await env.db.selectFrom('coupons').select('code').execute()).toEqual([]);
  });

  it("npm run reconcile --reapir, a flag npm does not know, is refused too rather than run as a plain check that exits 0; npm's own flags and the settings of an npmrc file run it", { timeout: 120_000 }, async () => {
    const typo = await npmRun(['reconcile', '--reapir']);
    expect([typo.exitCode, typo.stdout]).toEqual([1, '']);
    expect(typo.stderr).toContain('npm kept --reapir for itself and did not pass it on: put it after --, as below\nusage: npm run reconcile [-- --repair [--into-empty-prefix]]\n');
    const two = await npmRun(['reconcile', '--reapir', '--sku=PHONE-X']);
    expect([two.exitCode, two.stderr]).toEqual([1, expect.stringContaining('npm kept --reapir --sku for itself and did not pass them on: put them after --')]);

    // an old user .npmrc: npm knows always-auth no more and exports it as npm_config_always_auth all the same
    const home = await mkdtemp(join(tmpdir(), 'npmrc-'));
    try {
      await writeFile(join(home, '.npmrc'), 'always-auth=true\nnodedir = /usr\n');
      const plain = await npmRun(['reconcile', '--loglevel=warn'], { npm_config_userconfig: join(home, '.npmrc') });
      expect([plain.exitCode, plain.stdout]).toEqual([0, expect.stringContaining('No drift')]);
    } finally {
      await rm(home, { recursive: true });
    }
  });
});

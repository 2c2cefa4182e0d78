import { createServer, type Socket } from 'node:net';
import { createTestEnv, runOperatorCommand, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, it } from 'vitest';

/** Nothing listens on port 1: a service that is down. */
const REDIS_DOWN = 'redis://127.0.0.1:1';
const MYSQL_DOWN = 'mysql://root@127.0.0.1:1/orders';

/**
 * No command changes what another reads (migrate finds the test's database up to date), so the
 * cases run side by side: first the three that wait out a timeout the commands fix, not a
 * setting (10 s for a silent MySQL, seconds for a silent Redis), alone, as each must end within
 * its bound counting its own start; then the rest.
 */
describe('operator commands say which service is down, as npm start does', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('operator_preflight');
  }, 60_000);

  afterAll(async () => {
    await env?.cleanup();
  });

  describe.concurrent('commands held by a silent service until its timeout', () => {
    it('npm run migrate against a MySQL that takes connections and answers nothing: exit 1 after 10 s, saying where MySQL was looked for', async ({ expect }) => {
      const held = new Set<Socket>();
      const silent = createServer((socket) => held.add(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const mysqlSilent = `mysql://root@127.0.0.1:${(silent.address() as { port: number }).port}/orders`;
      try {
        const started = Date.now();
        const { exitCode, output } = await runOperatorCommand('migrate', [], { ...env.env, MYSQL_URL: mysqlSilent });
        expect(exitCode).toBe(1);
        expect(output).toContain(`Failed: MySQL is not reachable at ${mysqlSilent}`);
        expect(Date.now() - started).toBeLessThan(30_000);
      } finally {
        for (const socket of held) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it.for(['dlq', 'reconcile'] as const)('npm run %s against a Redis that takes connections and answers nothing: exit 1 within seconds, saying where Redis was looked for', async (command, { expect }) => {
      const held = new Set<Socket>();
      const silent = createServer((socket) => held.add(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const redisSilent = `redis://127.0.0.1:${(silent.address() as { port: number }).port}`;
      try {
        const started = Date.now();
        const { exitCode, output } = await runOperatorCommand(command, command === 'dlq' ? ['list'] : [], { ...env.env, REDIS_URL: redisSilent }, { timeoutMs: 40_000 });
        expect(exitCode).toBe(1);
        expect(output).toContain(`Failed: Redis is not reachable at ${redisSilent}`);
        // the command waits 3 s for Redis; npm run's build check and Node's start took 13 s more
        // with five test files on two cores, as migrate's 10 s wait above is given 30 s
        expect(Date.now() - started).toBeLessThan(25_000);
      } finally {
        for (const socket of held) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });
  });

  describe('commands that end sooner', () => {
    it.concurrent('npm run dlq with Redis down: exit 1 and where Redis was looked for', async ({ expect }) => {
      const { exitCode, output } = await runOperatorCommand('dlq', ['list'], { ...env.env, REDIS_URL: REDIS_DOWN });
      expect(exitCode).toBe(1);
      expect(output).toContain(`Failed: Redis is not reachable at ${REDIS_DOWN}`);
      expect(output).toContain('Start redis-server or set REDIS_URL');
    });

    it.concurrent('npm run reconcile with MySQL down: exit 1 and where MySQL was looked for', async ({ expect }) => {
      const { exitCode, output } = await runOperatorCommand('reconcile', [], { ...env.env, MYSQL_URL: MYSQL_DOWN });
      expect(exitCode).toBe(1);
      expect(output).toContain(`Failed: MySQL is not reachable at ${MYSQL_DOWN}`);
    });

    it.concurrent('npm run reconcile says which of the password or the database MySQL refused, not that it is not reachable', async ({ expect }) => {
      const url = new URL(env.config.MYSQL_URL);
      url.password = 'not-the-password';
      const wrongPassword = await runOperatorCommand('reconcile', [], { ...env.env, MYSQL_URL: url.toString() });
      expect([wrongPassword.exitCode, wrongPassword.output]).toEqual([1, expect.stringContaining('Check the user and password in MYSQL_URL')]);
      expect(wrongPassword.output).toContain(`Failed: MySQL at ${url.toString().replace(':not-the-password@', ':***@')} refused the user`);
      expect(wrongPassword.output).not.toContain('not-the-password');
      url.password = '';
      url.pathname = '/no_such_shop';
      const noDatabase = await runOperatorCommand('reconcile', [], { ...env.env, MYSQL_URL: url.toString() });
      expect([noDatabase.exitCode, noDatabase.output]).toEqual([1, expect.stringContaining(`Failed: MySQL at ${url.toString()} has no such database`)]);
    });

    it.concurrent.for(['dlq', 'reconcile'] as const)('npm run %s against a Redis that answers its check, then stops answering: exit 1 after REDIS_COMMAND_TIMEOUT_MS, not held for ever', async (command, { expect }) => {
      // answers what connecting and the check ask (INFO, PING, CLIENT), then nothing more on that connection
      const held = new Set<Socket>();
      const stopsAnswering = createServer((socket) => {
        held.add(socket);
        let answering = true;
        socket.on('data', (chunk) => {
          for (const [, name] of chunk.toString().matchAll(/\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/g)) {
            const asked = name!.toUpperCase();
            if (!answering || !['INFO', 'PING', 'CLIENT'].includes(asked)) {
              answering = false;
              return;
            }
            const info = 'redis_version:7.2.0\r\nloading:0\r\nmaxmemory_policy:noeviction\r\n';
            socket.write(asked === 'INFO' ? `$${info.length}\r\n${info}\r\n` : asked === 'PING' ? '+PONG\r\n' : '+OK\r\n');
          }
        });
      });
      await new Promise<void>((resolve) => stopsAnswering.listen(0, '127.0.0.1', resolve));
      const redisStopping = `redis://127.0.0.1:${(stopsAnswering.address() as { port: number }).port}`;
      try {
        const started = Date.now();
        const { exitCode, output } = await runOperatorCommand(command, command === 'dlq' ? ['list'] : [], { ...env.env, REDIS_URL: redisStopping, REDIS_COMMAND_TIMEOUT_MS: '1000' }, { timeoutMs: 20_000 });
        expect([exitCode, output]).toEqual([1, expect.stringContaining(`Failed: Redis at ${redisStopping} stopped answering: a command had no answer within REDIS_COMMAND_TIMEOUT_MS (1000 ms)`)]);
        expect(output).not.toContain('not reachable');
        expect(Date.now() - started).toBeLessThan(15_000);
      } finally {
        for (const socket of held) socket.destroy();
        await new Promise((resolve) => stopsAnswering.close(resolve));
      }
    });

    it.concurrent('npm run dlq and npm run reconcile first name the Redis (its password starred), the prefix and the MySQL database they act on, so a wrong one is seen at once', async ({ expect }) => {
      const redisUrl = new URL(env.config.REDIS_URL);
      redisUrl.password = 'the-redis-password';
      const withPassword = { ...env.env, REDIS_URL: redisUrl.toString() };
      const starred = redisUrl.toString().replace(':the-redis-password@', ':***@');
      const [dlq, reconcile] = await Promise.all([runOperatorCommand('dlq', ['list'], withPassword), runOperatorCommand('reconcile', [], withPassword)]);
      expect(dlq.output.split('\n')[0]).toBe(`Redis at ${starred}, queue prefix ${env.config.QUEUE_PREFIX}`);
      const database = new URL(env.config.MYSQL_URL).pathname.slice(1);
      expect(reconcile.output.split('\n')[0]).toBe(`Redis at ${starred}, key prefix ${env.config.REDIS_KEY_PREFIX}; MySQL at ${env.config.MYSQL_URL}, database ${database}`);
      for (const answer of [dlq, reconcile]) expect(answer.output).not.toContain('the-redis-password');
    });

    it.concurrent('npm run migrate needs MySQL alone: it migrates while Redis is down', async ({ expect }) => {
      const { exitCode, output } = await runOperatorCommand('migrate', [], { ...env.env, REDIS_URL: REDIS_DOWN });
      expect([exitCode, output]).toEqual([0, expect.stringContaining('Database is up to date.')]);
    });
  });
});

import { startTcpProxy, waitFor, type TcpProxy } from '@orders/testing';
import { Redis, type RedisOptions } from 'ioredis';
import { TEST_REDIS_URL } from './test-keys.js';

/**
 * A Redis connection through a link the test controls (`TcpProxy`: hold the answers, cut it),
 * named so that `ranBehind` can tell, from another connection, that Redis has run a command
 * for it while its answers are held: the last one it ran reads `command` (a prefix: `eval`
 * for EVAL and EVALSHA). Call `idle` before holding the answers, so that an earlier command of
 * the same name does not count. The link's resets are expected: its errors are not reported.
 */
export async function redisBehindLink(
  name: string,
  options: RedisOptions = {},
): Promise<{ link: TcpProxy; client: Redis; idle: () => Promise<void>; ranBehind: (command: string, observer: Redis) => Promise<void> }> {
  const target = new URL(TEST_REDIS_URL);
  const link = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
  const client = new Redis({ host: '127.0.0.1', port: link.port, db: Number(target.pathname.slice(1) || 0), connectionName: name, ...options });
  client.on('error', () => undefined);
  const ranBehind = (command: string, observer: Redis) =>
    waitFor(
      async () => ((await observer.client('LIST')) as string).split('\n').some((line) => line.includes(`name=${name} `) && line.includes(` cmd=${command}`)) || null,
      { what: `Redis to run ${command} for ${name}`, timeoutMs: 5_000, explain: async () => String(await observer.client('LIST')) },
    ).then(() => undefined);
  const idle = async () => void (await client.ping());
  return { link, client, idle, ranBehind };
}

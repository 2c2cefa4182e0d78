import { urlWithoutPassword, type Config } from '@orders/config';
import { connectRedis, type RedisClient } from '@orders/stock';

/**
 * What a command needs reachable: MySQL, with its database created when missing (the
 * commands that set the system up) or as it is (those that read it: an empty database
 * made on the spot would look like a shop without SKUs); Redis.
 */
export interface ServicesNeeded {
  mysql?: 'create-database' | 'existing-database';
  redis?: boolean;
}

/** How long Redis has to take the connection, then to answer it. */
const REDIS_ANSWER_MS = 3000;

/** Fails with a message an operator can act on when MySQL or Redis cannot be reached. */
export async function checkServices(config: Config, needed: ServicesNeeded = { mysql: 'create-database', redis: true }): Promise<void> {
  // MySQL's code is loaded only by a command that reaches MySQL: dlq needs Redis alone
  if (needed.mysql) {
    const { ensureDatabase, mysqlStartFailure } = await import('@orders/persistence');
    try {
      if (needed.mysql === 'create-database') await ensureDatabase(config.MYSQL_URL);
      else await selectOne(config.MYSQL_URL);
    } catch (error) {
      throw mysqlStartFailure(config.MYSQL_URL, error);
    }
  }
  if (!needed.redis) return;
  // a Redis that takes the connection and answers nothing (frozen, a dead host behind a proxy) fails it too, rather than holding the command for ever
  const redis = connectRedis(config, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: REDIS_ANSWER_MS, commandTimeout: REDIS_ANSWER_MS, retryStrategy: () => null });
  // connect() then fails with "Connection is closed."; the error event says why (refused, timed out)
  let why: Error | undefined;
  redis.on('error', (error: Error) => (why ??= error));
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`Redis is not reachable at ${redisLocation(config)} (${(why ?? (error as Error)).message}). Start redis-server or set REDIS_URL (REDIS_CLUSTER_NODES for a cluster).`, { cause: error });
  } finally {
    redis.disconnect();
  }
}

/** Where a command looks for Redis, as an operator may read it: its URL with the password starred, or the cluster's nodes. */
export function redisLocation(config: Config): string {
  if (config.REDIS_CLUSTER_NODES.length > 0) return `the cluster nodes ${config.REDIS_CLUSTER_NODES.map(({ host, port }) => `${host}:${port}`).join(', ')}`;
  return urlWithoutPassword(config.REDIS_URL);
}

/**
 * The Redis connection a command works on once checkServices passed. It fails at once when
 * Redis is away rather than waiting for it, and a Redis that stops answering mid-run fails it
 * after REDIS_COMMAND_TIMEOUT_MS (exit 1) rather than holding it, and an operator, for ever.
 */
export async function connectCommandRedis(config: Config): Promise<RedisClient> {
  const redis = connectRedis(config, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true, commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS });
  await redis.connect();
  return redis;
}

/** How ioredis fails a command whose answer did not come within its commandTimeout. */
const UNANSWERED = /^Command timed out/;

/** What a command says when Redis stopped answering mid-run: where, and for how long; any other failure as it is. */
export function unansweredByRedis(config: Config, error: unknown): unknown {
  if (!(error instanceof Error) || !UNANSWERED.test(error.message)) return error;
  return new Error(`Redis at ${redisLocation(config)} stopped answering: a command had no answer within REDIS_COMMAND_TIMEOUT_MS (${config.REDIS_COMMAND_TIMEOUT_MS} ms)`, { cause: error });
}

async function selectOne(mysqlUrl: string): Promise<void> {
  const { createDb } = await import('@orders/persistence');
  const { db, pool } = createDb(mysqlUrl, 1);
  try {
    await pool.promise().query('SELECT 1');
  } finally {
    await db.destroy();
  }
}

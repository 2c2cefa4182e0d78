import type { Config } from '@orders/config';
import { connectRedis } from '@orders/stock';

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
    const { urlWithoutPassword } = await import('@orders/persistence');
    const where = config.REDIS_CLUSTER_NODES.length > 0 ? `the cluster nodes ${config.REDIS_CLUSTER_NODES.map(({ host, port }) => `${host}:${port}`).join(', ')}` : urlWithoutPassword(config.REDIS_URL);
    throw new Error(`Redis is not reachable at ${where} (${(why ?? (error as Error)).message}). Start redis-server or set REDIS_URL (REDIS_CLUSTER_NODES for a cluster).`, { cause: error });
  } finally {
    redis.disconnect();
  }
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

import type { Config } from '@orders/config';
import { ensureDatabase } from '@orders/persistence';
import { connectRedis } from '@orders/stock';

/** Fails with a message an operator can act on when MySQL or Redis cannot be reached. */
export async function checkServices(config: Config): Promise<void> {
  try {
    await ensureDatabase(config.MYSQL_URL);
  } catch (error) {
    throw new Error(`MySQL is not reachable at ${redact(config.MYSQL_URL)} (${(error as Error).message}). Start MariaDB/MySQL or set MYSQL_URL.`, { cause: error });
  }
  const redis = connectRedis(config, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    const where = config.REDIS_CLUSTER_NODES.length > 0 ? `the cluster nodes ${config.REDIS_CLUSTER_NODES.map(({ host, port }) => `${host}:${port}`).join(', ')}` : redact(config.REDIS_URL);
    throw new Error(`Redis is not reachable at ${where} (${(error as Error).message}). Start redis-server or set REDIS_URL (REDIS_CLUSTER_NODES for a cluster).`, { cause: error });
  } finally {
    redis.disconnect();
  }
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

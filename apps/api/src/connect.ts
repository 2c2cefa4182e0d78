import type { Config } from '@orders/config';
import { createMetrics } from '@orders/metrics';
import { CatalogRepository, OrderRepository, StockLedgerRepository, awaitSchema, createDb, migrateDatabase, orderListOptionsOf } from '@orders/persistence';
import { createOrderQueues } from '@orders/queues';
import { Inventory, checkoutTimeoutsOf, connectRedis, logRedisOutages, redisSocketTimeoutMs, type ConnectionLog } from '@orders/stock';
import type { AppDeps } from './app-deps.js';

/**
 * Opens the api's connections. The Redis client fails fast instead of queueing commands
 * while Redis is away, and gives up on an answer after REDIS_COMMAND_TIMEOUT_MS, so a
 * checkout answers 503 rather than hanging.
 */
export interface ApiConnections extends AppDeps {
  /** Writes each connection's outages to the api's log (logRedisOutages), once it has one. */
  logRedisOutages(log: ConnectionLog): void;
  close(): Promise<void>;
}

/** Until MySQL holds the migrations this build needs (awaitSchema), saying so on stderr: started before the deploy's migrate step ran. */
export function awaitMigrations(config: Config): Promise<void> {
  return awaitSchema(config.MYSQL_URL, { waiting: (pending) => console.warn(`waiting for the migrations this build needs (${pending.join(', ')}): the api listens once they have run (the deploy's migrate step)`) });
}

export async function connectApi(config: Config, options: { migrate?: boolean; awaitSchema?: boolean } = {}): Promise<ApiConnections> {
  // before the server and its logger: a start waiting on MySQL says so on stderr
  if (options.migrate) await migrateDatabase(config.MYSQL_URL, { stillMigrating: (message) => console.warn(message) });
  else if (options.awaitSchema) await awaitMigrations(config);
  const { db } = createDb(config.MYSQL_URL, config.MYSQL_POOL_SIZE, config.MYSQL_QUERY_TIMEOUT_MS);
  // a connection taken for dead (socketTimeout) sends nothing of what it had in flight again on the next:
  // each of those commands was answered as failed (its command timeout, shorter), its request 503,
  // and run again it would count a buyer's checkout twice, behind the answer the buyer was given
  const redis = connectRedis(config, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: true,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
    socketTimeout: redisSocketTimeoutMs(config, 'api'),
    autoResendUnfulfilledCommands: false,
  });
  // ioredis' connect() says only "Connection is closed." of a server it never reached; its error event says why
  let unreachable: Error | undefined;
  const noteWhy = (error: Error) => (unreachable ??= error);
  redis.on('error', noteWhy);
  await redis.connect().catch((error: unknown) => {
    throw new Error(`Redis is not reachable (${(unreachable ?? (error as Error)).message}): start it, or set REDIS_URL (REDIS_CLUSTER_NODES for a cluster)`, { cause: error });
  });
  redis.off('error', noteWhy);
  // BullMQ defines its scripts (about 60) on the connection it is given, and ioredis copies
  // every script defined on a connection onto each pipeline made from it: the intake makes
  // one per event-loop turn, 32 µs on a shared connection against 5 on one of its own
  const queueConnection = redis.duplicate();
  await queueConnection.connect();
  const queues = createOrderQueues(queueConnection, { prefix: config.QUEUE_PREFIX, attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  // a WAIT holds its connection up to RESERVATION_REPLICA_TIMEOUT_MS while a replica is away:
  // on a connection of their own, the reservations waiting for replicas keep nothing else waiting
  const reservations = config.RESERVATION_REPLICA_ACKS > 0 ? redis.duplicate() : undefined;
  await reservations?.connect();
  // a paid order's cancellation gives its flash-sale units back to the buyer's limit with its restock
  const ledger = new StockLedgerRepository(db);
  const inventory = new Inventory(
    redis,
    config.REDIS_KEY_PREFIX,
    checkoutTimeoutsOf(config),
    {
      // the reservations, a cancel's stock commit and a merchant's stock set wait for replicas
      durability: { replicaAcks: config.RESERVATION_REPLICA_ACKS, timeoutMs: config.RESERVATION_REPLICA_TIMEOUT_MS, connection: reservations },
      soldOutMemoryMs: config.SOLD_OUT_MEMORY_MS,
      limitGivenBackBy: (restock) => ledger.limitGivenBack(restock),
    },
  );
  // units given back anywhere (a cancellation here, an expiry in a worker) end the sold-out memory at once
  const stockReturned = config.SOLD_OUT_MEMORY_MS > 0 ? connectRedis(config, { lazyConnect: true }) : null;
  if (stockReturned) {
    await stockReturned.connect();
    await inventory.followReturnedStock(stockReturned);
  }
  return {
    config,
    redis,
    db,
    queues,
    inventory,
    // the admin search by date finds a presale's children, written when its balance is paid
    orders: new OrderRepository(db, orderListOptionsOf(config), config),
    catalog: new CatalogRepository(db),
    metrics: createMetrics({ app: 'api' }),
    clock: () => new Date(),
    logRedisOutages(log) {
      logRedisOutages(redis, 'stock', log);
      logRedisOutages(queueConnection, 'queues', log, queues.all);
      if (reservations) logRedisOutages(reservations, 'reservations', log);
      if (stockReturned) logRedisOutages(stockReturned, 'returned-stock', log);
    },
    async close() {
      await queues.close();
      await db.destroy();
      queueConnection.disconnect();
      reservations?.disconnect();
      redis.disconnect();
      stockReturned?.disconnect();
    },
  };
}

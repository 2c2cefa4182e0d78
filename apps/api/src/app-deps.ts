import type { Config } from '@orders/config';
import type { OrderMetrics } from '@orders/metrics';
import type { CatalogRepository, OrderDb, OrderRepository } from '@orders/persistence';
import type { OrderQueues } from '@orders/queues';
import type { Inventory, RedisClient } from '@orders/stock';

/** Everything the api talks to, passed in so tests hand it real connections with their own prefixes. */
export interface AppDeps {
  config: Config;
  redis: RedisClient;
  db: OrderDb;
  queues: OrderQueues;
  inventory: Inventory;
  orders: OrderRepository;
  catalog: CatalogRepository;
  metrics: OrderMetrics;
  clock: () => Date;
}


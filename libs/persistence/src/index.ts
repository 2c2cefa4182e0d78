export { createDb, ensureDatabase, migrateToLatest } from './connection.js';
export type { OrderDb } from './connection.js';
export { CatalogRepository, toSku } from './catalog-repository.js';
export { OrderRepository } from './order-repository.js';
export type { OrderListFilter, OrderToPersist, TransitionRequest, TransitionResult } from './order-repository.js';
export type { OrderView } from './order-view.js';
export type * from './schema.js';

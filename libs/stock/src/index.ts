export { Inventory, ReservationNotReplicated } from './inventory.js';
export type { CheckoutTimeouts, ReservationDurability, CommitOutcome, ReserveStockRequest, Reservation, SkuStock, SkuStockRules, StockTransfer } from './inventory.js';
export { MAX_STOCK_BUCKETS, StockKeys, orderGroupSuffix, splitStock } from './stock-keys.js';
export { StockRebalancer } from './stock-rebalancer.js';
export type { RedisClient } from './stock-scripts.js';
export { connectRedis, mastersOf } from './redis-connection.js';
export { PipelinePerTurn } from './pipeline-per-turn.js';
export type { BatchGuard } from './pipeline-per-turn.js';
export type { RedisLocation } from './redis-connection.js';

export { Inventory } from './inventory.js';
export type { CheckoutTimeouts, CommitOutcome, ReserveStockRequest, Reservation, SkuStock, SkuStockRules } from './inventory.js';
export { StockKeys } from './stock-keys.js';
export type { RedisClient } from './stock-scripts.js';

export { answerWithin } from './answer-within.js';
export { createMetrics, secondsSince } from './order-metrics.js';
export { serveClusterMetrics } from './cluster-metrics.js';
export type { OrderMetrics, CheckoutOutcome, CouponUses, RedisMemory, StockDrift, StockReport } from './order-metrics.js';

export { createMetrics } from './order-metrics.js';
export type { OrderMetrics, CheckoutOutcome, StockDrift } from './order-metrics.js';

export { createMetrics } from './order-metrics.js';
export type { OrderMetrics, CheckoutOutcome } from './order-metrics.js';

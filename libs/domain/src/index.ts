export * from './errors.js';
export * from './catalog.js';
export * from './order.js';
export * from './pricing.js';
export * from './order-process.js';
export * from './processes/index.js';

export * from './queue-names.js';
export * from './order-queues.js';

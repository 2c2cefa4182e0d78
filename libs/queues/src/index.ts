export * from './queue-names.js';
export * from './order-queues.js';
export * from './process-jobs.js';
export * from './dead-letters.js';

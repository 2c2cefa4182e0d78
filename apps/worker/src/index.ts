export { connectWorker, startWorkers } from './worker-app.js';
export type { RunningWorkers, WorkerDeps } from './worker-app.js';
export { workerLog } from './worker-log.js';
export { closeUnpaidOrder } from './processors/expire-order.js';
export { OrderWriter } from './processors/order-writer.js';
export { StockReconciler } from './stock-reconciler.js';
export type { ReconcileReport, SaleRulesDrift, SkuDrift } from './stock-reconciler.js';

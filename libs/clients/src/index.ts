export { Breaker } from './breaker.js';
export type { BreakerMetrics, BreakerSettings } from './breaker.js';
export { ExternalRefused, ExternalUnavailable } from './errors.js';
export { PaymentClient } from './payment-client.js';
export type { PaymentRequest, RefundRequest } from './payment-client.js';
export { WarehouseClient } from './warehouse-client.js';
export type { FulfilmentChange, FulfilmentRequest } from './warehouse-client.js';
export { signBody, signatureMatches } from './signature.js';
export { breakerSettings } from './settings.js';

export { buildApp } from './app.js';
export type { AppDeps } from './app-deps.js';
export { connectApi } from './connect.js';
export { issueToken } from './tokens.js';
export { ROLES, SUBJECT } from './plugins/auth.js';
export type { Role } from './plugins/auth.js';
export { createSkuWithStock } from './catalog-admin.js';
export { createCoupon } from './pricing-admin.js';

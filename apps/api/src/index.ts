export { buildApp } from './app.js';
export type { AppDeps } from './app-deps.js';
export { connectApi } from './connect.js';
export { ROLES, SUBJECT, issueToken } from './tokens.js';
export type { Role } from './tokens.js';
export { changeFlashSale, createSkuWithStock } from './catalog-admin.js';
export { createCoupon, endCoupon } from './pricing-admin.js';
export { consoleShopTags } from './plugins/console.js';

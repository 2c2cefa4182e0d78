export { loadConfig, ConfigError, MAX_PRICE_CENTS, minorUnitsPerUnit } from './load-config.js';
export type { Config } from './load-config.js';
export { BUNDLED_APPS, appEntry, isBundled } from './app-entries.js';
export { SERVICE_NODE_OPTIONS, serviceNodeOptions } from './node-options.js';
export { urlWithoutPassword } from './url-without-password.js';

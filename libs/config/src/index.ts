export { loadConfig, ConfigError } from './load-config.js';
export type { Config } from './load-config.js';

import type { Config } from '@orders/config';
import type { BreakerSettings } from './breaker.js';

/** The breaker settings of one external system, from config. */
export function breakerSettings(config: Config, system: 'payment' | 'warehouse'): BreakerSettings {
  return system === 'payment'
    ? {
        timeoutMs: config.PAYMENT_BREAKER_TIMEOUT_MS,
        errorThresholdPercent: config.PAYMENT_BREAKER_ERROR_THRESHOLD_PERCENT,
        resetMs: config.PAYMENT_BREAKER_RESET_MS,
        volumeThreshold: config.PAYMENT_BREAKER_VOLUME_THRESHOLD,
        retryDelayMs: config.EXTERNAL_RETRY_DELAY_MS,
      }
    : {
        timeoutMs: config.WAREHOUSE_BREAKER_TIMEOUT_MS,
        errorThresholdPercent: config.WAREHOUSE_BREAKER_ERROR_THRESHOLD_PERCENT,
        resetMs: config.WAREHOUSE_BREAKER_RESET_MS,
        volumeThreshold: config.WAREHOUSE_BREAKER_VOLUME_THRESHOLD,
        retryDelayMs: config.EXTERNAL_RETRY_DELAY_MS,
      };
}

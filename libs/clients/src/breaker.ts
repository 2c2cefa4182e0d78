import type { OrderMetrics } from '@orders/metrics';
import CircuitBreaker from 'opossum';
import { ExternalRefused, ExternalUnavailable } from './errors.js';

export interface BreakerSettings {
  timeoutMs: number;
  errorThresholdPercent: number;
  resetMs: number;
  volumeThreshold: number;
  /** a failed call (not an open breaker) is retried after this long */
  retryDelayMs: number;
}

export type BreakerMetrics = Pick<OrderMetrics, 'circuitBreakerState' | 'externalCalls'>;

const STATE = { closed: 0, halfOpen: 1, open: 2 } as const;

/**
 * One opossum breaker per external system and process. Calls time out after
 * `timeoutMs` (the request is aborted, not left running); once `volumeThreshold` calls
 * were made in the rolling window and more than `errorThresholdPercent` of them failed,
 * the breaker opens and rejects at once for `resetMs`, then lets one call through
 * (half-open) to probe. A 4xx answer is the caller's fault and does not count against
 * the system. State and outcomes are metrics: circuit_breaker_state{breaker},
 * external_calls_total{system,outcome}.
 */
export class Breaker {
  private readonly breaker: CircuitBreaker<[(signal: AbortSignal) => Promise<unknown>], unknown>;

  constructor(
    readonly system: string,
    private readonly settings: BreakerSettings,
    private readonly metrics: BreakerMetrics,
  ) {
    this.breaker = new CircuitBreaker((call: (signal: AbortSignal) => Promise<unknown>) => call(AbortSignal.timeout(settings.timeoutMs)), {
      name: system,
      timeout: settings.timeoutMs,
      errorThresholdPercentage: settings.errorThresholdPercent,
      resetTimeout: settings.resetMs,
      volumeThreshold: settings.volumeThreshold,
      errorFilter: (error: unknown) => error instanceof ExternalRefused,
    });
    const state = (value: number) => () => metrics.circuitBreakerState.set({ breaker: system }, value);
    this.breaker.on('open', state(STATE.open));
    this.breaker.on('halfOpen', state(STATE.halfOpen));
    this.breaker.on('close', state(STATE.closed));
    // opossum reports a filtered error (a 4xx) as a success of the system; it is counted as 'refused' below
    this.breaker.on('success', (result: unknown) => {
      if (!(result instanceof ExternalRefused)) metrics.externalCalls.inc({ system, outcome: 'success' });
    });
    this.breaker.on('timeout', () => metrics.externalCalls.inc({ system, outcome: 'timeout' }));
    this.breaker.on('reject', () => metrics.externalCalls.inc({ system, outcome: 'rejected' }));
    this.breaker.on('failure', (error: unknown) => {
      if (!isTimeout(error)) metrics.externalCalls.inc({ system, outcome: 'failure' });
    });
    metrics.circuitBreakerState.set({ breaker: system }, STATE.closed);
  }

  get state(): keyof typeof STATE {
    return this.breaker.opened ? 'open' : this.breaker.halfOpen ? 'halfOpen' : 'closed';
  }

  /** Runs the call through the breaker; throws ExternalUnavailable or ExternalRefused. */
  async call<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return (await this.breaker.fire(call)) as T;
    } catch (error) {
      if (error instanceof ExternalRefused) {
        this.metrics.externalCalls.inc({ system: this.system, outcome: 'refused' });
        throw error;
      }
      // a 5xx (postJson) says nothing of when to try again: wait as after a timeout, not a millisecond
      if (error instanceof ExternalUnavailable) {
        throw error.retryAfterMs > 0 ? error : new ExternalUnavailable(this.system, error.reason, this.settings.retryDelayMs, { cause: error, mayHaveActed: error.mayHaveActed });
      }
      const open = (error as { code?: string }).code === 'EOPENBREAKER';
      throw new ExternalUnavailable(
        this.system,
        open ? 'circuit breaker is open' : isTimeout(error) ? `no answer within ${this.settings.timeoutMs} ms` : (error as Error).message,
        open ? this.settings.resetMs : this.settings.retryDelayMs,
        { cause: error, mayHaveActed: !open && !connectionRefused(error) },
      );
    }
  }

  shutdown(): void {
    this.breaker.shutdown();
  }
}

/** fetch's failure to connect at all: nothing was sent. */
function connectionRefused(error: unknown): boolean {
  return ((error as { cause?: { code?: string } } | undefined)?.cause?.code ?? '') === 'ECONNREFUSED';
}

function isTimeout(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  const name = (error as { name?: string } | undefined)?.name;
  return code === 'ETIMEDOUT' || name === 'TimeoutError';
}

/**
 * The two ways an external call fails, as the order system must treat them:
 * unavailable (timeout, 5xx, network, breaker open) means try again later and never
 * fail the order; refused (4xx) means the request itself is wrong and retrying the
 * same request will not help.
 */
export class ExternalUnavailable extends Error {
  /**
   * false when the request certainly did nothing there: never sent (the breaker open, the
   * connection refused) or answered "not now" (503, 408, 425, 429); true after a timeout, a
   * dropped connection or another 5xx, which the system may have answered after acting on it.
   */
  readonly mayHaveActed: boolean;

  constructor(
    readonly system: string,
    /** what went wrong, without the system's name */
    readonly reason: string,
    /** how long to wait before trying again; the breaker's reset time when it is open */
    readonly retryAfterMs: number,
    options?: { cause?: unknown; mayHaveActed?: boolean },
  ) {
    super(`${system} is unavailable: ${reason}`, options);
    this.mayHaveActed = options?.mayHaveActed ?? true;
    this.name = 'ExternalUnavailable';
  }
}

export class ExternalRefused extends Error {
  constructor(
    readonly system: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${system} refused the request (${status}): ${body.slice(0, 200)}`);
    this.name = 'ExternalRefused';
  }
}

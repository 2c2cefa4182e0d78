import { ExternalRefused, ExternalUnavailable } from './errors.js';

/**
 * Refusals that say "not now" rather than "never": a request timeout, too early, too many
 * requests (a provider throttling a sale's burst). Failing the payment for them would make
 * every buyer pay again; they wait like a 5xx, for as long as retry-after asks.
 */
const NOT_NOW = new Set([408, 425, 429]);

/** A longer retry-after is asked again sooner: a job waiting on it must not outwait its order's deadlines. */
const LONGEST_RETRY_AFTER_MS = 5 * 60_000;

/** retry-after in ms (delay-seconds or an HTTP date), at most LONGEST_RETRY_AFTER_MS; 0 when absent or unreadable. */
function retryAfterMs(header: string | null, now = Date.now()): number {
  if (header === null || header.trim() === '') return 0;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - now;
  return Number.isNaN(ms) ? 0 : Math.min(LONGEST_RETRY_AFTER_MS, Math.max(0, ms));
}

/**
 * POSTs JSON and returns the parsed answer. 5xx, "not now" refusals (408, 425, 429) and
 * network errors are the system being unavailable (they count against its breaker); any
 * other 4xx is a refusal.
 */
export async function postJson<T>(system: string, url: string, body: unknown, signal: AbortSignal): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
  return answerOf<T>(system, response);
}

/** GETs JSON and returns the parsed answer; what fails, fails as for postJson. */
export async function getJson<T>(system: string, url: string, signal: AbortSignal): Promise<T> {
  return answerOf<T>(system, await fetch(url, { signal }));
}

async function answerOf<T>(system: string, response: Response): Promise<T> {
  const text = await response.text();
  if (response.status >= 500 || NOT_NOW.has(response.status)) {
    throw new ExternalUnavailable(system, `answered ${response.status}`, retryAfterMs(response.headers.get('retry-after')), { mayHaveActed: !(response.status === 503 || NOT_NOW.has(response.status)) });
  }
  if (response.status >= 400) throw new ExternalRefused(system, response.status, text);
  return (text ? JSON.parse(text) : {}) as T;
}

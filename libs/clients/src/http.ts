import { ExternalRefused, ExternalUnavailable } from './errors.js';

/**
 * POSTs JSON and returns the parsed answer. 5xx and network errors are the system
 * being unavailable (they count against its breaker); 4xx is a refusal.
 */
export async function postJson<T>(system: string, url: string, body: unknown, signal: AbortSignal): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
  const text = await response.text();
  if (response.status >= 500) throw new ExternalUnavailable(system, `answered ${response.status}`, 0);
  if (response.status >= 400) throw new ExternalRefused(system, response.status, text);
  return (text ? JSON.parse(text) : {}) as T;
}

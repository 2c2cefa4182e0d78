import { signBody } from '@orders/clients';

export interface CallbackSettings {
  secret: string;
  attempts: number;
  retryMs: number;
  log: (message: string) => void;
  /** true once the simulator is closing: pending retries stop */
  stopped?: () => boolean;
}

/**
 * Sends a signed callback the way a real provider does: HMAC-SHA256 of the raw body in
 * `x-signature: sha256=<hex>`, retried until the order system answers 2xx. A 401 or 404
 * will not change by retrying and stops the retries; anything else (409 "not yet",
 * 5xx, no answer) is retried after `retryMs`.
 */
export async function deliverCallback(url: string, payload: unknown, settings: CallbackSettings): Promise<number> {
  const body = JSON.stringify(payload);
  const signature = signBody(settings.secret, body);
  let status = 0;
  for (let attempt = 1; attempt <= settings.attempts && !settings.stopped?.(); attempt++) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-signature': signature },
        body,
        signal: AbortSignal.timeout(5000),
      });
      await response.arrayBuffer();
      status = response.status;
      if (status < 300 || status === 401 || status === 404) return status;
    } catch {
      status = 0;
    }
    await new Promise((resolve) => setTimeout(resolve, settings.retryMs));
  }
  settings.log(`callback to ${url} given up after ${settings.attempts} attempts (last status ${status})`);
  return status;
}

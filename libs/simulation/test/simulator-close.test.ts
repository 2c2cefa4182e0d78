import { createSimulator } from '@orders/simulation';
import { describe, expect, it } from 'vitest';

describe('a simulator closing', () => {
  it('answers the request still on its way and closes, without waiting out the keep-alive (72 s) of its connection', async () => {
    const sim = createSimulator({ latencyMs: 500, failureRate: 0, timeoutRate: 0, outage: false }, { callbackSecret: 'test-callback-secret-0123', callbackAttempts: 1, callbackRetryMs: 10, logLevel: 'silent' }, {});
    let arrived = false;
    sim.app.post('/v1/slow', async (_request, reply) => ((arrived = true), (await sim.injectFaults(reply)) ? { accepted: true } : reply));
    const url = await sim.app.listen({ host: '127.0.0.1', port: 0 });
    const answer = fetch(`${url}/v1/slow`, { method: 'POST' }).then(async (response) => [response.status, await response.json()]);
    // on its way once the route has it: one arriving after close began is answered 503 (a loaded box took over 100 ms to send it)
    while (!arrived) await new Promise((resolve) => setTimeout(resolve, 10));

    const started = Date.now();
    await sim.app.close();
    // the answer takes the 0.5 s latency left; a connection left open would hold close for 72 s
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await answer).toEqual([200, { accepted: true }]);
  });

  it('drops a request held longer than its grace (10 s) and closes: a caller keeping its connection busy does not hold the shutdown', async () => {
    const sim = createSimulator({ latencyMs: 120_000, failureRate: 0, timeoutRate: 0, outage: false }, { callbackSecret: 'test-callback-secret-0123', callbackAttempts: 1, callbackRetryMs: 10, logLevel: 'silent' }, {});
    sim.app.post('/v1/slow', async (_request, reply) => ((await sim.injectFaults(reply)) ? { accepted: true } : reply));
    const url = await sim.app.listen({ host: '127.0.0.1', port: 0 });
    const answer = fetch(`${url}/v1/slow`, { method: 'POST' }).then(
      (response) => response.status,
      (error: Error) => error.message,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));

    const started = Date.now();
    await sim.app.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
    expect(Date.now() - started).toBeLessThan(20_000);
    // its caller sees the connection go, as after a crash, and retries
    expect(await answer).toBe('fetch failed');
  }, 30_000);
});

import { answerWithin } from '@orders/metrics';
import { describe, expect, it } from 'vitest';

describe('a probe or scrape that waits at most its deadline for Redis or MySQL', () => {
  it('answers with what Redis or MySQL said when they answer in time', async () => {
    expect(await answerWithin(Promise.resolve('up'), 100, 'down')).toBe('up');
  });

  it('answers "down" at once when the call fails (a refused connection)', async () => {
    const started = Date.now();
    // long before its 5 s deadline, with room for a busy event loop
    expect(await answerWithin(Promise.reject(new Error('ECONNREFUSED')), 5_000, 'down')).toBe('down');
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('answers "down" at its deadline while the client holds the command (a server that does not answer)', async () => {
    const started = Date.now();
    expect(await answerWithin(new Promise(() => {}), 200, 'down')).toBe('down');
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(190);
    // not hanging with the command: a busy event loop may fire the deadline's timer late
    expect(waited).toBeLessThan(2_000);
  });
});

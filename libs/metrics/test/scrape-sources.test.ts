import { createMetrics } from '@orders/metrics';
import { describe, expect, it } from 'vitest';

describe('what a scrape of /metrics reads from Redis', () => {
  it('reads the queue counts at most once a second, however many scrapes come (the endpoint is open to any caller)', async () => {
    const metrics = createMetrics({ app: 'test' });
    let reads = 0;
    metrics.watchQueues(async () => {
      reads += 1;
      return [{ queue: 'orders', counts: { waiting: reads } }];
    });
    const scrapes = await Promise.all(Array.from({ length: 50 }, () => metrics.exposition()));
    expect(reads).toBe(1);
    expect(scrapes.every((text) => text.includes('queue_jobs{queue="orders",state="waiting",app="test"} 1'))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    expect(await metrics.exposition()).toContain('queue_jobs{queue="orders",state="waiting",app="test"} 2');
    expect(reads).toBe(2);
  });

  it('answers a scrape within a second with the last counts while Redis does not answer, and reads it again only once that read is over', { timeout: 5_000 }, async () => {
    const metrics = createMetrics({ app: 'test' });
    let reads = 0;
    let answer: (counts: Array<{ queue: string; counts: Record<string, number> }>) => void = () => {};
    metrics.watchQueues(async () => {
      reads += 1;
      if (reads === 1) return [{ queue: 'orders', counts: { waiting: 7 } }];
      return new Promise((resolve) => (answer = resolve));
    });
    expect(await metrics.exposition()).toContain('queue_jobs{queue="orders",state="waiting",app="test"} 7');
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    const started = Date.now();
    const scrapes = await Promise.all([metrics.exposition(), metrics.exposition()]);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(scrapes.every((text) => text.includes('queue_jobs{queue="orders",state="waiting",app="test"} 7'))).toBe(true);
    // the read still waiting is the one every scrape shares: no pile of reads for when Redis is back
    expect(await metrics.exposition()).toContain('queue_jobs{queue="orders",state="waiting",app="test"} 7');
    expect(reads).toBe(2);
    answer([{ queue: 'orders', counts: { waiting: 3 } }]);
    expect(await metrics.exposition()).toContain('queue_jobs{queue="orders",state="waiting",app="test"} 3');
  });
});

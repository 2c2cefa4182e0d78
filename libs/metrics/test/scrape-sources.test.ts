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
});

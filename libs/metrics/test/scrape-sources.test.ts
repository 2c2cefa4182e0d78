import { createMetrics } from '@orders/metrics';
import { describe, expect, it } from 'vitest';

describe('what a scrape of /metrics reads from Redis', () => {
  it('reads the queue counts at most once a second, however many scrapes come (the endpoint is open to any caller)', async () => {
    const metrics = createMetrics({ app: 'test' });
    let reads = 0;
    metrics.watchQueues(async () => {
      reads += 1;
      return [{ queue: 'orders', counts: { waiting: reads }, oldestWaitingSince: null, firstDelayedDueAt: null }];
    });
    const scrapes = await Promise.all(Array.from({ length: 50 }, () => metrics.exposition()));
    expect(reads).toBe(1);
    expect(scrapes.every((text) => text.includes('queue_jobs{queue="orders",state="waiting",app="test"} 1'))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    expect(await metrics.exposition()).toContain('queue_jobs{queue="orders",state="waiting",app="test"} 2');
    expect(reads).toBe(2);
  });

  it('answers a scrape within a second with the last counts while Redis does not answer, and reads it again only once that read is over', { timeout: 10_000 }, async () => {
    const metrics = createMetrics({ app: 'test' });
    let reads = 0;
    let answer: (counts: Array<{ queue: string; counts: Record<string, number>; oldestWaitingSince: number | null; firstDelayedDueAt: number | null }>) => void = () => {};
    metrics.watchQueues(async () => {
      reads += 1;
      if (reads === 1) return [{ queue: 'orders', counts: { waiting: 7 }, oldestWaitingSince: null, firstDelayedDueAt: null }];
      return new Promise((resolve) => (answer = resolve));
    });
    expect(await metrics.exposition()).toContain('queue_jobs{queue="orders",state="waiting",app="test"} 7');
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    const started = Date.now();
    const scrapes = await Promise.all([metrics.exposition(), metrics.exposition()]);
    // a second's deadline, and room for a busy event loop: not the wait for Redis
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(scrapes.every((text) => text.includes('queue_jobs{queue="orders",state="waiting",app="test"} 7'))).toBe(true);
    // the read still waiting is the one every scrape shares: no pile of reads for when Redis is back
    expect(await metrics.exposition()).toContain('queue_jobs{queue="orders",state="waiting",app="test"} 7');
    expect(reads).toBe(2);
    answer([{ queue: 'orders', counts: { waiting: 3 }, oldestWaitingSince: null, firstDelayedDueAt: null }]);
    expect(await metrics.exposition()).toContain('queue_jobs{queue="orders",state="waiting",app="test"} 3');
  });

  it('exports when the stock check whose drift the gauges show finished, 0 once Redis holds no report, and keeps the last time while Redis cannot be read', { timeout: 10_000 }, async () => {
    const lastCheck = /^stock_reconcile_last_success_timestamp_seconds\{app="worker"\} (\S+)$/m;
    const metrics = createMetrics({ app: 'worker' });
    // before the first reading the worker knows nothing: no sample, rather than a 0 that says "never checked"
    expect(lastCheck.test(await metrics.registry.getSingleMetricAsString('stock_reconcile_last_success_timestamp_seconds'))).toBe(false);
    const reports = [
      { checkedAt: new Date('2025-11-11T00:00:30Z'), drift: [{ skuId: 'LAMP', available: 0, reserved: 1, sold: 0 }], saleRulesDrift: [] },
      new Error('Redis is away'),
      { checkedAt: null, drift: [], saleRulesDrift: [] },
    ];
    metrics.watchStockReport(async () => {
      const report = reports.shift()!;
      if (report instanceof Error) throw report;
      return report;
    });
    const scrapeAfterASecond = async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_050));
      return metrics.exposition();
    };
    const first = await metrics.exposition();
    expect(lastCheck.exec(first)?.[1]).toBe(String(Date.parse('2025-11-11T00:00:30Z') / 1000));
    expect(first).toContain('stock_counter_drift_units{sku="LAMP",counter="reserved",app="worker"} 1');
    expect(lastCheck.exec(await scrapeAfterASecond())?.[1]).toBe(String(Date.parse('2025-11-11T00:00:30Z') / 1000));
    // Redis lost its data: no check has finished since
    expect(lastCheck.exec(await scrapeAfterASecond())?.[1]).toBe('0');
  });

  it('exports a drift series only for a counter or a flash sale that drifts, and none for a SKU once a report no longer holds it', { timeout: 10_000 }, async () => {
    const metrics = createMetrics({ app: 'worker' });
    const reports = [
      { checkedAt: new Date('2025-11-11T00:00:30Z'), drift: [{ skuId: 'LAMP', available: 3, reserved: 0, sold: -1 }, { skuId: 'BOOK', available: 0, reserved: 2, sold: 0 }], saleRulesDrift: ['MUG'] },
      { checkedAt: new Date('2025-11-11T00:01:30Z'), drift: [{ skuId: 'BOOK', available: 0, reserved: 2, sold: 0 }], saleRulesDrift: [] },
    ];
    metrics.watchStockReport(async () => reports.shift()!);
    const driftSeries = async () => (await metrics.exposition()).split('\n').filter((line) => /^(stock_(counter_)?drift_units|flash_sale_rules_drift)\{/.test(line));
    expect(await driftSeries()).toEqual([
      'stock_drift_units{sku="LAMP",app="worker"} 3',
      'stock_counter_drift_units{sku="LAMP",counter="sold",app="worker"} -1',
      'stock_counter_drift_units{sku="BOOK",counter="reserved",app="worker"} 2',
      'flash_sale_rules_drift{sku="MUG",app="worker"} 1',
    ]);
    // LAMP and MUG repaired: their series go, rather than keep their last drift
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    expect(await driftSeries()).toEqual(['stock_counter_drift_units{sku="BOOK",counter="reserved",app="worker"} 2']);
  });

  it('exports no stock check series from a process without the report (the api)', async () => {
    const text = await createMetrics({ app: 'api' }).exposition();
    expect(text).not.toMatch(/^stock_\w+\{/m);
    expect(text).not.toMatch(/^stock_reconcile_last_success_timestamp_seconds /m);
  });
});

import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { aggregateProcesses } from '../src/cluster-metrics.js';

/** One api process's registry as the primary gets it: its event loop's p99 lag and the lowest lag it saw. */
async function processReporting(p99: number, min: number) {
  const registry = new Registry();
  registry.setDefaultLabels({ app: 'api' });
  // named and aggregated as prom-client's default metrics are
  new Gauge({ name: 'nodejs_eventloop_lag_p99_seconds', help: 'The 99th percentile of the recorded event loop delays.', registers: [registry], aggregator: 'average' }).set(p99);
  new Gauge({ name: 'nodejs_eventloop_lag_min_seconds', help: 'The minimum recorded event loop delay.', registers: [registry], aggregator: 'min' }).set(min);
  return registry.getMetricsAsJSON();
}

describe("an api instance's metrics under node:cluster", () => {
  it("reads the event loop's lag of its worst process, not the mean of its processes: one stuck behind CPU-bound work shows whole", async () => {
    const text = await aggregateProcesses([await processReporting(0.004, 0.001), await processReporting(0.25, 0.002)]).metrics();
    expect(text).toContain('nodejs_eventloop_lag_p99_seconds{app="api"} 0.25');
    expect(text).toContain('nodejs_eventloop_lag_min_seconds{app="api"} 0.001');
  });
});

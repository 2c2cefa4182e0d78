import type { Queue } from 'bullmq';
import type { QueueDepthGauge } from './checkout-intake.js';

/**
 * Samples the orders queue's backlog (in orders) a few times a second, so load shedding costs the
 * checkout nothing: each request compares against the last sample.
 */
export class QueueDepthSampler implements QueueDepthGauge {
  private depth = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly queue: Queue, private readonly intervalMs = 250) {}

  start(): this {
    const sample = async () => {
      try {
        // jobs waiting out a retry backoff (MySQL down) are backlog too, or the mark would not hold in an outage
        const jobs = await this.queue.getJobCountByTypes('waiting', 'delayed');
        this.depth = jobs === 0 ? 0 : Math.round(jobs * (await this.ordersPerJob()));
      } catch {
        // Redis away: keep the last sample; the checkout itself will answer 503
      }
    };
    void sample();
    this.timer = setInterval(sample, this.intervalMs);
    this.timer.unref();
    return this;
  }

  /**
   * A persist job carries one order or the batch of one event-loop turn, so the backlog in
   * orders is the job count times the mean size of a few waiting jobs (the high-water mark
   * is in orders).
   */
  private async ordersPerJob(): Promise<number> {
    const sample = await this.queue.getJobs(['wait', 'delayed'], 0, 4);
    const sizes = sample.map((job) => {
      const data = job?.data as { orders?: unknown[] } | undefined;
      return Array.isArray(data?.orders) ? data.orders.length : 1;
    });
    return sizes.length === 0 ? 1 : sizes.reduce((a, b) => a + b, 0) / sizes.length;
  }

  current(): number {
    return this.depth;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

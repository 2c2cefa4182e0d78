import type { Queue } from 'bullmq';
import type { QueueDepthGauge } from './checkout-intake.js';

/**
 * Samples the orders queue's backlog a few times a second, so load shedding costs the
 * checkout nothing: each request compares against the last sample.
 */
export class QueueDepthSampler implements QueueDepthGauge {
  private depth = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly queue: Queue, private readonly intervalMs = 250) {}

  start(): this {
    const sample = async () => {
      try {
        this.depth = await this.queue.getWaitingCount();
      } catch {
        // Redis away: keep the last sample; the checkout itself will answer 503
      }
    };
    void sample();
    this.timer = setInterval(sample, this.intervalMs);
    this.timer.unref();
    return this;
  }

  current(): number {
    return this.depth;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

import type { QueueDepthGauge } from './checkout-intake.js';

/**
 * Samples the backlog (orders accepted and not yet in MySQL) a few times a second, so load
 * shedding costs the checkout nothing: each request compares against the last sample. The
 * accepted set counts each order once, however many jobs carry it (a batch, a retry waiting
 * out its backoff, a copy the sweeper enqueued), so the mark holds in orders during an outage.
 * Each sample is exported (orders_awaiting_mysql): the figure the mark is compared with.
 */
export class QueueDepthSampler implements QueueDepthGauge {
  private depth = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly backlog: { acceptedBacklog(): Promise<number> },
    private readonly exported: { set(orders: number): void },
    private readonly intervalMs = 250,
  ) {}

  start(): this {
    const sample = async () => {
      try {
        this.depth = await this.backlog.acceptedBacklog();
        this.exported.set(this.depth);
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

/**
 * Runs a round every interval, one at a time: a round still running when the next is due makes
 * that one skip, so a slow Redis or MySQL never piles rounds up. `stop` waits for the round in hand.
 */
export class RoundsEveryInterval {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly round: () => Promise<unknown>,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.round().finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}

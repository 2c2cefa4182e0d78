/** One page of a sweep's read: `limit` rows from the `offset`th, in the read's order. */
export interface SweepPage {
  offset: number;
  limit: number;
}

/**
 * Where each read of a sweep that runs again and again goes on from: the page after the one
 * the last sweep read, back at the start once a read came to its end. A read of only its first
 * page would be filled by the rows a sweep leaves where they are (their job failed for good and
 * waits in the dead letters, for the operator), and a row lost behind them would never be read.
 * Rows the sweep moves out of its read (closed, moved on, or their job enqueued again, which moves
 * them on) are told (`read`'s `left`), so the next page starts where the rows left begin: a row
 * still there then is read twice, never skipped. Kept in the process: another process sweeping starts
 * from the start, which only reads some rows twice.
 */
export class SweepPages {
  private readonly from = new Map<string, number>();

  constructor(readonly size: number) {}

  /** The page the next read of `name` takes. */
  pageOf(name: string): SweepPage {
    return { offset: this.from.get(name) ?? 0, limit: this.size };
  }

  /** The read of `name` returned `count` rows of its page, of which the sweep moved `left` out of the read. */
  read(name: string, count: number, left: number): void {
    const { offset } = this.pageOf(name);
    this.from.set(name, count === this.size ? offset + count - left : 0);
  }
}

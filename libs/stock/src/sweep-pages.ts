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
 * Rows the sweep moved out of its read (closed, moved on) are told (`read`'s `left`), so the next
 * page starts where the rows left begin. Kept in the process: another process sweeping starts
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
  read(name: string, count: number, left = 0): void {
    const { offset } = this.pageOf(name);
    this.from.set(name, count === this.size ? offset + count - left : 0);
  }

  /** The next page of `name` read with `read`, its rows counted as staying where they are. */
  async next<Row>(name: string, read: (page: SweepPage) => Promise<Row[]>): Promise<Row[]> {
    const rows = await read(this.pageOf(name));
    this.read(name, rows.length);
    return rows;
  }
}

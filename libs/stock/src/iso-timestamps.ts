/**
 * `Date#toISOString` for timestamps that mostly fall in the same second as the one before
 * (a flash sale's checkouts, their payment deadlines): the second is formatted once and
 * only the milliseconds are appended. V8 formats every call through snprintf, ~3 % of a
 * checkout's instructions (bench/README.md, item 30).
 */
export class IsoTimestamps {
  private second = Number.NaN;
  private prefix = '';

  format(ms: number): string {
    const second = Math.floor(ms / 1000);
    if (second !== this.second) {
      const iso = new Date(second * 1000).toISOString();
      // years outside 0000–9999 are written with a sign and six digits
      if (iso.length !== 24) return new Date(ms).toISOString();
      this.second = second;
      this.prefix = iso.slice(0, 20);
    }
    const millis = ms - second * 1000;
    return `${this.prefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
  }
}

import { describe, expect, it } from 'vitest';
import { IsoTimestamps } from '../src/iso-timestamps.js';

describe('IsoTimestamps', () => {
  it('writes what Date#toISOString writes, within a second and across seconds, days and years', () => {
    const timestamps = new IsoTimestamps();
    const base = Date.UTC(2026, 11, 31, 23, 59, 58, 990);
    const moments = [0, 1, 9, 10, 99, 100, 999, 1_000, 1_001, 1_009, 1_010, 1_999, 2_000, 2_011, 90_061_001].map((offset) => base + offset);
    moments.push(0, 999, -1, -1_000, -1_001, 253_402_300_799_999, Date.UTC(2026, 1, 28, 23, 59, 59, 999), Date.UTC(2028, 1, 29, 0, 0, 0, 5));
    for (const ms of moments) expect(timestamps.format(ms), String(ms)).toBe(new Date(ms).toISOString());
  });

  it('writes years outside 0000–9999 with their sign, as Date#toISOString does', () => {
    const timestamps = new IsoTimestamps();
    for (const ms of [253_402_300_800_000, 253_402_300_800_123, -62_198_755_200_001, -62_198_755_200_000 - 86_400_000]) {
      expect(timestamps.format(ms), String(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('refuses an invalid time as Date#toISOString does', () => {
    expect(() => new IsoTimestamps().format(Number.NaN)).toThrow(RangeError);
  });
});

import { firstOrderIdAt } from '@orders/domain';
import fc from 'fast-check';
import { ulid } from 'ulid';
import { describe, expect, it } from 'vitest';

describe('firstOrderIdAt (of @orders/domain) against the ulid ids the intake gives orders', () => {
  it('sorts below every order id accepted at that time or later, and above every one accepted before', () => {
    fc.assert(
      // from 2: ulid(0) takes 0 for "no time given" and stamps the current time
      fc.property(fc.integer({ min: 2, max: 2 ** 48 - 1 }), (ms) => {
        const first = firstOrderIdAt(ms);
        expect(first.slice(0, 10)).toBe(ulid(ms).slice(0, 10));
        expect(first <= ulid(ms)).toBe(true);
        expect(ulid(ms - 1) < first).toBe(true);
      }),
    );
  });
});

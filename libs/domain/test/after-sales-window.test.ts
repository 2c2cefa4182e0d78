import { afterSalesWindowEnd, type WindowStep } from '@orders/domain';
import { describe, expect, it } from 'vitest';

const DAY = 86_400_000;
const WINDOW = 7 * DAY;
const GRACE = 2 * DAY;
const t0 = Date.parse('2026-01-01T00:00:00Z');
const step = (day: number, from: string, action: string, to: string): WindowStep => ({ from, action, to, at: new Date(t0 + day * DAY) });
const delivered = step(0, 'SHIPPED', 'deliver', 'DELIVERED');
const end = (steps: WindowStep[]) => afterSalesWindowEnd(steps, WINDOW, GRACE)?.getTime();

describe('the after-sales window a refused or closed return gives back', () => {
  it('runs from the delivery, and is null before one', () => {
    expect(end([])).toBeUndefined();
    expect(end([delivered])).toBe(t0 + WINDOW);
  });

  it('gives back what was left of it after a return refused early in it', () => {
    expect(end([delivered, step(1, 'DELIVERED', 'request_return', 'RETURN_REQUESTED'), step(2, 'RETURN_REQUESTED', 'refuse_return', 'DELIVERED')])).toBe(t0 + WINDOW);
  });

  it('gives at least the grace after a return asked inside it and closed after its end, and none to a return asked in that grace', () => {
    const first = [delivered, step(6, 'DELIVERED', 'request_return', 'RETURN_REQUESTED'), step(7, 'RETURN_REQUESTED', 'approve_return', 'RETURNING'), step(21, 'RETURNING', 'close_return', 'DELIVERED')];
    expect(end(first)).toBe(t0 + 21 * DAY + GRACE);
    const chained = [...first, step(22, 'DELIVERED', 'request_return', 'RETURN_REQUESTED'), step(24, 'RETURN_REQUESTED', 'refuse_return', 'DELIVERED')];
    expect(end(chained)).toBe(t0 + 21 * DAY + GRACE);
  });

  it('opens a whole window on a partial return, units back and paid for', () => {
    const partial = [delivered, step(5, 'DELIVERED', 'request_return', 'RETURN_REQUESTED'), step(6, 'RETURN_REQUESTED', 'approve_return', 'RETURNING'), step(9, 'RETURNING', 'receive_partial_return', 'DELIVERED')];
    expect(end(partial)).toBe(t0 + 9 * DAY + WINDOW);
  });
});

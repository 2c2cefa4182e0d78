import { describe, expect, it } from 'vitest';
import { uncoveredPaymentLine } from '../src/index.js';

describe('payment-time lines checked before the buyer is charged', () => {
  it('are covered when every SKU has at least the units of its line on sale, the last unit included', () => {
    expect(uncoveredPaymentLine([{ skuId: 'CHAIR', qty: 2 }, { skuId: 'LAMP', qty: 1 }], [2, 7])).toBeNull();
  });

  it('name the first SKU with fewer units on sale than its line', () => {
    expect(uncoveredPaymentLine([{ skuId: 'CHAIR', qty: 1 }, { skuId: 'LAMP', qty: 3 }, { skuId: 'RUG', qty: 1 }], [5, 2, 0])).toBe('LAMP');
  });

  it('take a SKU whose counters Redis lost for one with none on sale, as the commit at payment does', () => {
    expect(uncoveredPaymentLine([{ skuId: 'CHAIR', qty: 1 }], [null])).toBe('CHAIR');
  });

  it('of an order with none leave nothing to check', () => {
    expect(uncoveredPaymentLine([], [])).toBeNull();
  });
});

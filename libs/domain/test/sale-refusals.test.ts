import { describe, expect, it } from 'vitest';
import { DomainError, LimitExceeded, OutOfStock, SaleNotActive, UnknownSku } from '../src/index.js';

describe('sale refusals', () => {
  it('carry their code and message like every domain error, without a stack, and leave stack traces on for everything else', () => {
    const limitBefore = Error.stackTraceLimit;
    for (const [refusal, code] of [
      [new OutOfStock('TV-55'), 'OUT_OF_STOCK'],
      [new LimitExceeded('TV-55'), 'LIMIT_EXCEEDED'],
      [new SaleNotActive('TV-55'), 'SALE_NOT_ACTIVE'],
    ] as const) {
      expect(refusal).toBeInstanceOf(DomainError);
      expect(refusal.code).toBe(code);
      expect(refusal.skuId).toBe('TV-55');
      expect(refusal.message).toContain('TV-55');
      expect(refusal.stack).toBe(`${refusal.name}: ${refusal.message}`);
    }
    expect(Error.stackTraceLimit).toBe(limitBefore);
    expect(new UnknownSku('TV-56').stack).toMatch(/\n\s+at /);
  });
});

import { describe, expect, it } from 'vitest';
import { childOrderId } from '../src/processors/child-order-id.js';

describe('the ids of a split order’s children', () => {
  it('are the same ids for the same parent and part on every retry and in every release (ids already in MySQL and in buyers’ hands)', () => {
    expect(childOrderId('01JH5XQ7ZP3M4V8K2T6R9W1YCA', 'self/acme/wh-east')).toBe('01JH5XQ7ZPT38FTK48RTB885MT');
    expect(childOrderId('01JH5XQ7ZP3M4V8K2T6R9W1YCA', 'marketplace/corner/wh-west')).toBe('01JH5XQ7ZPYS96CZ0GY63G7RNP');
  });

  it('keep the parent’s time, so they sort next to it, and its stock bucket, so a refund restocks that bucket', () => {
    expect(childOrderId('01JH5XQ7ZP3M4V8K2T6R9W1YCA-g3', 'self/acme/wh-east')).toBe('01JH5XQ7ZP7N63T1VZPZZECFMD-g3');
  });
});

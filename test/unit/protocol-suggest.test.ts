import { describe, expect, it } from 'vitest';
import { closest, didYouMean, editDistance } from '../../src/protocol/suggest.js';

describe('did you mean', () => {
  it('counts insertions, deletions, substitutions and swaps of neighbours as one edit each', () => {
    expect(editDistance('orders', 'orders')).toBe(0);
    expect(editDistance('order', 'orders')).toBe(1);
    expect(editDistance('ordxrs', 'orders')).toBe(1);
    expect(editDistance('ordres', 'orders')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('suggests the closest name within a third of its length, ignoring case', () => {
    const queues = ['orders', 'payments', 'audit'];
    expect(closest('ordres', queues)).toBe('orders');
    expect(closest('Orders', queues)).toBe('orders');
    expect(closest('payment', queues)).toBe('payments');
    expect(closest('zebra', queues)).toBeUndefined();
    expect(closest('aud', queues)).toBeUndefined();
    expect(closest('orders', ['orders'])).toBeUndefined();
    expect(didYouMean('ordrs', queues)).toBe('; did you mean "orders"?');
    expect(didYouMean('x', [])).toBe('');
  });
});

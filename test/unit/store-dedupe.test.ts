import { describe, expect, it } from 'vitest';
import { KeyIndex, keyPrefix } from '../../src/backend/level/dedupe.js';

const Q = '01M8Q6DSM43DKNFG9KSGVCF4K6';
const entry = (n: number, at: number) => ({ id: `01M8Q6DSM43DKNFG9KSGVC${String(n).padStart(4, '0')}`, at });

describe('KeyIndex (idempotency keys)', () => {
  it('finds a key only inside its window', () => {
    const index = new KeyIndex({ windowMs: 1000, maxKeys: 10 });
    const ops = index.add(Q, 'k', entry(1, 5000));
    expect(ops).toEqual([{ type: 'put', key: `${keyPrefix(Q)}k`, value: JSON.stringify(entry(1, 5000)) }]);
    expect(index.lookup(Q, 'k', 5999)?.id).toBe(entry(1, 0).id);
    expect(index.lookup(Q, 'k', 6000)).toBeUndefined();
    expect(index.lookup('other', 'k', 5000)).toBeUndefined();
  });

  it('forgets the oldest keys past the bound, in the same ops as the new key', () => {
    const index = new KeyIndex({ windowMs: 60_000, maxKeys: 2 });
    index.add(Q, 'a', entry(1, 1));
    index.add(Q, 'b', entry(2, 2));
    const ops = index.add(Q, 'c', entry(3, 3));
    expect(ops.map((op) => op.type + ' ' + op.key)).toEqual([`put ${keyPrefix(Q)}c`, `del ${keyPrefix(Q)}a`]);
    expect(index.lookup(Q, 'a', 10)).toBeUndefined();
    expect(index.lookup(Q, 'b', 10)?.id).toBe(entry(2, 0).id);
    expect(index.size).toBe(2);
  });

  it('prunes expired keys from the front and returns their removals', () => {
    const index = new KeyIndex({ windowMs: 100, maxKeys: 10 });
    index.add(Q, 'old', entry(1, 0));
    index.add(Q, 'new', entry(2, 50));
    expect(index.prune(120)).toEqual([{ type: 'del', key: `${keyPrefix(Q)}old` }]);
    expect(index.size).toBe(1);
    expect(index.prune(200)).toEqual([{ type: 'del', key: `${keyPrefix(Q)}new` }]);
    expect(index.size).toBe(0);
  });

  it('loads stored keys in age order, dropping expired, orphaned and unreadable ones', () => {
    const index = new KeyIndex({ windowMs: 1000, maxKeys: 2 });
    const p = keyPrefix(Q);
    const stale = index.load(
      [
        [`${p}a-newest`, JSON.stringify(entry(3, 900))],
        [`${p}b-oldest`, JSON.stringify(entry(1, 700))],
        [`${p}c-middle`, JSON.stringify(entry(2, 800))],
        [`${p}d-expired`, JSON.stringify(entry(0, 0))],
        [`${p}e-garbage`, '{not json'],
        [`${keyPrefix('gone')}x`, JSON.stringify(entry(4, 950))],
      ],
      new Set([Q]),
      1000,
    );
    // The bound keeps the two youngest by time, not by key order.
    expect(stale.map((op) => op.key).sort()).toEqual([`${p}b-oldest`, `${p}d-expired`, `${p}e-garbage`, `${keyPrefix('gone')}x`].sort());
    expect(index.lookup(Q, 'a-newest', 1000)?.at).toBe(900);
    expect(index.lookup(Q, 'c-middle', 1000)?.at).toBe(800);
    expect(index.lookup(Q, 'b-oldest', 1000)).toBeUndefined();
  });

  it('drops a key whose batch failed, but not one that replaced it', () => {
    const index = new KeyIndex({ windowMs: 1000, maxKeys: 10 });
    const failed = entry(1, 10);
    index.add(Q, 'k', failed);
    index.drop(Q, 'k', failed);
    expect(index.lookup(Q, 'k', 10)).toBeUndefined();
    const kept = entry(2, 20);
    index.add(Q, 'k', kept);
    index.drop(Q, 'k', failed);
    expect(index.lookup(Q, 'k', 20)).toBe(kept);
  });
});

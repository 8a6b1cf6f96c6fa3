/**
 * OwnWrites (backend/nats/own-writes.ts): which catalogue watch entries are
 * echoes of this process's own writes, in flight or done.
 */
import { describe, expect, it } from 'vitest';
import { OwnWrites } from '../../src/backend/nats/own-writes.js';

describe('OwnWrites', () => {
  it('a held key is an echo until every operation holding it has released it', () => {
    const own = new OwnWrites();
    own.hold('queue.a');
    own.hold('queue.a', 'queue.b');
    own.release('queue.a', 'queue.b');
    expect(own.isEcho({ key: 'queue.a', revision: 9 })).toBe(true);
    expect(own.isEcho({ key: 'queue.b', revision: 9 })).toBe(false);
    own.release('queue.a');
    expect(own.isEcho({ key: 'queue.a', revision: 9 })).toBe(false);
  });

  it('after a write, its echo and older entries of the key are stale; newer ones, from elsewhere, are news', () => {
    const own = new OwnWrites();
    own.wrote('queue.a', 5);
    own.wrote('queue.a', 3);
    expect(own.isEcho({ key: 'queue.a', revision: 4 })).toBe(true);
    expect(own.isEcho({ key: 'queue.a', revision: 5 })).toBe(true);
    expect(own.isEcho({ key: 'queue.a', revision: 6 })).toBe(false);
    own.wrote('listener.x', Infinity);
    expect(own.isEcho({ key: 'listener.x', revision: 1e12 })).toBe(true);
  });
});

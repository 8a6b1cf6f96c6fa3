/**
 * The retry policy alone: what a send's result means given the attempts so
 * far and the listener's settings, with the randomness of the backoff fixed.
 */
import { describe, expect, it } from 'vitest';
import { attemptNumber, decide } from '../../src/delivery/decide.js';
import type { Attempt } from '../../src/protocol/wire.js';

const listener = { maxAttempts: 3, retryDelayMs: 1000 };
const half = () => 0.5;

function attempts(n: number): Attempt[] {
  return Array.from({ length: n }, (_, i) => ({ attempt: i + 1, at: new Date(0).toISOString(), durationMs: 1, ok: false }));
}

describe('decide', () => {
  it('a success is delivered, whatever came before', () => {
    expect(decide({ ok: true }, { attempts: attempts(2) }, listener)).toEqual({ outcome: 'delivered' });
  });

  it('a receiver that went away is released, not counted', () => {
    expect(decide({ ok: false, interrupted: true }, { attempts: attempts(2) }, listener)).toEqual({ outcome: 'release' });
  });

  it('410 Gone is gone, even on the last attempt of the round', () => {
    expect(decide({ ok: false, gone: true }, { attempts: attempts(2) }, listener)).toEqual({ outcome: 'gone' });
  });

  it('retries with the backoff of the next attempt, until max-attempts in the round, then dead', () => {
    // Attempt 1 failed: attempt 2 waits the first delay (1000 ms, jittered in its upper half).
    expect(decide({ ok: false }, { attempts: [] }, listener, half)).toEqual({ outcome: 'retry', delayMs: 750 });
    // Attempt 2 failed: attempt 3 waits twice that.
    expect(decide({ ok: false }, { attempts: attempts(1) }, listener, half)).toEqual({ outcome: 'retry', delayMs: 1500 });
    expect(decide({ ok: false }, { attempts: attempts(2) }, listener, half)).toEqual({ outcome: 'dead' });
  });

  it('a requeued dead delivery gets max-attempts again, counted from its round start', () => {
    expect(decide({ ok: false }, { attempts: attempts(3), roundStart: 3 }, listener, half)).toEqual({ outcome: 'retry', delayMs: 750 });
    expect(decide({ ok: false }, { attempts: attempts(5), roundStart: 3 }, listener, half)).toEqual({ outcome: 'dead' });
  });

  it('waits the receiver’s Retry-After when it is longer than the backoff, never less than the backoff', () => {
    expect(decide({ ok: false, retryAfterMs: 60_000 }, { attempts: [] }, listener, half)).toEqual({ outcome: 'retry', delayMs: 60_000 });
    expect(decide({ ok: false, retryAfterMs: 10 }, { attempts: [] }, listener, half)).toEqual({ outcome: 'retry', delayMs: 750 });
  });

  it('numbers attempts across rounds', () => {
    expect(attemptNumber({ attempts: [] })).toBe(1);
    expect(attemptNumber({ attempts: attempts(4) })).toBe(5);
  });
});

import { describe, expect, it } from 'vitest';
import { MAX_BACKOFF_MS } from '../../src/protocol/defaults.js';
import { MAX_RETRY_AFTER_MS, backoffMs, parseRetryAfter } from '../../src/delivery/backoff.js';

describe('backoffMs: exponential, jittered, capped', () => {
  it('doubles from the base delay, within [exp/2, exp]', () => {
    for (const [next, exp] of [
      [2, 100],
      [3, 200],
      [4, 400],
      [5, 800],
      [10, 25_600],
    ] as const) {
      expect(backoffMs(next, 100, () => 0)).toBe(exp / 2);
      expect(backoffMs(next, 100, () => 0.999999)).toBeLessThanOrEqual(exp);
      expect(backoffMs(next, 100, () => 0.999999)).toBeGreaterThan(exp * 0.99);
    }
  });

  it('jitters: different random draws give different delays in range', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const d = backoffMs(5, 1000);
      expect(d).toBeGreaterThanOrEqual(4000);
      expect(d).toBeLessThanOrEqual(8000);
      seen.add(d);
    }
    expect(seen.size).toBeGreaterThan(20);
  });

  it('never exceeds the cap, however many attempts and however large the base', () => {
    for (const next of [2, 20, 40, 100, 1000, 1_000_000]) {
      for (const base of [1, 1000, 3_600_000]) {
        const d = backoffMs(next, base, () => 1);
        expect(d, `next=${next} base=${base}`).toBeLessThanOrEqual(MAX_BACKOFF_MS);
        expect(Number.isFinite(d)).toBe(true);
        expect(d).toBeGreaterThan(0);
      }
    }
    // The cap is reached, not merely respected: a huge attempt number waits the cap (jittered down to half).
    expect(backoffMs(1_000_000, 1000, () => 1)).toBe(MAX_BACKOFF_MS);
    expect(backoffMs(1_000_000, 1000, () => 0)).toBe(MAX_BACKOFF_MS / 2);
  });

  it('bounds the total time a delivery can be retried (10 attempts at the default 1s stay under an hour)', () => {
    let total = 0;
    for (let next = 2; next <= 10; next++) total += backoffMs(next, 1000, () => 1);
    expect(total).toBe(1000 + 2000 + 4000 + 8000 + 16_000 + 32_000 + 64_000 + 128_000 + 256_000);
    expect(total).toBeLessThan(60 * 60_000);
    // With the maximum of 1000 attempts and a first delay above the cap, every wait is the cap itself.
    let worst = 0;
    for (let next = 2; next <= 1000; next++) worst += backoffMs(next, 3_600_000, () => 1);
    expect(worst).toBe(999 * MAX_BACKOFF_MS);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter(' 30 ', now)).toBe(30_000);
    expect(parseRetryAfter(['3', '9'], now)).toBe(3000);
    expect(parseRetryAfter('120', now)).toBe(120_000);
  });

  it('reads an HTTP date relative to now; a date in the past means now', () => {
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Mon, 31 Dec 2029 23:59:00 GMT', now)).toBe(0);
    // The obsolete forms a receiver may still send: RFC 850 and asctime.
    expect(parseRetryAfter('Tuesday, 01-Jan-30 00:00:20 GMT', now)).toBe(20_000);
    expect(parseRetryAfter('Tue Jan  1 00:00:30 2030', now)).toBe(30_000);
  });

  it('caps a huge Retry-After so a receiver cannot park a delivery for days', () => {
    expect(parseRetryAfter('99999999', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', now)).toBe(MAX_RETRY_AFTER_MS);
  });

  it('ignores what is not a Retry-After value', () => {
    for (const v of [undefined, '', '  ', 'soon', '-5', '1.5', 'NaN', '12 34', '2030-01-01', 'in 5 seconds']) expect(parseRetryAfter(v, now), String(v)).toBeUndefined();
  });
});

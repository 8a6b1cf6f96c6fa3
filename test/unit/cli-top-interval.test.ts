import { describe, expect, it } from 'vitest';
import { parseInterval } from '../../src/cli/commands/top.js';

describe('top --interval', () => {
  it('takes a duration with a unit, and a bare number as milliseconds (as it always did)', () => {
    expect([parseInterval('2s'), parseInterval('500ms'), parseInterval('1m'), parseInterval('200'), parseInterval('1s')]).toEqual([2000, 500, 60_000, 200, 1000]);
  });

  it('raises less than 100ms to 100ms, and refuses what is not a positive duration', () => {
    expect(parseInterval('10ms')).toBe(100);
    for (const bad of ['abc', '0', '', '-5', '2 parsecs']) expect(() => parseInterval(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_DURATION' }));
  });
});

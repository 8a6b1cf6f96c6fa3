import { describe, expect, it } from 'vitest';
import { thrownError } from '../helpers/throws.js';
import { formatDuration, parseDuration } from '../../src/client/duration.js';


describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['1w', 604_800_000],
    ['10', 10_000],
    [' 3s ', 3000],
    ['1m30s', 90_000],
    ['1h 30m', 5_400_000],
    ['1s500ms', 1500],
  ])('parses %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it.each(['', '0', '0s', '-1s', 'forever', '5 minutes', '1y', '1m30', 's', '1m-30s', '101w0', `${101 * 365}d`])('refuses %j', (text) => {
    expect(thrownError(() => parseDuration(text)).code).toBe('INVALID_DURATION');
  });
  it('formats the way durations are typed, largest unit first', () => {
    expect([604_800_000, 86_400_000, 7_200_000, 60_000, 90_000, 3000, 1500].map(formatDuration)).toEqual([
      '7d',
      '1d',
      '2h',
      '1m',
      '1m30s',
      '3s',
      '1s500ms',
    ]);
    for (const text of ['7d', '12h', '1m30s', '30s', '250ms']) expect(formatDuration(parseDuration(text))).toBe(text);
  });
});

import { describe, expect, it } from 'vitest';
import { parseSince } from '../../src/cli/commands/messages.js';
import { DiscueError } from '../../src/protocol/errors.js';

describe('messages list --since', () => {
  it('takes a message id (exclusive)', () => {
    expect(parseSince('01JF8Z3K4M5N6P7Q8R9S0T1V2W')).toEqual({ afterId: '01JF8Z3K4M5N6P7Q8R9S0T1V2W' });
  });

  it('takes an ISO time', () => {
    expect(parseSince('2026-11-27T10:00:00Z')).toEqual({ sinceMs: Date.parse('2026-11-27T10:00:00Z') });
    expect(parseSince('2026-11-27')).toEqual({ sinceMs: Date.parse('2026-11-27') });
  });

  it('takes a duration ago', () => {
    const before = Date.now();
    const { sinceMs } = parseSince('10m') as { sinceMs: number };
    expect(sinceMs).toBeGreaterThanOrEqual(before - 600_000);
    expect(sinceMs).toBeLessThanOrEqual(Date.now() - 600_000);
  });

  it('reads a duration in the grammar of every other option (1m30s)', () => {
    const before = Date.now();
    const { sinceMs } = parseSince('1m30s') as { sinceMs: number };
    expect(sinceMs).toBeGreaterThanOrEqual(before - 90_000);
    expect(sinceMs).toBeLessThanOrEqual(Date.now() - 90_000);
  });

  it.each(['yesterday', '10', 'tomorrow at noon', '2026-13-45T99:00:00Z', ''])('refuses %j', (text) => {
    try {
      parseSince(text);
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(DiscueError);
      expect((err as DiscueError).code).toBe('INVALID_ARGUMENT');
    }
  });
});

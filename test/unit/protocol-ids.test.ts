import { describe, expect, it } from 'vitest';
import { DiscueError } from '../../src/protocol/errors.js';
import { IdGenerator, assertMessageId, firstIdAt, isMessageId, timeOfId } from '../../src/protocol/ids.js';

describe('message ids', () => {
  it('are 26 Crockford base32 characters carrying their millisecond', () => {
    const gen = new IdGenerator();
    const id = gen.next(1_700_000_000_123);
    expect(isMessageId(id)).toBe(true);
    expect(id).toHaveLength(26);
    expect(timeOfId(id)).toBe(1_700_000_000_123);
  });

  it('increase strictly within a millisecond, across milliseconds, and when the clock steps back', () => {
    const gen = new IdGenerator();
    const times = [1000, 1000, 1000, 1001, 1001, 999, 500, 1002, 1002];
    const ids: string[] = [];
    for (const t of times) for (let i = 0; i < 500; i++) ids.push(gen.next(t));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!, `${ids[i - 1]} < ${ids[i]}`).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // A step back keeps the last millisecond.
    expect(timeOfId(ids[ids.length - 500 * 3 - 1]!)).toBe(1001);
  });

  it('continue after the newest stored id once observed (a restart with a clock behind)', () => {
    const before = new IdGenerator();
    let last = '';
    for (let i = 0; i < 100; i++) last = before.next(5_000);
    const after = new IdGenerator();
    after.observe(last);
    const next = after.next(4_000);
    expect(next > last).toBe(true);
    // Observing an older id changes nothing.
    after.observe(before.next(1));
    expect(after.next(4_000) > next).toBe(true);
  });

  it('count on in base32 across a 20-bit step of the counter and past its top into the part above', () => {
    const gen = new IdGenerator();
    const time = firstIdAt(5_000).slice(0, 10);
    gen.observe(`${time}00000007` + '0000ZZZZ');
    expect(gen.next(5_000)).toBe(`${time}00000007` + '00010000');
    expect(gen.next(5_000)).toBe(`${time}00000007` + '00010001');
    gen.observe(`${time}0000000Z` + 'ZZZZZZZZ');
    expect(gen.next(5_000)).toBe(`${time}00000010` + '00000000');
  });

  it('count on past the top of both counter parts into the next millisecond, never back to 0 (an imported id at the top)', () => {
    const gen = new IdGenerator();
    const time = firstIdAt(5_000).slice(0, 10);
    const top = `${time}ZZZZZZZZ` + 'ZZZZZZZZ';
    gen.observe(top);
    const next = gen.next(5_000);
    expect(next > top, `${next} after ${top}`).toBe(true);
    expect(timeOfId(next)).toBe(5_001);
    expect(gen.next(5_000) > next).toBe(true);
    // The very last id there is: nothing sorts after it, so nothing is made.
    gen.observe('Z'.repeat(26));
    expect(() => gen.next(5_000)).toThrow(DiscueError);
  });

  it('firstIdAt sorts before every id of that millisecond and after every earlier one', () => {
    const gen = new IdGenerator();
    const earlier = gen.next(1_999);
    const at = gen.next(2_000);
    expect(firstIdAt(2_000) <= at).toBe(true);
    expect(firstIdAt(2_000) > earlier).toBe(true);
    expect(firstIdAt(-5)).toBe('0'.repeat(26));
  });

  it('are checked where they come in', () => {
    expect(isMessageId('01JF8Z3K4M5N6P7Q8R9S0T1V2W')).toBe(true);
    for (const bad of ['', '01JF8Z3K4M5N6P7Q8R9S0T1V2', '01JF8Z3K4M5N6P7Q8R9S0T1V2WX', '01jf8z3k4m5n6p7q8r9s0t1v2w', 'I1JF8Z3K4M5N6P7Q8R9S0T1V2W', 42]) {
      expect(isMessageId(bad)).toBe(false);
    }
    expect(() => assertMessageId('nope')).toThrow(DiscueError);
    try {
      assertMessageId('nope');
    } catch (err) {
      expect((err as DiscueError).code).toBe('INVALID_ARGUMENT');
    }
  });
});

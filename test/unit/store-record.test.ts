import { describe, expect, it } from 'vitest';
import { storedJson } from '../../src/backend/level/level.js';
import { openRecord, seal } from '../../src/backend/level/record.js';
import { IdGenerator } from '../../src/protocol/ids.js';
import { MAX_PARAMS_DEPTH, nestsDeeperThan } from '../../src/daemon/params.js';

describe('stored records', () => {
  const key = 'm!01M8Q6F92620SJYRHSRTMMKRVQ!01M8Q6FAKN0FXTCXP81ZQNBSZP';
  const json = JSON.stringify({ id: '01M8Q6FAKN0FXTCXP81ZQNBSZP', data: 'héllo' });

  it('come back as written', () => {
    expect(openRecord(key, seal(key, json))).toEqual(JSON.parse(json));
  });

  it('are refused when any byte of the value changed, or the record moved to another key', () => {
    const sealed = seal(key, json);
    for (let i = 0; i < sealed.length; i++) {
      const c = sealed.charCodeAt(i);
      const altered = sealed.slice(0, i) + String.fromCharCode(c ^ 0x01) + sealed.slice(i + 1);
      expect(openRecord(key, altered), `byte ${i}`).toBeUndefined();
    }
    expect(openRecord(key.replace(/P$/, 'Q'), sealed)).toBeUndefined();
  });

  it('of storage format 1 (plain JSON) are still read; what is not JSON is refused', () => {
    expect(openRecord(key, json)).toEqual(JSON.parse(json));
    expect(openRecord(key, json.slice(0, -1))).toBeUndefined();
    expect(openRecord(key, '"a string"')).toBeUndefined();
    expect(openRecord(key, '')).toBeUndefined();
  });
});

describe('a message as stored', () => {
  it('is exactly JSON.stringify of {id, name?, data, publishedAt}, whatever the strings hold', () => {
    const at = '2026-12-01T03:00:00.000Z';
    const ids = new IdGenerator();
    const strings = ['', 'plain', 'quote " backslash \\ newline \n tab \t', 'é€😀', 'lone \ud800 surrogate', '\u0000\u001f\u007f', '</script>', '{"json":[1,2]}'];
    for (const data of strings) {
      for (const name of [undefined, ...strings.filter((s) => s.length > 0)]) {
        const id = ids.next();
        const expected = JSON.stringify(name === undefined ? { id, data, publishedAt: at } : { id, name, data, publishedAt: at });
        expect(storedJson(id, name, data, at)).toBe(expected);
      }
    }
  });
});

describe('ids', () => {
  it('rise strictly within a millisecond, across one, and after observe()', () => {
    const ids = new IdGenerator();
    const made = [ids.next(1000), ids.next(1000), ids.next(1000), ids.next(999), ids.next(1001), ids.next(1001)];
    expect([...made].sort()).toEqual(made);
    expect(new Set(made).size).toBe(made.length);
    const later = new IdGenerator();
    later.observe(made[made.length - 1]!);
    const next = later.next(1001);
    expect(next > made[made.length - 1]!).toBe(true);
    expect(next.slice(0, 18)).toBe(made[made.length - 1]!.slice(0, 18));
  });
});

describe('params nesting', () => {
  function nested(depth: number, array: boolean): unknown {
    let value: unknown = 1;
    for (let i = 0; i < depth; i++) value = array ? [value] : { a: value, b: 'leaf' };
    return value;
  }

  it('counts objects and arrays alike, and only own keys', () => {
    for (const array of [false, true]) {
      expect(nestsDeeperThan(nested(MAX_PARAMS_DEPTH, array), MAX_PARAMS_DEPTH), `array ${array}`).toBe(false);
      expect(nestsDeeperThan(nested(MAX_PARAMS_DEPTH + 1, array), MAX_PARAMS_DEPTH), `array ${array}`).toBe(true);
    }
    expect(nestsDeeperThan({ publishes: [{ messages: [nested(MAX_PARAMS_DEPTH - 4, false)] }] }, MAX_PARAMS_DEPTH)).toBe(false);
    expect(nestsDeeperThan({ publishes: [{ messages: [nested(MAX_PARAMS_DEPTH - 3, false)] }] }, MAX_PARAMS_DEPTH)).toBe(true);
    expect(nestsDeeperThan(JSON.parse('{"__proto__":{"a":{"b":1}}}'), 2)).toBe(true);
    expect(nestsDeeperThan('text', 0)).toBe(false);
    expect(nestsDeeperThan(null, 0)).toBe(false);
  });
});

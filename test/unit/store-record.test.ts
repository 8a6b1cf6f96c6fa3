import { describe, expect, it } from 'vitest';
import { openRecord, seal } from '../../src/backend/level/record.js';

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

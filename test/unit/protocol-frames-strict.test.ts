import { describe, expect, it } from 'vitest';
import { InvalidUtf8Line, LineDecoder } from '../../src/protocol/frames.js';

describe('LineDecoder.pushStrict', () => {
  it('returns valid lines as text, and a line that is not UTF-8 as InvalidUtf8Line, keeping the lines around it', () => {
    const decoder = new LineDecoder();
    const lines = decoder.pushStrict(Buffer.concat([Buffer.from('"a"\n"b'), Buffer.from([0xff]), Buffer.from('"\n"c"\n')]));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('"a"');
    expect(lines[1]).toBeInstanceOf(InvalidUtf8Line);
    expect((lines[1] as InvalidUtf8Line).lenient).toBe('"b\uFFFD"');
    expect(lines[2]).toBe('"c"');
  });

  it('refuses overlong encodings, surrogates and cut-off sequences that lenient decoding would replace', () => {
    for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const [line] = new LineDecoder().pushStrict(Buffer.concat([Buffer.from(bad), Buffer.from('\n')]));
      expect(line, bad.join(',')).toBeInstanceOf(InvalidUtf8Line);
    }
  });

  it('keeps a multi-byte character split between chunks whole', () => {
    const decoder = new LineDecoder();
    const bytes = Buffer.from('é€😀\n');
    const lines: unknown[] = [];
    for (let i = 0; i < bytes.length; i++) lines.push(...decoder.pushStrict(bytes.subarray(i, i + 1)));
    expect(lines).toEqual(['é€😀']);
  });
});

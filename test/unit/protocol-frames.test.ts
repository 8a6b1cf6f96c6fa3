import { describe, expect, it } from 'vitest';
import { DiscueError } from '../../src/protocol/errors.js';
import { LineDecoder, MAX_FRAME_BYTES, encodeFrame, parseReply, parseRequest } from '../../src/protocol/frames.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DiscueError);
    return (err as DiscueError).code;
  }
  throw new Error('expected a DiscueError');
}

describe('LineDecoder', () => {
  it('splits lines across and within chunks', () => {
    const decoder = new LineDecoder();
    expect(decoder.push(Buffer.from('{"a":1}\n{"b"'))).toEqual(['{"a":1}']);
    expect(decoder.buffered).toBe(4);
    expect(decoder.push(Buffer.from(':2}\n\n{"c":3}\n'))).toEqual(['{"b":2}', '', '{"c":3}']);
    expect(decoder.buffered).toBe(0);
  });

  it('keeps a multi-byte character split between chunks whole', () => {
    const decoder = new LineDecoder();
    const bytes = Buffer.from('"é€😀"\n');
    const lines: string[] = [];
    for (let i = 0; i < bytes.length; i++) lines.push(...decoder.push(bytes.subarray(i, i + 1)));
    expect(lines).toEqual(['"é€😀"']);
  });

  it('accepts a line of exactly the limit and refuses one byte more', () => {
    expect(new LineDecoder(10).push(Buffer.from('0123456789\n'))).toEqual(['0123456789']);
    expect(codeOf(() => new LineDecoder(10).push(Buffer.from('0123456789A\n')))).toBe('FRAME_TOO_LARGE');
    const split = new LineDecoder(10);
    split.push(Buffer.from('01234'));
    expect(codeOf(() => split.push(Buffer.from('56789A\n')))).toBe('FRAME_TOO_LARGE');
  });

  it('refuses an endless line as soon as it passes the limit, never buffering more', () => {
    const decoder = new LineDecoder(1024);
    const chunk = Buffer.alloc(100, 0x61);
    let pushed = 0;
    let code = '';
    while (pushed < 100_000 && code === '') {
      try {
        decoder.push(chunk);
        pushed += chunk.length;
      } catch (err) {
        code = (err as DiscueError).code;
      }
      expect(decoder.buffered).toBeLessThanOrEqual(1024);
    }
    expect(code).toBe('FRAME_TOO_LARGE');
    expect(pushed).toBeLessThanOrEqual(1024);
  });

  it('defaults to the protocol limit', () => {
    const decoder = new LineDecoder();
    decoder.push(Buffer.alloc(MAX_FRAME_BYTES, 0x61));
    expect(codeOf(() => decoder.push(Buffer.from('a')))).toBe('FRAME_TOO_LARGE');
  });
});

describe('parseRequest', () => {
  it('accepts a well-formed request, params optional', () => {
    expect(parseRequest('{"id":3,"type":"queue.list"}')).toEqual({ id: 3, type: 'queue.list', params: undefined });
    expect(parseRequest(encodeFrame({ id: 0, type: 'hello', params: { protocol: 1 } }).trim())).toEqual({
      id: 0,
      type: 'hello',
      params: { protocol: 1 },
    });
  });

  it.each([
    ['garbage', 'not json'],
    ['a JSON array', '[1,2]'],
    ['a JSON string', '"hello"'],
    ['null', 'null'],
    ['no id', '{"type":"x"}'],
    ['a string id', '{"id":"1","type":"x"}'],
    ['a negative id', '{"id":-1,"type":"x"}'],
    ['a fractional id', '{"id":1.5,"type":"x"}'],
    ['no type', '{"id":1}'],
    ['an empty type', '{"id":1,"type":""}'],
    ['a numeric type', '{"id":1,"type":7}'],
  ])('refuses %s with BAD_FRAME', (_what, line) => {
    expect(codeOf(() => parseRequest(line))).toBe('BAD_FRAME');
  });
});

describe('parseReply', () => {
  it('accepts ok, error and event replies', () => {
    expect(parseReply('{"id":1,"ok":true,"result":[1]}')).toEqual({ id: 1, ok: true, result: [1] });
    expect(parseReply('{"id":1,"ok":true}')).toEqual({ id: 1, ok: true });
    expect(parseReply('{"id":2,"ok":false,"error":{"code":"QUEUE_NOT_FOUND","message":"m"}}')).toMatchObject({
      ok: false,
      error: { code: 'QUEUE_NOT_FOUND' },
    });
    expect(parseReply('{"id":3,"event":{"x":1}}')).toEqual({ id: 3, event: { x: 1 } });
  });

  it.each([
    ['garbage', 'HTTP/1.1 400 Bad Request'],
    ['an array', '[1]'],
    ['no id', '{"ok":true}'],
    ['our own request echoed back', '{"id":1,"type":"hello","params":{"protocol":1}}'],
    ['an error without a code', '{"id":1,"ok":false,"error":{"message":"m"}}'],
    ['an error that is a string', '{"id":1,"ok":false,"error":"bad"}'],
    ['a non-boolean ok', '{"id":1,"ok":"yes"}'],
  ])('refuses %s with NOT_A_DISCUE_SOCKET', (_what, line) => {
    expect(codeOf(() => parseReply(line))).toBe('NOT_A_DISCUE_SOCKET');
  });
});

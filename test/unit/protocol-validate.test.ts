import { describe, expect, it } from 'vitest';
import { thrownError } from '../helpers/throws.js';
import { MAX_DATA_BYTES, parseMessage, validateMessage, validateQueueName } from '../../src/protocol/validate.js';


describe('validateMessage', () => {
  it('accepts data with an optional name, and nothing else', () => {
    expect(validateMessage({ data: '' })).toEqual({ data: '' });
    expect(validateMessage({ data: 'x', name: 'n' })).toEqual({ data: 'x', name: 'n' });
  });

  it.each([
    ['a string', 'x'],
    ['an array', [{ data: 'x' }]],
    ['null', null],
    ['missing data', { name: 'n' }],
    ['numeric data', { data: 1 }],
    ['object data', { data: { a: 1 } }],
    ['null data', { data: null }],
    ['boolean data', { data: true }],
    ['an unknown field', { data: 'x', id: 1 }],
    ['a numeric name', { data: 'x', name: 1 }],
    ['an empty name', { data: 'x', name: '' }],
    ['a name of 257 characters', { data: 'x', name: 'n'.repeat(257) }],
  ])('refuses %s with INVALID_MESSAGE', (_what, value) => {
    expect(thrownError(() => validateMessage(value)).code).toBe('INVALID_MESSAGE');
  });

  it('measures the data limit in UTF-8 bytes', () => {
    expect(validateMessage({ data: 'x'.repeat(MAX_DATA_BYTES) }).data).toHaveLength(MAX_DATA_BYTES);
    expect(validateMessage({ data: 'é'.repeat(MAX_DATA_BYTES / 2) }).data).toHaveLength(MAX_DATA_BYTES / 2);
    expect(thrownError(() => validateMessage({ data: 'x'.repeat(MAX_DATA_BYTES + 1) })).code).toBe('MESSAGE_TOO_LARGE');
    expect(thrownError(() => validateMessage({ data: 'é'.repeat(MAX_DATA_BYTES / 2) + 'x' })).code).toBe('MESSAGE_TOO_LARGE');
  });

  it('names where the bad message is and what is wrong', () => {
    const err = thrownError(() => validateMessage({ data: 5 }, 'line 7'));
    expect(err.message).toMatch(/^line 7: "data" must be a string, got a number/);
    expect(thrownError(() => validateMessage({ data: 'x', extra: 1 })).message).toContain('"extra"');
  });
});

describe('parseMessage', () => {
  it('parses JSON text, refusing bad JSON with INVALID_JSON', () => {
    expect(parseMessage('{"data":"a","name":"b"}')).toEqual({ data: 'a', name: 'b' });
    const err = thrownError(() => parseMessage('{"data":', 'line 2'));
    expect(err.code).toBe('INVALID_JSON');
    expect(err.message).toMatch(/^line 2: not valid JSON/);
    expect(thrownError(() => parseMessage('{"data":1}')).code).toBe('INVALID_MESSAGE');
  });
});

describe('validateQueueName', () => {
  it.each(['a', 'A.b_c-1', 'a'.repeat(64), '..', '-x'])('accepts %j', (name) => {
    expect(validateQueueName(name)).toBe(name);
  });
  it.each(['', ' ', 'a'.repeat(65), 'a b', 'a/b', 'ü', 'a\n', 'a:b', 5, null, undefined])('refuses %j', (name) => {
    expect(thrownError(() => validateQueueName(name)).code).toBe('INVALID_QUEUE_NAME');
  });
});

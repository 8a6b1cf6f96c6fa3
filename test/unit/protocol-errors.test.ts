import { describe, expect, it, vi } from 'vitest';
import { DiscueError, ERROR_CODES, EXIT, exitCodeFor, isDiscueError } from '../../src/protocol/errors.js';

describe('error codes', () => {
  it('map to the exit codes of the spec', () => {
    const expected: Record<string, number> = {
      INVALID_JSON: 2,
      INVALID_MESSAGE: 2,
      INVALID_QUEUE_NAME: 2,
      INVALID_SCHEMA: 2,
      USAGE: 2,
      MESSAGE_TOO_LARGE: 1,
      SCHEMA_VIOLATION: 1,
      DATA_NOT_JSON: 1,
      HOME_NOT_WRITABLE: 1,
      QUEUE_NOT_FOUND: 4,
      MESSAGE_NOT_FOUND: 4,
      QUEUE_EXISTS: 5,
      QUEUE_NOT_EMPTY: 5,
      DAEMON_UNREACHABLE: 3,
      DAEMON_DIED: 3,
      DAEMON_START_FAILED: 3,
      NOT_A_DISCUE_SOCKET: 3,
      PROTOCOL_MISMATCH: 3,
      TIMEOUT: 124,
      INTERRUPTED: 130,
    };
    for (const [code, exit] of Object.entries(expected)) expect(exitCodeFor(code), code).toBe(exit);
    const documented = new Set<number>(Object.values(EXIT));
    for (const [code, exit] of Object.entries(ERROR_CODES)) expect(documented.has(exit), code).toBe(true);
    expect(exitCodeFor('SOMETHING_NEW')).toBe(1);
  });

  it('are stable uppercase identifiers', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(code).toMatch(/^[A-Z][A-Z_]*[A-Z]$/);
  });

  it('cross the socket and come back as the same DiscueError', () => {
    const err = new DiscueError('SCHEMA_VIOLATION', 'no', { details: { index: 2 }, cause: new Error('inner') });
    expect(err.toWire()).toEqual({ code: 'SCHEMA_VIOLATION', message: 'no', details: { index: 2 } });
    const back = DiscueError.fromWire(JSON.parse(JSON.stringify(err.toWire())));
    expect(isDiscueError(back)).toBe(true);
    expect([back.code, back.message, back.exitCode]).toEqual(['SCHEMA_VIOLATION', 'no', 1]);
    expect(back.details).toEqual({ index: 2 });
    expect(new DiscueError('USAGE', 'x').toWire()).toEqual({ code: 'USAGE', message: 'x' });
    // A code this client does not know (a newer daemon) is not trusted as one it does.
    expect(DiscueError.fromWire({ code: 'FROM_THE_FUTURE', message: 'm' }).code).toBe('INTERNAL');
    expect(isDiscueError(new Error('plain'))).toBe(false);
  });

  it('is recognised across copies of its module (the CLI bundle holds one, the daemon code in dist/ another)', async () => {
    vi.resetModules();
    const copy = await import('../../src/protocol/errors.js');
    expect(copy.DiscueError).not.toBe(DiscueError);
    const fromCopy = new copy.DiscueError('ALREADY_RUNNING', 'another daemon');
    expect(fromCopy instanceof DiscueError).toBe(true);
    expect(isDiscueError(fromCopy)).toBe(true);
    expect(new DiscueError('USAGE', 'x') instanceof copy.DiscueError).toBe(true);
    expect(new Error('plain') instanceof DiscueError).toBe(false);
    expect(Object.assign(new Error('look-alike'), { code: 'USAGE' }) instanceof DiscueError).toBe(false);
  });
});

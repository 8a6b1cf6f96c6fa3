/** The DiscueError a function throws; fails the test if it throws nothing or something else. */
import { expect } from 'vitest';
import { DiscueError } from '../../src/protocol/errors.js';

export function thrownError(fn: () => unknown): DiscueError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DiscueError);
    return err as DiscueError;
  }
  throw new Error('expected a DiscueError');
}

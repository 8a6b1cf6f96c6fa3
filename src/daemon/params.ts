/** Checks request params once, where they enter the daemon. */
import { DiscueError } from '../protocol/errors.js';

export type Params = Record<string, unknown>;

export function asParams(value: unknown): Params {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new DiscueError('INVALID_ARGUMENT', 'request params must be an object');
  }
  return value as Params;
}

export function requireString(params: Params, key: string): string {
  const value = params[key];
  if (typeof value !== 'string') throw new DiscueError('INVALID_ARGUMENT', `"${key}" must be a string`);
  return value;
}

export function optionalString(params: Params, key: string): string | undefined {
  const value = params[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new DiscueError('INVALID_ARGUMENT', `"${key}" must be a string`);
  return value;
}

export function optionalInt(params: Params, key: string, min: number, max: number): number | undefined {
  const value = params[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new DiscueError('INVALID_ARGUMENT', `"${key}" must be a whole number from ${min} to ${max}`);
  }
  return value;
}

/** Like optionalInt, but `null` is kept (it means "remove this setting"). */
export function nullableInt(params: Params, key: string, min: number, max: number): number | null | undefined {
  if (params[key] === null) return null;
  return optionalInt(params, key, min, max);
}

export function optionalBoolean(params: Params, key: string): boolean | undefined {
  const value = params[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new DiscueError('INVALID_ARGUMENT', `"${key}" must be true or false`);
  return value;
}

export function optionalObject(params: Params, key: string): Record<string, unknown> | undefined {
  const value = params[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new DiscueError('INVALID_ARGUMENT', `"${key}" must be an object`);
  }
  return value as Record<string, unknown>;
}

/** Deepest nesting of objects and arrays a request's params may have. */
export const MAX_PARAMS_DEPTH = 100;

/**
 * True if `value` nests objects or arrays deeper than `max`. Iterative: a
 * 16 MiB frame can nest millions deep, and whatever walked it recursively
 * later (a schema compiler, JSON.stringify of what is stored) would overflow
 * the stack.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  // Two stacks, not one of [item, depth] pairs: every publish passes through
  // here, and a pair per object was garbage made per message.
  const items: object[] = [value];
  const depths: number[] = [0];
  while (items.length > 0) {
    const item = items.pop()!;
    const depth = depths.pop()!;
    if (depth >= max) return true;
    if (Array.isArray(item)) {
      for (const child of item as unknown[]) {
        if (typeof child === 'object' && child !== null) {
          items.push(child);
          depths.push(depth + 1);
        }
      }
    } else {
      for (const key in item) {
        if (!Object.hasOwn(item, key)) continue;
        const child = (item as Record<string, unknown>)[key];
        if (typeof child === 'object' && child !== null) {
          items.push(child);
          depths.push(depth + 1);
        }
      }
    }
  }
  return false;
}

/**
 * What a listener chooses to receive and how fast: filters on the message
 * name and the rate limit, checked the same way by the CLI, the daemon and
 * every backend (a JetStream backend turns a filter into a subject filter:
 * `*` and `>` mean there what they mean here).
 */
import { DiscueError } from './errors.js';

/** Most filters one listener may have. */
export const MAX_FILTERS = 100;

const SEGMENT_RE = /^[A-Za-z0-9_\-:+=@$%^&!~]+$/;

/**
 * A filter is dot-separated segments: a literal, `*` (exactly one segment)
 * or, last only, `>` (one or more segments). Anything else is refused with
 * INVALID_FILTER rather than matching nothing silently.
 */
export function validateFilter(filter: unknown): string {
  if (typeof filter !== 'string' || filter === '') throw new DiscueError('INVALID_FILTER', 'a filter must be a non-empty glob such as "order.*" or "payment.>"');
  if (filter.length > 255) throw new DiscueError('INVALID_FILTER', `filter too long (${filter.length} characters, at most 255)`);
  const segments = filter.split('.');
  segments.forEach((segment, i) => {
    if (segment === '*') return;
    if (segment === '>') {
      if (i === segments.length - 1) return;
      throw new DiscueError('INVALID_FILTER', `invalid filter ${JSON.stringify(filter)}: ">" matches the rest of the name, so it can only be the last segment`);
    }
    if (!SEGMENT_RE.test(segment)) {
      throw new DiscueError(
        'INVALID_FILTER',
        `invalid filter ${JSON.stringify(filter)}: segment ${JSON.stringify(segment)} — segments are separated by single dots; "*" stands for one whole segment, ">" for the rest (no partial wildcards like "ord*")`,
      );
    }
  });
  return filter;
}

export function validateFilters(filters: unknown): string[] {
  if (!Array.isArray(filters)) throw new DiscueError('INVALID_FILTER', '"filters" must be an array of globs');
  if (filters.length > MAX_FILTERS) throw new DiscueError('INVALID_FILTER', `at most ${MAX_FILTERS} filters per listener (got ${filters.length})`);
  return [...new Set(filters.map(validateFilter))];
}

/**
 * A matcher for a listener's filters: none (or an empty list) matches
 * everything; otherwise a message matches when any filter does, and a
 * message without a name matches none.
 */
export function nameMatcher(filters: readonly string[] | undefined): ((name: string | undefined) => boolean) | undefined {
  if (!filters || filters.length === 0) return undefined;
  const exact = new Set<string>();
  const patterns: string[][] = [];
  for (const f of filters) {
    if (isWildcard(f)) patterns.push(f.split('.'));
    else exact.add(f);
  }
  return (name) => {
    if (name === undefined) return false;
    if (exact.has(name)) return true;
    if (patterns.length === 0) return false;
    const parts = name.split('.');
    return patterns.some((p) => segmentsMatch(p, parts));
  };
}

/**
 * The names a listener's filters take when none has a wildcard: then a
 * batch indexed by name is searched for them rather than tested message by
 * message. Undefined with no filters or with any wildcard.
 */
export function literalNames(filters: readonly string[] | undefined): readonly string[] | undefined {
  if (!filters || filters.length === 0 || filters.some(isWildcard)) return undefined;
  return filters;
}

const isWildcard = (filter: string): boolean => filter.includes('*') || filter.includes('>');

function segmentsMatch(pattern: string[], parts: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === '>') return parts.length > i;
    if (i >= parts.length) return false;
    if (p !== '*' && p !== parts[i]) return false;
  }
  return parts.length === pattern.length;
}

/** A rate limit: at most `count` sends per `perMs`. */
export interface Rate {
  count: number;
  perMs: number;
}

const RATE_RE = /^([1-9][0-9]{0,6})\/(s|m)$/;

/** "20/s" or "600/m"; INVALID_ARGUMENT (exit 2) otherwise. */
export function parseRate(text: unknown): Rate {
  const m = typeof text === 'string' ? RATE_RE.exec(text.trim()) : null;
  if (!m) throw new DiscueError('INVALID_ARGUMENT', `invalid rate ${JSON.stringify(text)}: give N/s or N/m, e.g. 20/s or 600/m`);
  return { count: Number(m[1]), perMs: m[2] === 's' ? 1000 : 60_000 };
}

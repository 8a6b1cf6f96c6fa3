/**
 * The one duration grammar users type: options (`--timeout 30s`), config keys
 * and environment variables (DISCUE_REQUEST_TIMEOUT). It lives with the client
 * because the library reads DISCUE_REQUEST_TIMEOUT too, and the CLI sits above
 * the client; the daemon never parses one (it is given milliseconds).
 */
import { DiscueError } from '../protocol/errors.js';

/** One number and its unit; a duration is one or more of them ("1m30s"), or a bare number. */
const DURATION_PART_RE = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*/y;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "500ms", "30s", "1m30s", "5m", "2h", "7d", "1w"; a bare number means seconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim();
  let ms: number | undefined;
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) {
    ms = Number(trimmed) * UNIT_MS.s!;
  } else {
    ms = sumOfParts(trimmed);
  }
  if (ms === undefined) {
    throw new DiscueError(
      'INVALID_DURATION',
      `invalid ${what} ${JSON.stringify(text)}: use a number with a unit, like 500ms, 30s, 1m30s, 5m, 2h, 7d`,
    );
  }
  if (!Number.isFinite(ms) || ms <= 0 || ms > 100 * 365 * UNIT_MS.d!) {
    throw new DiscueError('INVALID_DURATION', `invalid ${what} ${JSON.stringify(text)}: out of range`);
  }
  return Math.round(ms);
}

/**
 * True if `text` is a duration written with its units ("10m", "1m30s"), not
 * a bare number: for options where a bare number would be ambiguous
 * (`messages list --since 10`).
 */
export function hasDurationUnits(text: string): boolean {
  return sumOfParts(text.trim()) !== undefined;
}

/** The milliseconds of "1m30s" (one or more number-unit parts); undefined if it is not that. */
function sumOfParts(text: string): number | undefined {
  if (text === '') return undefined;
  let ms = 0;
  DURATION_PART_RE.lastIndex = 0;
  while (DURATION_PART_RE.lastIndex < text.length) {
    const match = DURATION_PART_RE.exec(text);
    if (!match) return undefined;
    ms += Number(match[1]) * UNIT_MS[match[2]!]!;
  }
  return ms;
}

/** A duration the way one types it: 30s, 1m30s, 7d, 500ms (parseDuration reads it back). */
export function formatDuration(ms: number): string {
  let rest = Math.round(ms);
  let text = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit]!;
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text || '0ms';
}

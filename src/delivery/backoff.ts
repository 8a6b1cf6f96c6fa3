/** Retry policy: exponential backoff with full jitter in its upper half, capped. */
import { MAX_BACKOFF_MS } from '../protocol/defaults.js';

/** A Retry-After longer than this is cut to it, so a listener cannot park a delivery for days. */
export const MAX_RETRY_AFTER_MS = 60 * 60_000;

/** Delay before attempt `next` (2, 3, ...) given the listener's first delay. */
export function backoffMs(next: number, baseMs: number, random: () => number = Math.random): number {
  const exp = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, next - 2));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/**
 * The three HTTP-date forms (RFC 9110 §5.6.7): IMF-fixdate and RFC 850 start
 * with a day name and a comma, asctime with day and month names. Date.parse
 * alone would read garbage such as "-5" or "1.5" as some date.
 */
const HTTP_DATE_RE = /^(?:[A-Za-z]{3,9}, \d{1,2}[ -][A-Za-z]{3}[ -]\d{2,4} \d{2}:\d{2}:\d{2} GMT|[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4})$/;

/** Parses Retry-After (seconds or an HTTP date) into milliseconds from now. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  const text = raw?.trim();
  if (text === undefined || text === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    if (!HTTP_DATE_RE.test(text)) return undefined;
    const at = Date.parse(/ GMT$/.test(text) ? text : text + ' GMT');
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.max(0, Math.min(ms, MAX_RETRY_AFTER_MS));
}

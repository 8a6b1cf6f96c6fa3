/** Retry policy: exponential backoff with full jitter in its upper half, capped. */

export const MAX_BACKOFF_MS = 10 * 60_000;
/** A Retry-After longer than this is cut to it, so a listener cannot park a delivery for days. */
export const MAX_RETRY_AFTER_MS = 60 * 60_000;

/** Delay before attempt `next` (2, 3, ...) given the listener's first delay. */
export function backoffMs(next: number, baseMs: number, random: () => number = Math.random): number {
  const exp = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, next - 2));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds from now. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(text.trim())) ms = Number(text.trim()) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.max(0, Math.min(ms, MAX_RETRY_AFTER_MS));
}

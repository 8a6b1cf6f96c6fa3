/** Checks and limits more than one resource's handlers share. */
import { DiscueError } from '../../protocol/errors.js';
import { validateQueueName } from '../../protocol/validate.js';

/** Longest duration a request may give (retention, a wait). */
export const HUNDRED_YEARS_MS = 100 * 365 * 86_400_000;
/** Most records one listing request may ask for. */
export const MAX_LIST = 10_000;

export function queueList(value: unknown): string[] {
  if (!Array.isArray(value)) throw new DiscueError('INVALID_ARGUMENT', '"queues" must be an array of queue names');
  return [...new Set(value.map((q) => validateQueueName(q)))];
}

const LISTENER_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

export function validateListenerName(name: string): void {
  if (!LISTENER_NAME_RE.test(name)) {
    throw new DiscueError('INVALID_ARGUMENT', `invalid listener name ${JSON.stringify(name)}: use 1-64 characters of a-z A-Z 0-9 . _ -`);
  }
}

export function validateUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new DiscueError('INVALID_ARGUMENT', `invalid URL ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DiscueError('INVALID_ARGUMENT', `a listener URL must be http:// or https://, got ${url.protocol}`);
  }
  return url.toString();
}

const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const RESERVED_HEADERS = new Set(['content-type', 'content-length', 'host', 'webhook-id', 'webhook-timestamp', 'webhook-signature', 'transfer-encoding', 'connection']);

export function validateHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (!HEADER_NAME_RE.test(key) || typeof value !== 'string' || /[\r\n\0]/.test(value)) {
      throw new DiscueError('INVALID_ARGUMENT', `invalid header ${JSON.stringify(key)}`);
    }
    if (RESERVED_HEADERS.has(key.toLowerCase())) {
      throw new DiscueError('INVALID_ARGUMENT', `header ${key} is set by discue and cannot be overridden`);
    }
    out[key] = value;
  }
  return out;
}

/**
 * Credentials a listener carries besides its signing secret: a password in
 * its URL (http://user:pass@host/) and the values of its extra headers
 * (`--header 'Authorization: Bearer …'`). Like the secret, the daemon shows
 * them only to `listener show --secret`; everything else (list, show, top,
 * --json, the reply to add, the HTTP API) gets them masked.
 */

const MASK = '***';

/** `http://user:***@host/`; a user name alone is masked too (it is often a token). */
export function maskUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  if (url.password !== '') url.password = MASK;
  else if (url.username !== '') url.username = MASK;
  else return text;
  return url.toString();
}

/**
 * Every header value masked, names kept: which header carries a credential
 * is not knowable from its name (X-Api-Key, X-Shop-Auth, a cookie), so none
 * is guessed at.
 */
export function maskHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(headers).map((name) => [name, MASK]));
}

/** A listener as shown without --secret: URL and header credentials masked, the secret gone. */
export function maskListener<T extends { url?: string; headers?: Record<string, string>; secret?: string }>(info: T): T {
  const masked = { ...info };
  if (masked.url !== undefined) masked.url = maskUrl(masked.url);
  if (masked.headers !== undefined) masked.headers = maskHeaders(masked.headers);
  delete masked.secret;
  return masked;
}

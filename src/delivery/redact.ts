/**
 * Credentials embedded in a listener URL (http://user:pass@host/) are a
 * secret like the signing secret: the daemon shows them only to
 * `listener show --secret`. Everything else (list, show, top, --json, the
 * reply to add) gets the URL with the password masked.
 */

/** `http://user:***@host/`; a user name alone is masked too (it is often a token). */
export function maskUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  if (url.password !== '') url.password = '***';
  else if (url.username !== '') url.username = '***';
  else return text;
  return url.toString();
}

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com):
 * webhook-signature = "v1," + base64(HMAC-SHA256(secret, `${id}.${timestamp}.${body}`)),
 * where the secret is the base64 after the "whsec_" prefix.
 */
import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { DiscueError } from '../protocol/errors.js';

export const SECRET_PREFIX = 'whsec_';

export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(24).toString('base64');
}

export function validateSecret(secret: string): string {
  const body = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : '';
  const key = Buffer.from(body, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || key.length < 16 || key.length > 64) {
    throw new DiscueError('INVALID_ARGUMENT', 'a webhook secret is "whsec_" followed by 16-64 bytes in base64');
  }
  return secret;
}

export function sign(secret: string, id: string, timestamp: number, body: string): string {
  return signer(secret)(id, timestamp, body);
}

/**
 * Signs with one secret, its key decoded and imported once: a listener signs
 * every delivery with the same secret, and decoding it per message showed in
 * the delivery profile.
 */
export function signer(secret: string): (id: string, timestamp: number, body: string) => string {
  const key = createSecretKey(Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64'));
  return (id, timestamp, body) => `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * CloudEvents 1.0, HTTP binary mode, for listeners added with --cloudevents:
 * the attributes go in ce-* headers and the body stays the envelope, so one
 * request is both a CloudEvent (its data is the envelope, application/json)
 * and a Standard Webhook (its signature covers that same body).
 */
import type { Envelope } from '../protocol/wire.js';

/** The event type of a message without a name. */
export const DEFAULT_EVENT_TYPE = 'discue.message';

export function cloudEventHeaders(message: Envelope): Record<string, string> {
  return {
    'ce-specversion': '1.0',
    'ce-id': message.id,
    // A URI-reference naming the queue; with the message id, unique across the broker.
    'ce-source': `/discue/queues/${encodeURIComponent(message.queue)}`,
    'ce-type': headerValue(message.name ?? DEFAULT_EVENT_TYPE),
    'ce-time': message.publishedAt,
  };
}

/**
 * The HTTP binding's encoding of an attribute value: space, `"`, `%` and
 * everything outside printable ASCII percent-encoded as UTF-8 (a message name
 * may hold any character; a header may not).
 */
export function headerValue(text: string): string {
  return text.replace(/[^\x21\x23\x24\x26-\x7e]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

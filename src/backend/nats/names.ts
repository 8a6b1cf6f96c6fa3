/**
 * Every name the NATS backend gives to something on the server, in one place.
 *
 * A namespace (default `discue`) prefixes them all, so several discue
 * installations (or test runs) can share one cluster. A queue is stored in a
 * stream named by the queue's creation id, not its name: a queue deleted and
 * created again never sees the old one's messages, and renaming a queue is a
 * catalogue change only (streams cannot be renamed).
 *
 *   stream   <NS>_Q_<qid>            subject  <ns>.q.<qid>
 *   KV       <ns>_catalog            queue.<enc(name)>, listener.<lid>, cursor.<lid>.<qid>
 *   KV       <ns>_deliveries         <lid>.<messageId>   open and dead delivery records
 *   stream   <NS>_HISTORY            subject <ns>.h.<lid>: delivered records, the newest 1000 per listener
 *   consumer L_<lid>                 durable pull consumer of one listener on one queue stream
 */

import { DiscueError } from '../../protocol/errors.js';
import { isMessageId, timeOfId } from '../../protocol/ids.js';

/** Namespaces are plain lowercase tokens: legal in stream, bucket, subject and KV key names, and one to one with the uppercase stream prefix. */
export const NAMESPACE_RE = /^[a-z0-9_-]{1,32}$/;

/**
 * A queue name as one KV key token: `.` separates tokens in NATS, so it
 * becomes `=`, which queue names never contain (one to one).
 */
export function enc(name: string): string {
  return name.replaceAll('.', '=');
}

export function dec(token: string): string {
  return token.replaceAll('=', '.');
}

export class Names {
  constructor(readonly ns: string) {
    if (!NAMESPACE_RE.test(ns)) throw new DiscueError('INVALID_ARGUMENT', `invalid NATS namespace ${JSON.stringify(ns)}: lowercase letters, digits, _ and -, at most 32`);
  }

  stream(qid: string): string {
    return `${this.ns.toUpperCase()}_Q_${qid}`;
  }

  /** The stream-name prefix of every queue stream (to find them, e.g. to clean up). */
  get streamPrefix(): string {
    return `${this.ns.toUpperCase()}_Q_`;
  }

  subject(qid: string): string {
    return `${this.ns}.q.${qid}`;
  }

  get catalogBucket(): string {
    return `${this.ns}_catalog`;
  }

  get deliveriesBucket(): string {
    return `${this.ns}_deliveries`;
  }

  /** Delivered records: one subject per listener (history.ts). */
  get historyStream(): string {
    return `${this.ns.toUpperCase()}_HISTORY`;
  }

  historySubject(lid: string): string {
    return `${this.ns}.h.${lid}`;
  }

  queueKey(name: string): string {
    return `queue.${enc(name)}`;
  }

  listenerKey(lid: string): string {
    return `listener.${lid}`;
  }

  cursorKey(lid: string, qid: string): string {
    return `cursor.${lid}.${qid}`;
  }

  recordKey(lid: string, messageId: string): string {
    return `${lid}.${messageId}`;
  }

  consumer(lid: string): string {
    return `L_${lid}`;
  }
}

/**
 * Headers a stored message carries besides its data (the payload, as
 * published). Most messages carry only Nats-Msg-Id, which is then their
 * discue id: every header costs publish throughput (measured: three headers
 * instead of one took a third off at 256 in flight). The time a message was
 * published is the time its id carries.
 */
export const HEADER = {
  /** JetStream's idempotency header: the message id, or `key:<key>` for a keyed publish. */
  msgId: 'Nats-Msg-Id',
  /** The message id, where Nats-Msg-Id holds a key instead. */
  id: 'Discue-Id',
  /** The message's name, when it has one. */
  name: 'Discue-Name',
} as const;

export interface Headers {
  get(key: string): string;
}

/** The discue id of a stored message, or undefined when it has none (not published by discue). */
export function messageIdOf(headers: Headers | undefined): string | undefined {
  if (headers === undefined) return undefined;
  const id = headers.get(HEADER.id) || headers.get(HEADER.msgId);
  return isMessageId(id) ? id : undefined;
}

let lastMs = NaN;
let lastIso = '';

/** When a message was published: the millisecond its id was made (the last one's text is reused: ids of a burst share their ms). */
export function publishedAtOf(id: string): string {
  const ms = timeOfId(id);
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

import type { Attempt, Envelope } from '../protocol/wire.js';

/**
 * What one delivery attempt came to: the fields an Attempt records (the
 * worker adds its number, time and duration), and what the retry policy
 * needs besides (decide.ts).
 */
export interface SendResult extends Omit<Attempt, 'attempt' | 'at' | 'durationMs'> {
  /** The receiver asked to wait this long (Retry-After). */
  retryAfterMs?: number;
  /** The receiver said 410 Gone: disable the listener. */
  gone?: boolean;
  /** Not an attempt at all: the receiver went away (a `listen` that disconnected). */
  interrupted?: boolean;
}

export interface Sender {
  send(message: Envelope, attempt: number, signal: AbortSignal): Promise<SendResult>;
}

/** Keeps the last `max` characters of a response or command output. */
export function tail(text: string, max = 512): string {
  return text.length <= max ? text : '…' + text.slice(text.length - max);
}

/**
 * The retry policy, the same for every backend: what a send's result means
 * for the delivery, given the attempts made so far and the listener's
 * settings. Pure; the worker carries the decision out on the consumer.
 */
import type { DeliveryRecord, ListenerRecord } from '../backend/types.js';
import { backoffMs } from './backoff.js';
import type { SendResult } from './types.js';

export type Decision =
  | { outcome: 'delivered' }
  /** Try again after `delayMs` (backoff, or the receiver's Retry-After if longer). */
  | { outcome: 'retry'; delayMs: number }
  /** The last attempt of the round failed. */
  | { outcome: 'dead' }
  /** The receiver answered 410 Gone: the attempt counts, the listener is disabled. */
  | { outcome: 'gone' }
  /** Not an attempt (the receiver went away mid-delivery): hand it out again later. */
  | { outcome: 'release' };

/** `record` holds the attempts before this one; `result` is this one's. */
export function decide(
  result: SendResult,
  record: Pick<DeliveryRecord, 'attempts' | 'roundStart'>,
  listener: Pick<ListenerRecord, 'maxAttempts' | 'retryDelayMs'>,
  random: () => number = Math.random,
): Decision {
  if (result.interrupted) return { outcome: 'release' };
  if (result.ok) return { outcome: 'delivered' };
  if (result.gone) return { outcome: 'gone' };
  // Counted from the start of this round: a requeued dead delivery gets max-attempts again.
  const inRound = attemptNumber(record) - (record.roundStart ?? 0);
  if (inRound >= listener.maxAttempts) return { outcome: 'dead' };
  return { outcome: 'retry', delayMs: Math.max(backoffMs(inRound + 1, listener.retryDelayMs, random), result.retryAfterMs ?? 0) };
}

/** The number of the attempt after those recorded (attempts are numbered across rounds). */
export function attemptNumber(record: Pick<DeliveryRecord, 'attempts'>): number {
  return (record.attempts[record.attempts.length - 1]?.attempt ?? 0) + 1;
}

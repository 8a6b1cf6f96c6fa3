/** How listeners are doing, in words: shared by `listener list/show`, `top` and `publish --wait`. */
import type { ListenerHealth, ListenerProgress } from '../protocol/wire.js';

/** One health over a listener's queues: the worst failure streak, the earliest retry. */
export function combinedHealth(progress: ListenerProgress[]): ListenerHealth {
  const out: ListenerHealth = { consecutiveFailures: 0 };
  for (const p of progress) {
    if (p.lastOutcome === 'failed' || (p.lastOutcome === 'ok' && out.lastOutcome === undefined)) out.lastOutcome = p.lastOutcome;
    if (p.consecutiveFailures > out.consecutiveFailures) {
      out.consecutiveFailures = p.consecutiveFailures;
      if (p.lastError) out.lastError = p.lastError;
    }
    if (p.nextAttemptAt && (!out.nextAttemptAt || p.nextAttemptAt < out.nextAttemptAt)) out.nextAttemptAt = p.nextAttemptAt;
  }
  return out;
}

/** "ok", "-" (nothing tried yet) or "3 failed attempts, ECONNREFUSED, next retry in 8s". */
export function healthText(h: ListenerHealth, now = Date.now()): string {
  if (h.consecutiveFailures === 0) return h.lastOutcome === 'ok' ? 'ok' : '-';
  const parts = [`${h.consecutiveFailures} failed attempt${h.consecutiveFailures === 1 ? '' : 's'}`];
  if (h.lastError) parts.push(shortError(h.lastError));
  if (h.nextAttemptAt) parts.push(`next retry in ${lagText(Math.max(0, Date.parse(h.nextAttemptAt) - now))}`);
  return parts.join(', ');
}

/** The error code when there is one ("ECONNREFUSED: connect ECONNREFUSED ..." → "ECONNREFUSED"), else its first 60 characters on one line. */
export function shortError(error: string): string {
  const code = /^([A-Z][A-Z0-9_]{2,}):/.exec(error);
  if (code) return code[1]!;
  const line = error.replace(/\s+/g, ' ').trim();
  return line.length <= 60 ? line : line.slice(0, 59) + '…';
}

/** A duration as people read it: "0s", "8s", "4m 10s", "3h 2m", "2d 5h". */
export function lagText(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

import type { DeliveryRecord } from './types.js';

/**
 * A dead delivery handed out again (`deliveries retry`, a replay past it): a
 * fresh round of max-attempts that keeps the earlier attempts (they are
 * numbered across rounds), pending until it is sent. Both backends use it.
 */
export function freshRound(record: DeliveryRecord): DeliveryRecord {
  const fresh: DeliveryRecord = {
    ...record,
    attempts: [...record.attempts],
    state: 'pending',
    roundStart: record.attempts[record.attempts.length - 1]?.attempt ?? 0,
    updatedAt: new Date().toISOString(),
  };
  delete fresh.nextAttemptAt;
  return fresh;
}

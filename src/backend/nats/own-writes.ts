/**
 * Which catalogue entries the watch hands back are this process's own
 * writes (queue keys in store.ts, listener keys in deliveries.ts): the
 * writer has already changed its memory and said so, so their echo is not
 * news — and an echo that arrives late must not undo what came after it.
 *
 * Two races, both seen in CI under load: a create of queue "a" waiting for
 * its stream had its new entry forgotten by the echoed delete of a rename
 * away from "a" (so a key is held from the moment the operation takes the
 * name in memory, not only while its write is out, and held by count: two
 * operations on one key released each other's mark); and the create of a
 * queue echoed after its delete brought it back (so every write's revision
 * is kept, and an echo at or below it is stale).
 */
import type { KvEntry } from '@nats-io/kv';

export class OwnWrites {
  /** Keys held by operations of this process, and how many hold each. */
  private readonly holding = new Map<string, number>();
  /** The newest revision this process wrote per key (a removal that is final: infinity). */
  private readonly newest = new Map<string, number>();

  hold(...keys: string[]): void {
    for (const key of keys) this.holding.set(key, (this.holding.get(key) ?? 0) + 1);
  }

  release(...keys: string[]): void {
    for (const key of keys) {
      const n = (this.holding.get(key) ?? 1) - 1;
      if (n > 0) this.holding.set(key, n);
      else this.holding.delete(key);
    }
  }

  /** `key` written at `revision`; Infinity for a removal no later write can follow (listener ids are never reused). */
  wrote(key: string, revision: number): void {
    this.newest.set(key, Math.max(revision, this.newest.get(key) ?? 0));
  }

  /** Whether the watch's entry is an echo of a write of this process, in flight or done. */
  isEcho(entry: Pick<KvEntry, 'key' | 'revision'>): boolean {
    return this.holding.has(entry.key) || entry.revision <= (this.newest.get(entry.key) ?? 0);
  }
}

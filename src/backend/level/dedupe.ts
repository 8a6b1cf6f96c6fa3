/**
 * Idempotency keys: which keys each queue has stored within the dedupe
 * window, and the id of the message each first came with (JetStream's
 * Nats-Msg-Id and duplicate window, so that backend can map it directly).
 *
 * On disk each key is `k!<qid>!<key>` → {"id","at"}, written in the same
 * synced batch as its message: after a kill -9 either both exist or neither,
 * so a publisher that lost the reply can retry blindly. In memory each queue
 * has a Map in insertion order, which is age order (ids and times increase),
 * so expiry and the size bound both take from the front.
 */
import { DEDUPE_MAX_KEYS, DEDUPE_WINDOW_MS } from '../../protocol/defaults.js';
import type { DedupeOptions } from '../types.js';
import type { Op } from './commit.js';

export const DEFAULT_DEDUPE: DedupeOptions = { windowMs: DEDUPE_WINDOW_MS, maxKeys: DEDUPE_MAX_KEYS };

export const KEY_PREFIX = 'k!';
/** Keys are printable ASCII, so every key of a queue sorts below this. */
export const KEY_HIGH = '\x7f';

export interface KeyEntry {
  id: string;
  /** When the first message with this key was stored (ms since epoch). */
  at: number;
  /** Set while that message's batch is not yet on disk; a duplicate waits for it. */
  pending?: Promise<void>;
}

export function keyPrefix(qid: string): string {
  return `${KEY_PREFIX}${qid}!`;
}

export class KeyIndex {
  /** qid → key → entry, oldest first. */
  private readonly queues = new Map<string, Map<string, KeyEntry>>();

  constructor(readonly options: DedupeOptions = DEFAULT_DEDUPE) {}

  get size(): number {
    let n = 0;
    for (const keys of this.queues.values()) n += keys.size;
    return n;
  }

  /** The live entry for a key, or undefined if it was never seen or its window has passed. */
  lookup(qid: string, key: string, now: number): KeyEntry | undefined {
    const entry = this.queues.get(qid)?.get(key);
    return entry !== undefined && now - entry.at < this.options.windowMs ? entry : undefined;
  }

  /**
   * Records a key for a message about to be stored; returns the ops to write
   * in the message's batch (the key, and the removal of keys pushed out by
   * the size bound).
   */
  add(qid: string, key: string, entry: KeyEntry): Op[] {
    let keys = this.queues.get(qid);
    if (keys === undefined) {
      keys = new Map();
      this.queues.set(qid, keys);
    }
    const prefix = keyPrefix(qid);
    const ops: Op[] = [{ type: 'put', key: prefix + key, value: JSON.stringify({ id: entry.id, at: entry.at }) }];
    // Re-inserted, not updated, so the Map stays in age order.
    keys.delete(key);
    keys.set(key, entry);
    for (const oldest of keys.keys()) {
      if (keys.size <= this.options.maxKeys) break;
      keys.delete(oldest);
      ops.push({ type: 'del', key: prefix + oldest });
    }
    return ops;
  }

  /** Forgets a key whose message was never stored (its batch failed), unless it was replaced since. */
  drop(qid: string, key: string, entry: KeyEntry): void {
    const keys = this.queues.get(qid);
    if (keys?.get(key) === entry) keys.delete(key);
  }

  /** Forgets every key of a deleted queue (the caller clears them from disk). */
  forget(qid: string): void {
    this.queues.delete(qid);
  }

  /** Removes keys past the window; returns the ops that remove them from disk. */
  prune(now: number): Op[] {
    const ops: Op[] = [];
    for (const [qid, keys] of this.queues) {
      for (const [key, entry] of keys) {
        if (now - entry.at < this.options.windowMs) break;
        // Batches go to disk in order, so removing a key whose put is still
        // in flight (only with a window shorter than an fsync) is safe.
        keys.delete(key);
        ops.push({ type: 'del', key: keyPrefix(qid) + key });
      }
      if (keys.size === 0) this.queues.delete(qid);
    }
    return ops;
  }

  /**
   * Loads the stored keys (in storage order) at start-up. Keys of queues
   * that no longer exist, past the window, or unreadable are removed.
   */
  load(stored: Iterable<[string, string]>, liveQids: Set<string>, now: number): Op[] {
    const ops: Op[] = [];
    const found: { qid: string; key: string; entry: KeyEntry }[] = [];
    for (const [storageKey, value] of stored) {
      const rest = storageKey.slice(KEY_PREFIX.length);
      const bang = rest.indexOf('!');
      const qid = rest.slice(0, bang);
      const entry = bang > 0 ? parseEntry(value) : undefined;
      if (entry === undefined || !liveQids.has(qid) || now - entry.at >= this.options.windowMs) {
        ops.push({ type: 'del', key: storageKey });
        continue;
      }
      found.push({ qid, key: rest.slice(bang + 1), entry });
    }
    // Storage order is by key; memory order must be by age.
    found.sort((a, b) => a.entry.at - b.entry.at || (a.entry.id < b.entry.id ? -1 : 1));
    for (const { qid, key, entry } of found) {
      for (const op of this.add(qid, key, entry)) if (op.type === 'del') ops.push(op);
    }
    return ops;
  }
}

function parseEntry(value: string): KeyEntry | undefined {
  try {
    const parsed = JSON.parse(value) as { id?: unknown; at?: unknown };
    if (typeof parsed.id === 'string' && typeof parsed.at === 'number' && Number.isFinite(parsed.at)) {
      return { id: parsed.id, at: parsed.at };
    }
  } catch {
    // unreadable: removed by the caller
  }
  return undefined;
}

/**
 * Group commit: every write of the broker goes through one committer, which
 * keeps at most one synced LevelDB batch in flight. Writes that arrive while
 * a batch is being synced wait and go to disk together in the next one, so
 * 256 concurrent publishes cost a handful of fsyncs, not 256, and a lone
 * publish is never held back waiting for company.
 */
import type { ClassicLevel } from 'classic-level';
import type { StorageGuard } from './guard.js';

/**
 * How long a write that may wait (a delivery's acknowledgement) waits for
 * company before it is synced alone. A listener with one delivery in flight
 * settles one message per round trip to its receiver: synced at once, every
 * acknowledgement was a batch and an fsync of its own, and that work (the
 * batch on the main thread, the fsync on a pool thread of a 2-core machine)
 * showed in its delivery rate. The cost: a `kill -9` repeats the deliveries
 * of the last few milliseconds (they count as in flight until synced).
 */
export const ACK_LINGER_MS = 5;

export type Op = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

interface Waiter {
  ops: Op[];
  /** Takes back the in-memory change that went with `ops` (counters) if they never reach the disk. */
  undo?: () => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface CommitStats {
  batches: number;
  writes: number;
  largestBatch: number;
}

export class GroupCommitter {
  private pending: Waiter[] = [];
  private flushing: Promise<void> | null = null;
  /** Records rewritten once per batch however often they changed (queue counters). */
  private dirty = new Map<string, () => Op>();
  /** Waiters that must not linger (everything but acknowledgements): a flush starts for them at once. */
  private urgent = 0;
  private lingering: NodeJS.Timeout | undefined;
  readonly stats: CommitStats = { batches: 0, writes: 0, largestBatch: 0 };

  constructor(
    private readonly db: ClassicLevel<string, string>,
    private readonly guard?: StorageGuard,
  ) {}

  /**
   * Resolves once `ops` are on disk (synced), together with everything queued
   * before them. If they fail, `undo` runs before the next batch is built, so
   * in-memory counters only ever include what is on disk or about to be.
   */
  commit(ops: Op[], undo?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ ops, undo, resolve, reject });
      this.urgent++;
      this.flush();
    });
  }

  /**
   * Like commit, for writes that may wait up to ACK_LINGER_MS for others
   * (delivery acknowledgements): they go with the next batch that is
   * written for any reason, or alone when the time is up.
   */
  commitSoon(ops: Op[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ ops, resolve, reject });
      if (!this.flushing) this.linger();
    });
  }

  private linger(): void {
    this.lingering ??= setTimeout(() => {
      this.lingering = undefined;
      this.urgent++;
      this.flush();
    }, ACK_LINGER_MS);
  }

  private flush(): void {
    if (this.lingering) {
      clearTimeout(this.lingering);
      this.lingering = undefined;
    }
    if (!this.flushing) this.flushing = this.flushLoop();
  }

  /** Writes the latest state of `key` with the next batch (last producer wins). */
  markDirty(key: string, produce: () => Op): void {
    this.dirty.set(key, produce);
  }

  /** Resolves when nothing is waiting or in flight. */
  async drain(): Promise<void> {
    while (this.flushing || this.pending.length > 0) {
      if (!this.flushing) {
        this.urgent++;
        this.flush();
      }
      await this.flushing;
    }
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0 && this.urgent > 0) {
        const waiters = this.pending;
        this.pending = [];
        this.urgent = 0;
        const ops: Op[] = [];
        for (const w of waiters) for (const op of w.ops) ops.push(op);
        const dirty = this.dirty;
        this.dirty = new Map();
        for (const produce of dirty.values()) ops.push(produce());
        try {
          if (ops.length > 0) {
            if (this.guard?.stuck) {
              let bytes = 0;
              for (const op of ops) bytes += op.key.length + (op.type === 'put' ? op.value.length : 0);
              await this.guard.beforeWrite(bytes);
            }
            const write = async () => {
              // A chained batch: the array form copies and re-checks every
              // operation on the main thread (~15 µs each), several times the
              // cost of this; measured +37-49% publishes/s at 256 in flight.
              const batch = this.db.batch();
              for (const op of ops) {
                if (op.type === 'put') batch.put(op.key, op.value);
                else batch.del(op.key);
              }
              await batch.write({ sync: true });
            };
            await (this.guard ? this.guard.use(write) : write());
          }
        } catch (cause) {
          const err = this.guard ? this.guard.failed(cause) : cause;
          // Newest first, so a value two writers changed in turn (a queue's
          // lastId) goes back to what it was before both.
          for (let i = waiters.length - 1; i >= 0; i--) waiters[i]!.undo?.();
          // Records rewritten with their latest state (counters, cursors) are
          // still due: they go with the next batch that succeeds.
          for (const [key, produce] of dirty) if (!this.dirty.has(key)) this.dirty.set(key, produce);
          for (const w of waiters) w.reject(err);
          continue;
        }
        this.stats.batches++;
        this.stats.writes += waiters.length;
        if (waiters.length > this.stats.largestBatch) this.stats.largestBatch = waiters.length;
        for (const w of waiters) w.resolve();
      }
    } finally {
      this.flushing = null;
      // Only acknowledgements are left: they wait for company, or for the time to be up.
      if (this.pending.length > 0) this.linger();
    }
  }
}

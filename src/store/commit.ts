/**
 * Group commit: every write of the broker goes through one committer, which
 * keeps at most one synced LevelDB batch in flight. Writes that arrive while
 * a batch is being synced wait and go to disk together in the next one, so
 * 256 concurrent publishes cost a handful of fsyncs, not 256, and a lone
 * publish is never held back waiting for company.
 */
import type { ClassicLevel } from 'classic-level';

export type Op = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

interface Waiter {
  ops: Op[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface CommitStats {
  batches: number;
  writes: number;
  ops: number;
  largestBatch: number;
}

export class GroupCommitter {
  private pending: Waiter[] = [];
  private flushing: Promise<void> | null = null;
  /** Records rewritten once per batch however often they changed (queue counters). */
  private dirty = new Map<string, () => Op>();
  readonly stats: CommitStats = { batches: 0, writes: 0, ops: 0, largestBatch: 0 };

  constructor(
    private readonly db: ClassicLevel<string, string>,
    private readonly sync = true,
  ) {}

  /** Resolves once `ops` are on disk (synced), together with everything queued before them. */
  commit(ops: Op[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ ops, resolve, reject });
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  /** Writes the latest state of `key` with the next batch (last producer wins). */
  markDirty(key: string, produce: () => Op): void {
    this.dirty.set(key, produce);
  }

  /** Resolves when nothing is waiting or in flight. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const waiters = this.pending;
        this.pending = [];
        const ops: Op[] = [];
        for (const w of waiters) for (const op of w.ops) ops.push(op);
        for (const produce of this.dirty.values()) ops.push(produce());
        this.dirty.clear();
        try {
          if (ops.length > 0) {
            // A chained batch: the array form copies and re-checks every
            // operation on the main thread (~15 µs each), several times the
            // cost of this; measured +37-49% publishes/s at 256 in flight.
            const batch = this.db.batch();
            for (const op of ops) {
              if (op.type === 'put') batch.put(op.key, op.value);
              else batch.del(op.key);
            }
            await batch.write({ sync: this.sync });
          }
        } catch (err) {
          for (const w of waiters) w.reject(err);
          continue;
        }
        this.stats.batches++;
        this.stats.writes += waiters.length;
        this.stats.ops += ops.length;
        if (waiters.length > this.stats.largestBatch) this.stats.largestBatch = waiters.length;
        for (const w of waiters) w.resolve();
      }
    } finally {
      this.flushing = null;
    }
  }
}

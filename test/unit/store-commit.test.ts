import { describe, expect, it } from 'vitest';
import type { ClassicLevel } from 'classic-level';
import { GroupCommitter } from '../../src/store/commit.js';
import type { Op } from '../../src/store/commit.js';

/** A stand-in for LevelDB's batch: records each synced batch, resolves when told to. */
class FakeDb {
  batches: { ops: Op[]; sync: boolean }[] = [];
  private release: (() => void)[] = [];
  failNext = false;

  /** The chained form the committer uses: collect ops, then write them as one batch. */
  batch(): { put(key: string, value: string): void; del(key: string): void; write(options: { sync: boolean }): Promise<void> } {
    const ops: Op[] = [];
    return {
      put: (key, value) => void ops.push({ type: 'put', key, value }),
      del: (key) => void ops.push({ type: 'del', key }),
      write: (options) => this.write(ops, options),
    };
  }

  private write(ops: Op[], options: { sync: boolean }): Promise<void> {
    this.batches.push({ ops: [...ops], sync: options.sync });
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error('disk full'));
    }
    return new Promise((resolve) => this.release.push(resolve));
  }

  /** Lets the batch on "disk" finish. */
  async finish(): Promise<void> {
    while (this.release.length === 0) await new Promise((r) => setImmediate(r));
    this.release.shift()!();
    await new Promise((r) => setImmediate(r));
  }
}

const put = (key: string): Op => ({ type: 'put', key, value: key });

describe('GroupCommitter', () => {
  it('writes a lone commit at once, synced', async () => {
    const db = new FakeDb();
    const committer = new GroupCommitter(db as unknown as ClassicLevel<string, string>);
    const done = committer.commit([put('a')]);
    await db.finish();
    await done;
    expect(db.batches).toEqual([{ ops: [put('a')], sync: true }]);
  });

  it('puts commits that arrive during a write into the next single batch, in order', async () => {
    const db = new FakeDb();
    const committer = new GroupCommitter(db as unknown as ClassicLevel<string, string>);
    const settled: string[] = [];
    const first = committer.commit([put('1')]).then(() => settled.push('1'));
    const rest = Array.from({ length: 100 }, (_, i) =>
      committer.commit([put(`r${i}`)]).then(() => settled.push(`r${i}`)),
    );
    // Nothing but the first is acknowledged before its batch is on disk.
    await new Promise((r) => setImmediate(r));
    expect(settled).toEqual([]);
    await db.finish();
    await first;
    expect(settled).toEqual(['1']);
    await db.finish();
    await Promise.all(rest);
    expect(db.batches).toHaveLength(2);
    expect(db.batches[1]!.ops.map((op) => op.key)).toEqual(Array.from({ length: 100 }, (_, i) => `r${i}`));
    expect(committer.stats).toMatchObject({ batches: 2, writes: 101, largestBatch: 100 });
  });

  it('writes a dirty record once per batch, with its latest state', async () => {
    const db = new FakeDb();
    const committer = new GroupCommitter(db as unknown as ClassicLevel<string, string>);
    let counter = 0;
    committer.markDirty('q!orders', () => ({ type: 'put', key: 'q!orders', value: String(counter) }));
    counter = 1;
    committer.markDirty('q!orders', () => ({ type: 'put', key: 'q!orders', value: String(counter) }));
    counter = 2;
    const done = committer.commit([put('m1')]);
    await db.finish();
    await done;
    expect(db.batches[0]!.ops).toEqual([put('m1'), { type: 'put', key: 'q!orders', value: '2' }]);
  });

  it('rejects every commit of a failed batch, and goes on with the next', async () => {
    const db = new FakeDb();
    const committer = new GroupCommitter(db as unknown as ClassicLevel<string, string>);
    db.failNext = true;
    await expect(committer.commit([put('lost')])).rejects.toThrow('disk full');
    const next = committer.commit([put('next')]);
    await db.finish();
    await next;
    expect(db.batches.map((b) => b.ops[0]!.key)).toEqual(['lost', 'next']);
    await committer.drain();
  });
});

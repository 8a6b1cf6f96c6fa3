import { describe, expect, it } from 'vitest';
import type { ClassicLevel } from 'classic-level';
import { ACK_LINGER_MS, GroupCommitter } from '../../src/backend/level/commit.js';
import type { Op } from '../../src/backend/level/commit.js';

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

  it('lets acknowledgements wait for company: they go with the next commit, in order, or alone after ACK_LINGER_MS', async () => {
    const db = new FakeDb();
    const committer = new GroupCommitter(db as unknown as ClassicLevel<string, string>);
    const acked: string[] = [];
    const acks = ['a1', 'a2'].map((k) => committer.commitSoon([put(k)]).then(() => acked.push(k)));
    await new Promise((r) => setImmediate(r));
    // Nothing written yet: they wait.
    expect(db.batches).toEqual([]);
    const urgent = committer.commit([put('p1')]);
    await db.finish();
    await Promise.all([urgent, ...acks]);
    expect(acked).toEqual(['a1', 'a2']);
    expect(db.batches).toEqual([{ ops: [put('a1'), put('a2'), put('p1')], sync: true }]);

    // Alone: written once the linger is up, not before.
    const t0 = performance.now();
    const alone = committer.commitSoon([put('a3')]);
    while (db.batches.length === 1) await new Promise((r) => setTimeout(r, 1));
    // A libuv timer can fire up to 1 ms before the time by performance.now().
    expect(performance.now() - t0).toBeGreaterThanOrEqual(ACK_LINGER_MS - 1);
    await db.finish();
    await alone;
    expect(db.batches[1]).toEqual({ ops: [put('a3')], sync: true });

    // drain() does not wait out the linger, it writes them.
    const last = committer.commitSoon([put('a4')]);
    const drained = committer.drain();
    await db.finish();
    await Promise.all([last, drained]);
    expect(db.batches[2]).toEqual({ ops: [put('a4')], sync: true });
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

  it('takes back the in-memory changes of a failed batch, newest first, before the next batch is built', async () => {
    const db = new FakeDb();
    const committer = new GroupCommitter(db as unknown as ClassicLevel<string, string>);
    // A queue record as the store keeps it: counters change with the write, the batch writes their latest state.
    const queue = { messages: 0, lastId: 'a0' };
    const append = (id: string) => {
      const before = queue.lastId;
      queue.messages++;
      queue.lastId = id;
      committer.markDirty('q!q', () => ({ type: 'put', key: 'q!q', value: JSON.stringify(queue) }));
      return committer.commit([put(`m!${id}`)], () => {
        queue.messages--;
        if (queue.lastId === id) queue.lastId = before;
      });
    };
    const first = append('a1');
    // Both wait while the first is written, then go to disk together, and fail together.
    const second = append('a2');
    const third = append('a3');
    const settled = Promise.allSettled([second, third]);
    while (db.batches.length === 0) await new Promise((r) => setImmediate(r));
    db.failNext = true; // the next write: the first is already on its way
    await db.finish();
    await first;
    const failed = await settled;
    expect(failed.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'stored'))).toEqual(['disk full', 'disk full']);
    expect(queue).toEqual({ messages: 1, lastId: 'a1' });
    // The record those writes changed is still due, and goes with the next batch (of anything), as it now is.
    const next = committer.commit([put('other')]);
    await db.finish();
    await next;
    expect(db.batches[db.batches.length - 1]!.ops).toEqual([
      put('other'),
      { type: 'put', key: 'q!q', value: JSON.stringify({ messages: 1, lastId: 'a1' }) },
    ]);
  });
});

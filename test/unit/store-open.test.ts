/**
 * LevelStore.open() looks at the data directory before LevelDB does, and
 * LevelDB must not start on its own: abstract-level opens a database one
 * microtask after its constructor unless it is closed first. Had it opened,
 * its recovery would already have rewritten a torn write-ahead log into a
 * table and deleted it, and the daemon would start without its warning
 * (seen in CI under load, about one start in twenty).
 */
import { readdirSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LevelStore } from '../../src/backend/level/level.js';
import { tmpDir } from '../helpers/tmp.js';

/** The status of the store's ClassicLevel, which nothing public shows. */
function dbStatus(store: LevelStore): string {
  return (store as unknown as { db: { status: string } }).db.status;
}

describe('LevelStore open', () => {
  it('leaves the database closed until open(), so a torn write-ahead log is still there to be reported', async () => {
    const dir = join(tmpDir('discue-open-'), 'data');
    const first = new LevelStore(dir);
    await first.open();
    await first.createQueue({ name: 'q' });
    const q = first.queueId('q');
    for (let i = 0; i < 5; i++) await first.appendOnce(q, [{ data: `m${i}` }]);
    await first.close();
    const log = readdirSync(dir).filter((n) => n.endsWith('.log')).sort().pop()!;
    const path = join(dir, log);
    truncateSync(path, readFileSync(path).length - 20);
    const size = statSync(path).size;

    const store = new LevelStore(dir);
    // A macrotask: every microtask has run, abstract-level's own open among them.
    await new Promise((resolve) => setImmediate(resolve));
    expect(dbStatus(store)).toBe('closed');
    expect(statSync(path).size).toBe(size);

    await store.open();
    expect(store.stats().warnings.join('\n')).toContain(`the write-ahead log ${log} in ${dir} ended in a torn record`);
    const kept = (await store.listMessages(q, { limit: 10 })).map((m) => m.data);
    expect(kept).toEqual(['m0', 'm1', 'm2', 'm3']);
    await store.close();
  });
});

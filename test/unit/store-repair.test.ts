/**
 * `daemon repair` when a queue's catalogue record is lost but its messages
 * are not: the queue comes back under the name its messages carry (formats 1
 * and 2 stored it in every envelope) or, for messages stored without it
 * (format 3), under `recovered-<id>`; either way with its id, so its
 * listeners, cursors and deliveries still find it.
 */
import { ClassicLevel } from 'classic-level';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LevelStore } from '../../src/backend/level/level.js';
import { seal } from '../../src/backend/level/record.js';
import { repairStore } from '../../src/backend/level/repair.js';

let dir: string;
beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'discue-repair-')), 'data');
});
afterEach(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

/** Stores two messages in `orders` with a listener of it, then loses the queue's record; its id. */
async function loseCatalogueRecord(rewrite?: (db: ClassicLevel<string, string>, qid: string) => Promise<void>): Promise<string> {
  const store = new LevelStore(dir);
  await store.open();
  await store.createQueue({ name: 'orders' });
  const qid = store.queueId('orders');
  await store.append(qid, [{ data: 'a' }, { data: 'b' }]);
  await store.deliveries.saveListener(
    { id: 'L', kind: 'exec', queues: [qid], command: ['true'], timeoutMs: 1000, maxAttempts: 1, retryDelayMs: 100, concurrency: 1, state: 'active', createdAt: new Date().toISOString() },
    'end',
  );
  await store.close();
  const db = new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  await db.del('q!orders', { sync: true });
  await rewrite?.(db, qid);
  await db.close();
  return qid;
}

async function reopened(): Promise<LevelStore> {
  const store = new LevelStore(dir);
  await store.open();
  return store;
}

describe('daemon repair of a lost queue record', () => {
  it('brings a queue whose messages carry no name back as recovered-<id>, with its id and listeners', async () => {
    const qid = await loseCatalogueRecord();
    const report = await repairStore(dir);
    expect(report).toMatchObject({ queues: 1, messages: 2, rebuilt: [`recovered-${qid}`] });
    const store = await reopened();
    try {
      expect(store.queueId(`recovered-${qid}`)).toBe(qid);
      expect((await store.listMessages(qid, { limit: 10 })).map((m) => [m.queue, m.data])).toEqual([
        [`recovered-${qid}`, 'a'],
        [`recovered-${qid}`, 'b'],
      ]);
      expect(store.deliveries.listener('L')?.queues).toEqual([qid]);
      // A rename gives it its name back.
      await store.renameQueue(`recovered-${qid}`, 'orders');
      expect((await store.getMessage(qid, (await store.listMessages(qid, { limit: 1 }))[0]!.id)).queue).toBe('orders');
    } finally {
      await store.close();
    }
  });

  it('uses the name messages of the older formats carry', async () => {
    const qid = await loseCatalogueRecord(async (db, id) => {
      // As the previous version stored them: with the queue's name.
      for await (const [key, value] of db.iterator({ gt: `m!${id}!`, lt: `m!${id}!~` })) {
        const envelope = JSON.parse(value.slice(9)) as Record<string, unknown>;
        await db.put(key, seal(key, JSON.stringify({ ...envelope, queue: 'orders' })));
      }
    });
    expect((await repairStore(dir)).rebuilt).toEqual(['orders']);
    const store = await reopened();
    try {
      expect(store.queueId('orders')).toBe(qid);
      expect((await store.listMessages(qid, { limit: 10 })).map((m) => m.data)).toEqual(['a', 'b']);
    } finally {
      await store.close();
    }
  });
});

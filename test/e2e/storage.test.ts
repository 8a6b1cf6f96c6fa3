/**
 * Storage through the real binary: listing with --limit and --since, single
 * messages, retention by count and by age, purge, delete and re-create, ids
 * across restarts, and listing messages too large for one reply.
 */
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { expectError, listAll, messageCount, ndjson, ok } from '../helpers/discue.js';
import type { StoredMessage } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';
import type { Sandbox } from '../helpers/sandbox.js';

async function list(sb: Sandbox, queue: string, ...args: string[]): Promise<StoredMessage[]> {
  return JSON.parse(await ok(sb, ['messages', 'list', queue, '--json', ...args])) as StoredMessage[];
}

function publishBatch(sb: Sandbox, queue: string, datas: string[]): Promise<string[]> {
  return ok(sb, ['publish', queue], ndjson(datas)).then((out) => out.trim().split('\n'));
}

const range = (from: number, to: number, prefix = 'm'): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

describe('storage', () => {
  const sb = useSandbox();

  it('lists with --limit and --since (an id, exclusive; an ISO time; a duration)', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const early = await publishBatch(sb, 'q', range(1, 5));
    // A clear boundary in time between the two batches: wait until the clock has moved on.
    const firstAt = Date.parse((await list(sb, 'q', '--limit', '1'))[0]!.publishedAt);
    await waitFor(() => Date.now() > firstAt + 20, 5_000, 'the clock');
    const boundary = new Date(Date.now()).toISOString();
    await waitFor(() => Date.now() > Date.parse(boundary) + 20, 5_000, 'the clock');
    const late = await publishBatch(sb, 'q', range(6, 10));

    const all = await list(sb, 'q');
    expect(all.map((m) => m.data)).toEqual(range(1, 10));
    expect(all.map((m) => m.id)).toEqual([...early, ...late]);
    expect([...all.map((m) => m.id)].sort()).toEqual(all.map((m) => m.id));

    expect((await list(sb, 'q', '--limit', '3')).map((m) => m.data)).toEqual(range(1, 3));
    expect((await list(sb, 'q', '--since', early[2]!)).map((m) => m.data)).toEqual(range(4, 10));
    expect((await list(sb, 'q', '--since', early[2]!, '--limit', '2')).map((m) => m.data)).toEqual(['m4', 'm5']);
    expect(await list(sb, 'q', '--since', late[4]!)).toEqual([]);
    expect((await list(sb, 'q', '--since', boundary)).map((m) => m.data)).toEqual(range(6, 10));
    expect((await list(sb, 'q', '--since', '1h')).map((m) => m.data)).toEqual(range(1, 10));
    expect(await list(sb, 'q', '--since', new Date(Date.now() + 3_600_000).toISOString())).toEqual([]);

    // Human output: a table with the ids, or a note on stderr when empty.
    const table = await sb.run(['messages', 'list', 'q', '--limit', '2']);
    expect(table.stdout).toContain(early[0]);
    expect(table.stdout).toContain(early[1]);
    expect(table.stdout).not.toContain(early[2]);
    const empty = await sb.run(['messages', 'list', 'q', '--since', late[4]!]);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('');
    expect(empty.stderr).toContain('no messages');
  });

  it('gets and deletes single messages', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const id = (await ok(sb, ['publish', 'q', '--data', 'hello', '--name', 'greeting'])).trim();
    const other = (await ok(sb, ['publish', 'q', '--data', 'world'])).trim();
    const got = JSON.parse(await ok(sb, ['messages', 'get', 'q', id, '--json'])) as StoredMessage;
    expect(got).toMatchObject({ id, queue: 'q', name: 'greeting', data: 'hello' });
    expect(Number.isNaN(Date.parse(got.publishedAt))).toBe(false);
    expect(await ok(sb, ['messages', 'get', 'q', id])).toMatch(/data:\s+hello/);

    expect(JSON.parse(await ok(sb, ['messages', 'delete', 'q', id, '--json']))).toEqual({ id });
    expectError(await sb.run(['messages', 'get', 'q', id]), 4, 'MESSAGE_NOT_FOUND');
    expectError(await sb.run(['messages', 'delete', 'q', id]), 4, 'MESSAGE_NOT_FOUND');
    expect((await listAll(sb, 'q')).map((m) => m.id)).toEqual([other]);
    const info = JSON.parse(await ok(sb, ['queue', 'show', 'q', '--json'])) as { messages: number; bytes: number };
    expect(info).toMatchObject({ messages: 1, bytes: 5 });
  });

  it('keeps only the newest N messages with --max-messages', async () => {
    await ok(sb, ['queue', 'create', 'q', '--max-messages', '5']);
    await publishBatch(sb, 'q', range(1, 12));
    for (const data of range(13, 20)) await ok(sb, ['publish', 'q', '--data', data]);
    const newest = await waitFor(async () => {
      const stored = await listAll(sb, 'q');
      return stored.length === 5 ? stored : undefined;
    }, 20_000, 'the queue to be trimmed to 5');
    expect(newest!.map((m) => m.data)).toEqual(range(16, 20));
    expect(await messageCount(sb, 'q')).toBe(5);

    // Lowering the limit trims at once; removing it lets the queue grow again.
    await ok(sb, ['queue', 'update', 'q', '--max-messages', '2']);
    await waitFor(async () => (await listAll(sb, 'q')).length === 2, 20_000, 'the queue to be trimmed to 2');
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(['m19', 'm20']);
    await ok(sb, ['queue', 'update', 'q', '--max-messages', 'none']);
    await publishBatch(sb, 'q', range(21, 25));
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(['m19', 'm20', ...range(21, 25)]);
  });

  it('removes messages past their age: on `queue update --retention` and on daemon start', async () => {
    await ok(sb, ['queue', 'create', 'updated']);
    await ok(sb, ['queue', 'create', 'restarted', '--retention', '3s']);
    await publishBatch(sb, 'updated', range(1, 3, 'old'));
    await publishBatch(sb, 'restarted', range(1, 3, 'old'));
    const oldAt = Date.parse((await list(sb, 'updated', '--limit', '1'))[0]!.publishedAt);
    // Age the messages past 3 s (the clock has to move; nothing else will).
    await waitFor(() => Date.now() > oldAt + 3_500, 10_000, 'the messages to age');

    const fresh = (await ok(sb, ['publish', 'updated', '--data', 'fresh'])).trim();
    await ok(sb, ['queue', 'update', 'updated', '--retention', '3s']);
    const afterUpdate = Date.now();
    const left = await waitFor(async () => {
      const stored = await listAll(sb, 'updated');
      return stored.every((m) => m.data === 'fresh') ? stored : undefined;
    }, 20_000, 'retention to remove the old messages');
    // The fresh message survives unless this machine took over 3 s between its publish and the sweep.
    const freshAt = Date.parse((JSON.parse(await ok(sb, ['queue', 'show', 'updated', '--json'])) as { lastPublishedAt: string }).lastPublishedAt);
    if (afterUpdate - freshAt < 2_500) expect(left!.map((m) => m.id)).toEqual([fresh]);

    // The other queue had its retention all along; a restart sweeps it.
    await ok(sb, ['daemon', 'restart']);
    await waitFor(async () => (await listAll(sb, 'restarted')).length === 0, 20_000, 'the start-up sweep');
    expect(await messageCount(sb, 'restarted')).toBe(0);
    const info = JSON.parse(await ok(sb, ['queue', 'show', 'restarted', '--json'])) as { retentionMs: number; bytes: number };
    expect(info).toMatchObject({ retentionMs: 3000, bytes: 0 });
  });

  it('purges a queue, and a deleted then re-created queue starts empty for good', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    await publishBatch(sb, 'q', range(1, 50));
    const purged = JSON.parse(await ok(sb, ['queue', 'purge', 'q', '--json'])) as { deleted: number };
    expect(purged.deleted).toBe(50);
    expect(await listAll(sb, 'q')).toEqual([]);
    expect(await messageCount(sb, 'q')).toBe(0);
    const after = await publishBatch(sb, 'q', ['after purge']);
    expect((await listAll(sb, 'q')).map((m) => m.id)).toEqual(after);

    await publishBatch(sb, 'q', range(1, 30, 'old'));
    await ok(sb, ['queue', 'delete', 'q', '--force']);
    await ok(sb, ['queue', 'create', 'q']);
    expect(await listAll(sb, 'q')).toEqual([]);
    const fresh = await publishBatch(sb, 'q', ['new life']);
    expect((await listAll(sb, 'q')).map((m) => m.id)).toEqual(fresh);
    // Not after a restart either (the old messages' clean-up may have been cut short).
    await ok(sb, ['daemon', 'restart']);
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(['new life']);
    expect(await messageCount(sb, 'q')).toBe(1);
  });

  it('keeps ids strictly increasing across daemon restarts and a kill -9', async () => {
    await ok(sb, ['queue', 'create', 'a']);
    await ok(sb, ['queue', 'create', 'b']);
    const ids: string[] = [];
    ids.push(...(await publishBatch(sb, 'a', range(1, 100))));
    await ok(sb, ['daemon', 'restart']);
    ids.push(...(await publishBatch(sb, 'b', range(1, 3))));
    ids.push(...(await publishBatch(sb, 'a', range(101, 103))));
    process.kill(sb.daemonPid()!, 'SIGKILL');
    ids.push((await ok(sb, ['publish', 'a', '--data', 'after kill'])).trim());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    const a = await listAll(sb, 'a');
    expect(a.map((m) => m.id)).toEqual(ids.filter((id) => a.some((m) => m.id === id)));
    expect(a).toHaveLength(104);
  });

  it('never brings back a deleted queue after a restart, even with deletions in flight when it went', async () => {
    // Pipelined on one connection: message deletions still running when the
    // queue is deleted must not write the queue's record back.
    const client = await connect({ home: sb.home });
    try {
      for (let round = 0; round < 5; round++) {
        const name = `gone${round}`;
        await client.request('queue.create', { name });
        const { ids } = await client.publish(name, Array.from({ length: 30 }, (_, i) => ({ data: `m${i}` })));
        const deletions = ids.slice(0, 10).map((id) => client.request('messages.delete', { queue: name, id }).catch(() => undefined));
        await client.request('queue.delete', { name, force: true });
        await Promise.all(deletions);
      }
      await client.request('queue.create', { name: 'kept' });
      expect((await client.request('queue.list', {})).map((q) => q.name)).toEqual(['kept']);
    } finally {
      await client.close();
    }
    await ok(sb, ['daemon', 'restart']);
    const queues = JSON.parse(await ok(sb, ['queue', 'list', '--json'])) as { name: string; messages: number }[];
    expect(queues.map((q) => q.name)).toEqual(['kept']);
  });

  it('lists messages whose total is far beyond one reply frame', async () => {
    await ok(sb, ['queue', 'create', 'big']);
    // 100 messages of 200 KiB: 20 MB of data, more than the 16 MiB frame limit.
    const big = 'x'.repeat(200 * 1024);
    await publishBatch(sb, 'big', Array.from({ length: 100 }, (_, i) => `${i}:${big}`));
    const stored = await list(sb, 'big');
    expect(stored).toHaveLength(100);
    expect(stored.map((m) => m.data.slice(0, m.data.indexOf(':')))).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    expect(stored.every((m) => m.data.length === big.length + m.data.indexOf(':') + 1)).toBe(true);
    const table = await sb.run(['messages', 'list', 'big', '--limit', '150']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.trim().split('\n')).toHaveLength(101);
  });
});

/**
 * A home written by the previous discue (storage formats 1 and 2, where
 * listener and delivery records named their queues and every envelope
 * carried the queue's name) opens with everything kept: the daemon upgrades
 * it to queue ids at start, and a pending retry is still delivered, also
 * after the queue is renamed.
 *
 * The old records are written here by hand, byte for byte as the old code
 * stored them (git show 97b4b4a:src/backend/level/level.ts and
 * deliveries.ts): checksummed by record.ts in format 2, plain JSON in 1.
 */
import { ClassicLevel } from 'classic-level';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { seal } from '../../src/backend/level/record.js';
import { IdGenerator } from '../../src/protocol/ids.js';
import { expectError, listAll, waitForExit } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';
import { closeAllServers, listDeliveries, mustRun, runJson, startHookServer } from '../helpers/delivery.js';
import type { ListenerJson } from '../helpers/delivery.js';

const sb = useSandbox('dq-upgrade-');
afterEach(async () => {
  await closeAllServers();
});

interface OldHome {
  qid: string;
  delivered: string;
  pending: string;
}

/** Writes a home as the previous version left it: two queues, a listener of both, one delivered message, one retry pending, one orphan record. */
async function writeOldHome(format: '1' | '2', hookUrl: string): Promise<OldHome> {
  const dir = join(sb.home, 'data');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ids = new IdGenerator();
  const qid = ids.next();
  const auditQid = ids.next();
  const delivered = ids.next();
  const pending = ids.next();
  const orphan = ids.next();
  const at = new Date(Date.now() - 60_000).toISOString();
  const record = (key: string, value: object) => {
    const json = JSON.stringify(value);
    return { type: 'put' as const, key, value: format === '2' ? seal(key, json) : json };
  };
  const attempt = (n: number, ok: boolean) => ({ attempt: n, at, durationMs: 3, ok, status: ok ? 200 : 500, ...(ok ? {} : { error: 'HTTP 500' }) });
  const db = new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  await db.batch(
    [
      { type: 'put', key: 'meta!format', value: format },
      { type: 'put', key: 'meta!lastId', value: orphan },
      record('q!orders', { name: 'orders', qid, createdAt: at, messages: 2, bytes: 10, lastId: pending, lastPublishedAt: at }),
      record('q!audit', { name: 'audit', qid: auditQid, createdAt: at, messages: 0, bytes: 0 }),
      record(`m!${qid}!${delivered}`, { id: delivered, queue: 'orders', data: 'delivered', publishedAt: at }),
      record(`m!${qid}!${pending}`, { id: pending, queue: 'orders', name: 'order.paid', data: 'retried', publishedAt: at }),
      record('l!l_L1', {
        id: 'l_L1',
        name: 'mailer',
        kind: 'http',
        queues: ['orders', 'audit'],
        url: hookUrl,
        timeoutMs: 5000,
        maxAttempts: 10,
        retryDelayMs: 50,
        concurrency: 1,
        state: 'active',
        createdAt: at,
      }),
      { type: 'put', key: `c!l_L1!${qid}`, value: delivered },
      record(`h!l_L1!${delivered}`, { listenerId: 'l_L1', queue: 'orders', messageId: delivered, state: 'delivered', attempts: [attempt(1, true)], updatedAt: at }),
      record(`d!l_L1!${pending}`, {
        listenerId: 'l_L1',
        queue: 'orders',
        messageId: pending,
        state: 'failed',
        attempts: [attempt(1, false)],
        nextAttemptAt: at,
        updatedAt: at,
      }),
      // Left by a queue deleted just before a crash: the old code dropped it at start.
      record(`d!l_L1!${orphan}`, { listenerId: 'l_L1', queue: 'gone', messageId: orphan, state: 'dead', attempts: [attempt(1, false)], updatedAt: at }),
    ],
    { sync: true },
  );
  await db.close();
  return { qid, delivered, pending };
}

describe('a home of the previous storage format', () => {
  it.each(['1', '2'] as const)('format %s opens with everything kept, its pending retry delivered, and renames', async (format) => {
    const hook = await startHookServer();
    const old = await writeOldHome(format, hook.url);

    // The first command starts the daemon, which upgrades the home.
    expect((await listAll(sb, 'orders')).map((m) => [m.id, m.queue, m.name, m.data])).toEqual([
      [old.delivered, 'orders', undefined, 'delivered'],
      [old.pending, 'orders', 'order.paid', 'retried'],
    ]);
    const listener = await runJson<ListenerJson>(sb, ['listener', 'show', 'mailer']);
    expect(listener.queues).toEqual(['orders', 'audit']);
    // The pending retry is resumed (attempt 2); the delivered message is not sent again.
    await waitFor(() => hook.delivered.length === 1, 30_000, 'the pending retry');
    expect(hook.requests.map((r) => [r.envelope.id, r.envelope.queue, r.headers['webhook-id']])).toEqual([[old.pending, 'orders', old.pending]]);
    const done = await waitFor(
      async () => (await listDeliveries(sb, ['--listener', 'mailer', '--state', 'delivered'])).find((d) => d.messageId === old.pending),
      10_000,
      'its delivered record',
    );
    expect(done.queue).toBe('orders');
    expect(done.attempts.map((a) => [a.attempt, a.ok])).toEqual([
      [1, false],
      [2, true],
    ]);
    // The history of the previous version is kept, named as before; the orphan is gone.
    const history = await listDeliveries(sb, ['--listener', 'mailer', '--state', 'delivered']);
    expect(history.map((d) => [d.messageId, d.queue]).sort()).toEqual([
      [old.delivered, 'orders'],
      [old.pending, 'orders'],
    ].sort());
    expect(await listDeliveries(sb, ['--state', 'dead'])).toEqual([]);

    // And the upgraded home renames like a new one, across a kill -9.
    await mustRun(sb, ['queue', 'rename', 'orders', 'shop']);
    const pid = sb.daemonPid()!;
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid, 'the daemon to die');
    expect((await runJson<ListenerJson>(sb, ['listener', 'show', 'mailer'])).queues).toEqual(['shop', 'audit']);
    expectError(await sb.run(['queue', 'show', 'orders']), 4, 'QUEUE_NOT_FOUND');
    expect((await listAll(sb, 'shop')).map((m) => m.queue)).toEqual(['shop', 'shop']);
    const [next] = JSON.parse(await mustRun(sb, ['publish', 'shop', '--data', 'after', '--json'])).ids as string[];
    await waitFor(() => hook.delivered.length === 2, 30_000, 'the next message');
    expect([hook.delivered[1]!.envelope.id, hook.delivered[1]!.envelope.queue]).toEqual([next, 'shop']);
    expect(hook.requests).toHaveLength(2);
  });
});

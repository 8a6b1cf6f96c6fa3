/**
 * The package's library entry, against a real daemon: connect with { home },
 * publish, list, close; every failure is a DiscueError with a stable code.
 * The daemon validates on its own, whatever a client skipped.
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { DiscueError, MAX_DATA_BYTES, connect, isDiscueError } from '../../src/index.js';
import type { DiscueClient } from '../../src/index.js';
import { daemonProcesses, waitForExit } from '../helpers/discue.js';
import { useSandbox } from '../helpers/sandbox.js';

/** The DiscueError a promise rejects with. */
async function rejection(promise: Promise<unknown>): Promise<DiscueError> {
  try {
    await promise;
  } catch (err) {
    expect(isDiscueError(err), String(err)).toBe(true);
    return err as DiscueError;
  }
  throw new Error('expected a rejection');
}

describe('library: import { connect } from discue', () => {
  const sb = useSandbox();

  async function open(options: { autoStart?: boolean } = {}): Promise<DiscueClient> {
    const client = await connect({ home: sb.home, ...options });
    sb.onDispose(() => client.close());
    return client;
  }

  it('connects (starting the daemon), publishes, lists and closes', async () => {
    const client = await open();
    expect(client.daemon.pid).toBe(sb.daemonPid());
    await client.request('queue.create', { name: 'orders' });
    const one = await client.publish('orders', { data: '{"id":1}', name: 'order.created' });
    expect(one.queue).toBe('orders');
    expect(one.ids).toHaveLength(1);
    const batch = await client.publish('orders', [{ data: 'a' }, { data: 'b' }, { data: 'c' }]);
    expect(batch.ids).toHaveLength(3);

    // Many publishes in flight on one connection: answered by id, stored in the order sent.
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => client.publish('orders', { data: `p${i}` })));
    const manyIds = many.map((r) => r.ids[0]!);
    expect([...manyIds].sort()).toEqual(manyIds);

    const list = await client.request('messages.list', { queue: 'orders', limit: 1000 });
    expect(list.map((m) => m.data)).toEqual(['{"id":1}', 'a', 'b', 'c', ...Array.from({ length: 200 }, (_, i) => `p${i}`)]);
    expect(list[0]).toMatchObject({ id: one.ids[0], queue: 'orders', name: 'order.created' });
    expect(list.map((m) => m.id).slice(1, 4)).toEqual(batch.ids);
    // Paging: each page goes on from the opaque `next` of the one before, until a page is empty.
    const paged: string[] = [];
    let page = await client.request('messages.page', { queue: 'orders', limit: 50 });
    while (page.messages.length > 0) {
      paged.push(...page.messages.map((m) => m.id));
      page = await client.request('messages.page', { queue: 'orders', limit: 50, next: page.next });
    }
    expect(paged).toEqual(list.map((m) => m.id));
    const mixed = await rejection(client.request('messages.page', { queue: 'orders', afterId: one.ids[0]!, next: 'x' }));
    expect(mixed.code).toBe('INVALID_ARGUMENT');

    await client.close();
    const closed = await rejection(client.publish('orders', { data: 'late' }));
    expect(closed.code).toBe('DAEMON_UNREACHABLE');
    // Another client sees what the first stored.
    const again = await open();
    expect((await again.request('queue.get', { name: 'orders' })).messages).toBe(204);
  });

  it('rejects with DiscueErrors carrying stable codes and exit codes, and stores nothing', async () => {
    const client = await open();
    await client.request('queue.create', { name: 'q' });
    await client.publish('q', { data: 'kept' });

    const missing = await rejection(client.publish('nope', { data: 'x' }));
    expect(missing).toBeInstanceOf(DiscueError);
    expect(missing.code).toBe('QUEUE_NOT_FOUND');
    expect(missing.exitCode).toBe(4);

    // What the CLI would have refused before sending, the daemon refuses too.
    const wrong = [
      [{ data: 5 }, 'INVALID_MESSAGE'],
      [{ data: null }, 'INVALID_MESSAGE'],
      [{ data: 'x', extra: true }, 'INVALID_MESSAGE'],
      [{ name: 'only a name' }, 'INVALID_MESSAGE'],
      [{ data: 'x'.repeat(MAX_DATA_BYTES + 1) }, 'MESSAGE_TOO_LARGE'],
    ] as const;
    for (const [message, code] of wrong) {
      const err = await rejection(client.request('publish', { queue: 'q', messages: [message as never] }));
      expect(err.code, JSON.stringify(message).slice(0, 80)).toBe(code);
    }
    const empty = await rejection(client.request('publish', { queue: 'q', messages: [] }));
    expect(empty.code).toBe('INVALID_ARGUMENT');
    const badName = await rejection(client.request('queue.create', { name: 'no/slashes' }));
    expect([badName.code, badName.exitCode]).toEqual(['INVALID_QUEUE_NAME', 2]);
    const exists = await rejection(client.request('queue.create', { name: 'q' }));
    expect([exists.code, exists.exitCode]).toEqual(['QUEUE_EXISTS', 5]);

    // A batch is all or nothing, and the error says which message was wrong.
    const batch = await rejection(client.publish('q', [{ data: 'ok 1' }, { data: 1 as never }, { data: 'ok 3' }]));
    expect(batch.code).toBe('INVALID_MESSAGE');
    expect(batch.details).toMatchObject({ index: 1 });

    const stored = await client.request('messages.list', { queue: 'q', limit: 100 });
    expect(stored.map((m) => m.data)).toEqual(['kept']);
    // The connection is still good after all those refusals.
    expect((await client.request('queue.list', {})).map((q) => q.name)).toEqual(['q']);
  });

  it('sends publishes made in one tick in one frame, each stored, answered and failed as if sent alone', async () => {
    const client = await open();
    await client.request('queue.create', { name: 'a' });
    await client.request('queue.create', { name: 'b' });
    await client.request('queue.create', { name: 'typed', schema: { type: 'object' } });
    expect(client.daemon.features).toContain('publish.many');
    const sent: string[] = [];
    const request = client.request.bind(client);
    // Recorded once sent: a request first sends the publishes made before it.
    client.request = ((type, params) => {
      const reply = request(type, params);
      sent.push(type);
      return reply;
    }) as typeof client.request;

    const outcomes = await Promise.allSettled([
      client.publish('a', { data: 'a1' }),
      client.publish('b', [{ data: 'b1' }, { data: 'b2' }]),
      client.publish('a', { data: 'bad', name: '' }),
      client.publish('nope', { data: 'x' }),
      client.publish('a', { data: 'keyed', key: 'K' }),
      client.publish('a', { data: 'keyed again', key: 'K' }),
      client.publish('typed', { data: '"a string"' }),
      client.publish('typed', { data: '{"ok":true}' }),
      client.publish('a', [{ data: 'a2' }, { data: 1 as never }]),
      client.publish('a', { data: 'a3' }),
    ]);
    // A publish not shaped like one goes alone (the daemon says why), after those made before it.
    expect(sent).toEqual(['publish.many', 'publish', 'publish']);
    const value = (i: number) => {
      const o = outcomes[i]!;
      if (o.status !== 'fulfilled') throw new Error(`publish ${i} failed: ${String(o.reason)}`);
      return o.value;
    };
    const code = (i: number) => {
      const o = outcomes[i]!;
      expect(o.status, `publish ${i}`).toBe('rejected');
      expect(isDiscueError((o as PromiseRejectedResult).reason)).toBe(true);
      return ((o as PromiseRejectedResult).reason as DiscueError).code;
    };
    expect(value(0)).toMatchObject({ queue: 'a', ids: [expect.any(String)] });
    expect(value(1).ids).toHaveLength(2);
    expect(code(2)).toBe('INVALID_MESSAGE');
    expect(code(3)).toBe('QUEUE_NOT_FOUND');
    expect(value(4).duplicates).toBeUndefined();
    expect(value(5)).toMatchObject({ ids: value(4).ids, duplicates: [0] });
    expect(code(6)).toBe('SCHEMA_VIOLATION');
    expect(value(7).queue).toBe('typed');
    expect(code(8)).toBe('INVALID_MESSAGE');
    expect((outcomes[8] as PromiseRejectedResult).reason).toMatchObject({ details: { index: 1 } });

    // Stored in the order published, ids rising, the refused ones not at all.
    const a = await client.request('messages.list', { queue: 'a', limit: 100 });
    expect(a.map((m) => m.data)).toEqual(['a1', 'keyed', 'a3']);
    expect(a.map((m) => m.id)).toEqual([value(0).ids[0], value(4).ids[0], value(9).ids[0]]);
    expect((await client.request('messages.list', { queue: 'b', limit: 100 })).map((m) => m.id)).toEqual(value(1).ids);
    expect((await client.request('messages.list', { queue: 'typed', limit: 100 })).map((m) => m.data)).toEqual(['{"ok":true}']);

    // A lone publish goes as a plain publish; one made just before close() still goes out.
    sent.length = 0;
    await client.publish('a', { data: 'alone' });
    const last = client.publish('a', { data: 'before close' });
    last.catch(() => undefined);
    const second = client.publish('a', { data: 'also before close' });
    await client.close();
    expect((await last).ids).toHaveLength(1);
    expect((await second).ids).toHaveLength(1);
    expect(sent).toEqual(['publish', 'publish.many']);
  });

  it('coalesces no more publishes than one publish.many takes: an empty publish does not sink the others', async () => {
    const client = await open();
    await client.request('queue.create', { name: 'q' });
    // 10,000 messages is the most one frame carries; an empty publish adds
    // none, but one publish more than a publish.many takes refused them all.
    const outcomes = await Promise.allSettled([
      client.publish('q', []),
      ...Array.from({ length: 10_000 }, (_, i) => client.publish('q', { data: String(i) })),
    ]);
    expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: { code: 'INVALID_ARGUMENT' } });
    const failed = outcomes.slice(1).filter((o) => o.status === 'rejected');
    expect(failed.length, String((failed[0] as PromiseRejectedResult | undefined)?.reason)).toBe(0);
    expect((await client.request('queue.list', {}))[0]!.messages).toBe(10_000);
  });

  it('does not start a daemon with autoStart: false', async () => {
    const err = await rejection(connect({ home: sb.home, autoStart: false }));
    expect(err.code).toBe('DAEMON_UNREACHABLE');
    expect(err.exitCode).toBe(3);
    expect(err.message).toContain('discue daemon start');
    expect(daemonProcesses(sb.home)).toEqual([]);
  });

  it('carries on after the daemon dies: the next request reconnects to a new daemon', async () => {
    const client = await open();
    await client.request('queue.create', { name: 'q' });
    const pid = client.daemon.pid;
    const dropped = once(client, 'disconnected');
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid);
    await dropped;
    // Requests in flight at the kill fail with DAEMON_DIED (test/e2e/client-reconnect.test.ts);
    // a later one starts a new daemon, and the queue is still there.
    expect((await client.publish('q', { data: 'after the crash' })).ids).toHaveLength(1);
    expect(client.daemon.pid).not.toBe(pid);
    expect((await client.request('queue.get', { name: 'q' })).messages).toBe(1);
  });
});

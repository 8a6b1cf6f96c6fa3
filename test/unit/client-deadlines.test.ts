/**
 * The client's deadlines against a scripted daemon in this process: a
 * stream lives as long as the daemon answers pings, however long no event
 * comes; a request the daemon ignores while it answers others fails alone,
 * and the connection stays in use. And how publishes made in one tick go
 * out, by what the daemon's hello says it serves.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, isDiscueError } from '../../src/index.js';
import type { DiscueClient } from '../../src/index.js';
import { waitFor } from '../helpers/sandbox.js';
import { tmpDir } from '../helpers/tmp.js';

interface Frame {
  id: number;
  type: string;
  params?: unknown;
}

/** A daemon that answers hello always, other requests as `answer` says, and records what it got. */
class ScriptedDaemon {
  readonly received: Frame[] = [];
  answer: (frame: Frame) => boolean = () => true;
  /** What the hello lists (none: an older daemon). */
  features: string[] | undefined;
  /** A reply frame of its own for a request, instead of an empty result. */
  respond: (frame: Frame) => object | undefined = () => undefined;
  private readonly sockets = new Set<Socket>();
  private constructor(readonly server: Server) {}

  static async listen(path: string): Promise<ScriptedDaemon> {
    let daemon!: ScriptedDaemon;
    const server = createServer((socket) => {
      daemon.sockets.add(socket);
      socket.on('close', () => daemon.sockets.delete(socket));
      let text = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        let nl: number;
        while ((nl = text.indexOf('\n')) !== -1) {
          const frame = JSON.parse(text.slice(0, nl)) as Frame;
          text = text.slice(nl + 1);
          daemon.received.push(frame);
          if (frame.type === 'hello') {
            const result = { protocol: 1, version: 'scripted', pid: process.pid, features: daemon.features };
            socket.write(JSON.stringify({ id: frame.id, ok: true, result }) + '\n');
            continue;
          }
          const own = daemon.respond(frame);
          if (own) socket.write(JSON.stringify({ id: frame.id, ...own }) + '\n');
          else if (daemon.answer(frame)) {
            socket.write(JSON.stringify({ id: frame.id, ok: true, result: [] }) + '\n');
          }
        }
      });
    });
    daemon = new ScriptedDaemon(server);
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return daemon;
  }

  count(type: string): number {
    return this.received.filter((f) => f.type === type).length;
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
  }
}

let dir: string;
let daemon: ScriptedDaemon;
let client: DiscueClient | undefined;
beforeEach(async () => {
  dir = tmpDir('dq-unit-');
  daemon = await ScriptedDaemon.listen(join(dir, 'd.sock'));
});
afterEach(async () => {
  await client?.close().catch(() => undefined);
  client = undefined;
  daemon.close();
});

async function open(requestTimeoutMs: number): Promise<DiscueClient> {
  client = await connect({ home: join(dir, 'h'), socket: join(dir, 'd.sock'), autoStart: false, requestTimeoutMs });
  return client;
}

describe('client deadlines', () => {
  it('keeps a silent stream open while the daemon answers pings, and ends it once pings go unanswered', async () => {
    const c = await open(1000);
    let settled: unknown;
    const stream = c.stream('listen', { queues: [] }, () => undefined);
    stream.done.then(
      () => (settled = 'resolved'),
      (err: unknown) => (settled = err),
    );
    daemon.answer = (frame) => frame.type === 'daemon.status';
    // Several ping deadlines pass with no event: the stream must still be open.
    await waitFor(() => daemon.count('daemon.status') >= 4, 20_000, 'four pings');
    expect(settled).toBeUndefined();

    daemon.answer = () => false;
    await waitFor(() => settled !== undefined, 20_000, 'the stream to end');
    expect(isDiscueError(settled) && settled.code).toBe('DAEMON_TIMEOUT');
    expect((settled as Error).message).toContain(`the daemon (pid ${process.pid}) did not answer within 1s`);
  });

  it('fails only the request the daemon ignores while it answers others; the connection stays', async () => {
    const c = await open(2000);
    const disconnected: unknown[] = [];
    c.on('disconnected', (event) => disconnected.push(event));
    daemon.answer = (frame) => frame.type !== 'queue.list';
    const ignored = c.request('queue.list', {}).catch((err: unknown) => err);
    // Answered while the first waits: the daemon is alive.
    await c.request('deliveries.list', {});
    const err = await ignored;
    expect(isDiscueError(err) && err.code).toBe('DAEMON_TIMEOUT');
    expect((err as Error).message).toContain('though it answers others');
    expect(await c.request('deliveries.list', {})).toEqual([]);
    expect(disconnected).toEqual([]);
    expect(daemon.count('hello')).toBe(1);
  });
});

describe('publishes made in one tick', () => {
  /** Answers a publish with ids P1, P2, ...; publish.many as an older daemon does. */
  function olderDaemonAfterReconnect(): void {
    daemon.features = ['publish.many'];
    let n = 0;
    daemon.respond = (frame) => {
      if (frame.type === 'publish.many') return { ok: false, error: { code: 'UNKNOWN_REQUEST', message: 'unknown request type "publish.many"' } };
      if (frame.type === 'publish') return { ok: true, result: { queue: 'q', ids: [`P${++n}`], publishedAt: '2026-01-01T00:00:00.000Z' } };
      return undefined;
    };
  }

  it('go alone to a daemon whose hello does not list publish.many', async () => {
    const c = await open(5000);
    daemon.respond = (frame) => (frame.type === 'publish' ? { ok: true, result: { queue: 'q', ids: ['X'], publishedAt: '' } } : undefined);
    await Promise.all([c.publish('q', { data: '1' }), c.publish('q', { data: '2' }), c.publish('q', { data: '3' })]);
    expect(daemon.received.map((f) => f.type)).toEqual(['hello', 'publish', 'publish', 'publish']);
  });

  it('go alone, in order, when the daemon turns out not to know publish.many', async () => {
    olderDaemonAfterReconnect();
    const c = await open(5000);
    const results = await Promise.all([c.publish('q', { data: '1' }), c.publish('q', { data: '2' }), c.publish('q', { data: '3' })]);
    expect(results.map((r) => r.ids[0])).toEqual(['P1', 'P2', 'P3']);
    expect(daemon.received.map((f) => f.type)).toEqual(['hello', 'publish.many', 'publish', 'publish', 'publish']);
    expect(daemon.received.slice(2).map((f) => (f.params as { messages: { data: string }[] }).messages[0]!.data)).toEqual(['1', '2', '3']);
  });
});

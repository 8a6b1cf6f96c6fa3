/**
 * The client's deadlines against a scripted daemon in this process: a
 * stream lives as long as the daemon answers pings, however long no event
 * comes; a request the daemon ignores while it answers others fails alone,
 * and the connection stays in use.
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
}

/** A daemon that answers hello always, other requests as `answer` says, and records what it got. */
class ScriptedDaemon {
  readonly received: Frame[] = [];
  answer: (frame: Frame) => boolean = () => true;
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
            socket.write(JSON.stringify({ id: frame.id, ok: true, result: { protocol: 1, version: 'scripted', pid: process.pid } }) + '\n');
          } else if (daemon.answer(frame)) {
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

/**
 * Attacks on the daemon's socket through the real daemon: clients that
 * pipeline many requests and then shut down their side, or close before
 * reading a single reply.
 */
import { createConnection } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useSandbox, waitFor } from '../helpers/sandbox.js';
import { listAll, messageCount, ok, statusPid } from '../helpers/discue.js';

const sb = useSandbox('dq-atks-');

function hello(): string {
  return JSON.stringify({ id: 1, type: 'hello', params: { protocol: 1, version: 'attack' } }) + '\n';
}

function publishes(n: number, firstId = 2): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    out += JSON.stringify({ id: firstId + i, type: 'publish', params: { queue: 'q', messages: [{ data: `m${i}` }] } }) + '\n';
  }
  return out;
}

describe('attacks on the socket', () => {
  it('a client that pipelines 5,000 publishes and shuts down its sending side gets every reply, then the daemon ends the connection', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const pid = await statusPid(sb);
    const socket = createConnection(sb.socket);
    let text = '';
    let closed = false;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('close', () => (closed = true));
    // end(): the requests, then FIN, as `nc -N` or a script piping a file would.
    socket.end(hello() + publishes(5000));
    await waitFor(() => closed, 60_000, 'the daemon to end the connection after the last reply');
    const frames = text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as { id: number; ok: boolean });
    // Before the fix: every publish stored, but the replies of those still in flight at
    // the FIN (all of them for a short batch) were dropped.
    expect(frames.filter((f) => f.ok)).toHaveLength(5001);
    expect(new Set(frames.map((f) => f.id)).size).toBe(5001);
    expect(await messageCount(sb, 'q')).toBe(5000);
    expect(await statusPid(sb)).toBe(pid);
  });

  it('a client that pipelines 10,000 publishes and closes before reading: the daemon stores a prefix at most once each, lives, and serves the next client', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const pid = await statusPid(sb);
    for (let round = 0; round < 3; round++) {
      const socket = createConnection(sb.socket);
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(hello() + publishes(10_000));
      socket.destroy();
    }
    // What arrived before the close may be stored; nothing twice, nothing altered. The daemon has
    // read all three when it holds no connection but the status request's own.
    await waitFor(async () => {
      const status = JSON.parse(await ok(sb, ['daemon', 'status', '--json'])) as { connections: number };
      return status.connections === 1;
    }, 30_000, 'the daemon to close the three connections');
    const list = await listAll(sb, 'q');
    const seen = new Map<string, number>();
    for (const m of list) {
      expect(m.data).toMatch(/^m\d+$/);
      seen.set(m.data, (seen.get(m.data) ?? 0) + 1);
    }
    // Each round publishes m0..m9999 once: no datum more often than the rounds.
    for (const count of seen.values()) expect(count).toBeLessThanOrEqual(3);
    expect((await ok(sb, ['publish', 'q', '--data', 'after'])).trim()).toMatch(/^\S+$/);
    expect(await statusPid(sb)).toBe(pid);
  });
});

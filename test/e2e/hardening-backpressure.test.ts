/**
 * Back-pressure: what a client sends and does not read, or starts and does
 * not finish, is bounded in the daemon, and other clients are served
 * meanwhile. Memory is read from /proc/PID/status.
 */
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ok, statusPid } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

const MiB = 1024 * 1024;

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!kb) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb[1]) * 1024;
}

/** A raw client that counts reply lines without keeping them (replies here are megabytes). */
class Counter {
  lines = 0;
  text = '';
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      let at = chunk.indexOf(10);
      while (at !== -1) {
        this.lines++;
        at = chunk.indexOf(10, at + 1);
      }
      // Keep only small replies' text (the hello, error frames).
      if (this.text.length < 64 * 1024) this.text += chunk.toString('utf8', 0, Math.min(chunk.length, 4096));
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static async greeted(path: string): Promise<Counter> {
    const socket = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new Counter(socket);
    socket.write(JSON.stringify({ id: 1, type: 'hello', params: { protocol: 1, version: 'test' } }) + '\n');
    await waitFor(() => client.lines >= 1, 20_000, 'the hello reply');
    expect(client.text).toContain('"ok":true');
    return client;
  }

  send(frame: unknown): void {
    this.socket.write(JSON.stringify(frame) + '\n');
  }
}

describe('back-pressure', () => {
  const sb = useSandbox();


  /** A queue whose every `messages.list` page is about 4 MiB. */
  async function bigQueue(): Promise<void> {
    await ok(sb, ['queue', 'create', 'big']);
    const data = 'a'.repeat(200 * 1024);
    const lines = Array.from({ length: 40 }, () => JSON.stringify({ data }) + '\n').join('');
    await ok(sb, ['publish', 'big'], lines);
  }

  it('keeps the daemon small when a client asks for large pages and never reads them, and serves others', async () => {
    await bigQueue();
    await ok(sb, ['queue', 'create', 'small']);
    const pid = await statusPid(sb);
    const before = rssBytes(pid);

    const hog = await Counter.greeted(sb.socket);
    hog.socket.pause();
    // 150 pages of ~4 MiB: 600 MiB of replies if the daemon built them all.
    const requests = 150;
    for (let i = 0; i < requests; i++) hog.send({ id: 100 + i, type: 'messages.list', params: { queue: 'big', limit: 100 } });

    // While it hogs, others are served; the daemon's memory is sampled throughout.
    let peak = rssBytes(pid);
    for (let i = 0; i < 6; i++) {
      await ok(sb, ['publish', 'small', '--data', `m${i}`]);
      const listed = JSON.parse(await ok(sb, ['messages', 'list', 'small', '--json'])) as { data: string }[];
      expect(listed.map((m) => m.data)).toContain(`m${i}`);
      peak = Math.max(peak, rssBytes(pid));
    }
    expect(await statusPid(sb)).toBe(pid);
    const grown = peak - before;
    expect(grown, `the daemon grew by ${Math.round(grown / MiB)} MiB`).toBeLessThan(200 * MiB);

    // Nothing was lost: once the hog reads, every page arrives.
    hog.socket.resume();
    await waitFor(() => hog.lines >= 1 + requests, 60_000, 'all replies');
    expect(hog.closed).toBe(false);
    hog.socket.destroy();
  }, 120_000);

  it('drops a client that does not read its replies, or stops in the middle of a frame, after the stall timeout', async () => {
    // A short stall timeout for this daemon (a test and ops knob, read at
    // daemon start): the auto-started daemon inherits it from the first command.
    sb.env.DISCUE_STALL_TIMEOUT_MS = '1500';
    await bigQueue();
    const pid = await statusPid(sb);

    const reader = await Counter.greeted(sb.socket);
    const silent = await Counter.greeted(sb.socket);
    silent.socket.pause();
    for (let i = 0; i < 20; i++) silent.send({ id: 100 + i, type: 'messages.list', params: { queue: 'big' } });
    const halfway = await Counter.greeted(sb.socket);
    halfway.socket.write('{"id":5,"type":"daemon.status","params":{');

    // A paused socket sees the close only after reading what is buffered, so the log says it first.
    await waitFor(() => sb.log().includes('client did not read its replies; disconnected'), 30_000, 'the silent client to be dropped');
    silent.socket.resume();
    await waitFor(() => silent.closed, 30_000, 'the silent client to see the close');
    expect(silent.lines).toBeLessThan(1 + 20);
    await waitFor(() => halfway.closed, 30_000, 'the daemon to drop the client stopped mid-frame');
    expect(sb.log()).toContain('client stopped in the middle of a frame; disconnected');

    // A client that reads is kept, however long it stays idle in between.
    reader.send({ id: 2, type: 'messages.list', params: { queue: 'big' } });
    await waitFor(() => reader.lines >= 2, 20_000, 'the reader to get its page');
    expect(reader.closed).toBe(false);
    expect(await statusPid(sb)).toBe(pid);
    reader.socket.destroy();
  }, 120_000);

  it('caps the unfinished frames of all clients together: the one past the cap gets BUSY, the rest finish', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const pid = await statusPid(sb);
    // Eight clients each start a 15 MiB frame (padding is JSON whitespace) and do not finish it.
    const clients = await Promise.all(Array.from({ length: 8 }, () => Counter.greeted(sb.socket)));
    const padding = ' '.repeat(15 * MiB);
    for (const client of clients) client.socket.write(`{"id":2,"type":"daemon.status","params":{${padding}`);

    await waitFor(() => clients.some((c) => c.closed), 60_000, 'a client to be refused');
    const refused = clients.filter((c) => c.closed);
    for (const client of refused) expect(client.text).toContain('"code":"BUSY"');
    // 64 MiB of half frames in all: at most four of 15 MiB are held at once.
    await waitFor(() => clients.filter((c) => !c.closed).length <= 4, 60_000, 'the cap to refuse the rest');

    await ok(sb, ['publish', 'q', '--data', 'small requests still pass']);
    const kept = clients.filter((c) => !c.closed);
    expect(kept.length).toBeGreaterThan(0);
    for (const client of kept) client.socket.write('}}\n');
    await waitFor(() => kept.every((c) => c.lines >= 2), 20_000, 'the finished frames to be answered');
    for (const client of kept) expect(client.text).toContain('"id":2,"ok":true');
    expect(await statusPid(sb)).toBe(pid);
    for (const client of clients) client.socket.destroy();
  }, 120_000);
});

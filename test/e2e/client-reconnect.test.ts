/**
 * The library client reconnects by itself. After the daemon dies or is
 * restarted, the next request opens a new connection (starting the daemon
 * unless autoStart is false) with a bounded backoff, and the client says so
 * in 'disconnected', 'reconnecting' and 'reconnected' events. What was in
 * flight when the connection dropped (a request, a stream) fails with
 * DAEMON_DIED: it may or may not have been done.
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { connect, isDiscueError } from '../../src/index.js';
import type { ConnectOptions, DiscueClient, ReconnectedEvent, ReconnectingEvent } from '../../src/index.js';
import { daemonProcesses, ok, waitForExit } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

const sb = useSandbox('dq-reconnect-');

interface Watched {
  client: DiscueClient;
  reconnecting: ReconnectingEvent[];
  reconnected: ReconnectedEvent[];
}

async function open(options: ConnectOptions = {}): Promise<Watched> {
  const client = await connect({ home: sb.home, ...options });
  sb.onDispose(() => client.close());
  const watched: Watched = { client, reconnecting: [], reconnected: [] };
  client.on('reconnecting', (event) => watched.reconnecting.push(event));
  client.on('reconnected', (event) => watched.reconnected.push(event));
  return watched;
}

/** The error code a promise rejects with. */
async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isDiscueError(err), `expected a DiscueError, got ${String(err)}`).toBe(true);
  return (err as { code: string }).code;
}

/** Kills the daemon with SIGKILL and waits until the client has seen its connection drop. */
async function killDaemon(client: DiscueClient): Promise<number> {
  const pid = client.daemon.pid;
  const dropped = once(client, 'disconnected');
  process.kill(pid, 'SIGKILL');
  await waitForExit(pid);
  const [event] = (await dropped) as [{ pid: number }];
  expect(event.pid).toBe(pid);
  return pid;
}

async function stored(queue: string): Promise<string[]> {
  return (JSON.parse(await ok(sb, ['messages', 'list', queue, '--json'])) as { data: string }[]).map((m) => m.data);
}

describe('library: reconnecting by itself', () => {
  it('after kill -9, the next request starts a new daemon and goes through', async () => {
    const { client, reconnecting, reconnected } = await open();
    await client.request('queue.create', { name: 'q' });
    await client.publish('q', { data: 'before' });
    const oldPid = await killDaemon(client);

    expect((await client.publish('q', { data: 'after' })).ids).toHaveLength(1);
    const newPid = sb.daemonPid();
    expect(newPid).not.toBe(oldPid);
    expect(client.daemon.pid).toBe(newPid);
    expect(reconnected).toEqual([{ attempt: 1, pid: newPid, previousPid: oldPid }]);
    expect(reconnecting.map((e) => [e.attempt, e.delayMs])).toEqual([[1, 0]]);
    expect(reconnecting[0]!.error.code).toBe('DAEMON_UNREACHABLE');
    expect(await stored('q')).toEqual(['before', 'after']);
  });

  it('after `discue daemon restart`, the same client goes on', async () => {
    const { client, reconnected } = await open();
    await client.request('queue.create', { name: 'q' });
    await client.publish('q', { data: 'one' });
    const oldPid = client.daemon.pid;
    const dropped = once(client, 'disconnected');
    await ok(sb, ['daemon', 'restart']);
    await dropped;
    const newPid = sb.daemonPid();
    expect(newPid).not.toBe(oldPid);

    expect((await client.publish('q', { data: 'two' })).ids).toHaveLength(1);
    expect(reconnected).toEqual([{ attempt: 1, pid: newPid, previousPid: oldPid }]);
    expect(await stored('q')).toEqual(['one', 'two']);
  });

  it('a request and a stream in flight when the daemon dies fail with DAEMON_DIED; later requests go through', async () => {
    const { client } = await open();
    await client.request('queue.create', { name: 'q' });
    await client.request('queue.create', { name: 'slow' });
    // A listener that holds a `wait` open for as long as the test needs.
    await client.request('listener.add', { kind: 'exec', queues: ['slow'], command: 'sleep 60', name: 'sleeper' });
    const stream = client.stream('listen', { queues: ['q'], from: 'new', prefetch: 1 }, () => undefined);
    const waiting = client.request('publish', { queue: 'slow', messages: [{ data: 'held' }], wait: true, waitTimeoutMs: 600_000 });
    const streamCode = rejectionCode(stream.done);
    const waitCode = rejectionCode(waiting);
    await waitFor(async () => (await stored('slow')).length === 1, 20_000, 'the waited-for message stored');

    await killDaemon(client);
    expect(await waitCode).toBe('DAEMON_DIED');
    expect(await streamCode).toBe('DAEMON_DIED');
    expect((await client.publish('q', { data: 'next' })).ids).toHaveLength(1);
    expect(await stored('q')).toEqual(['next']);
  });

  it('with autoStart false and no daemon, backs off (50 ms doubling, at most 2 s) and gives up at the deadline with DAEMON_UNREACHABLE', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const { client, reconnecting, reconnected } = await open({ autoStart: false, requestTimeoutMs: 10_000 });
    await killDaemon(client);

    const asked = Date.now();
    expect(await rejectionCode(client.publish('q', { data: 'nobody there' }))).toBe('DAEMON_UNREACHABLE');
    const took = Date.now() - asked;
    const delays = reconnecting.map((e) => e.delayMs);
    // Each wait doubles from 50 ms, capped at 2 s.
    expect(delays.slice(0, 8)).toEqual([0, 50, 100, 200, 400, 800, 1600, 2000]);
    expect(delays.slice(8).every((d) => d === 2000)).toBe(true);
    // The waits were really waited (not only reported), and it gave up at the 10 s deadline of
    // the request: only once the next 2 s wait would pass it, and not long after (room for a
    // busy machine).
    expect(took).toBeGreaterThanOrEqual(delays.reduce((a, b) => a + b, 0));
    expect(took + 2000, `gave up after ${took} ms`).toBeGreaterThanOrEqual(10_000);
    expect(took).toBeLessThan(10_000 + 10_000);
    expect(reconnecting.map((e) => e.attempt)).toEqual(delays.map((_, i) => i + 1));
    const codes = reconnecting.slice(1).map((e) => `${e.error.code}: ${e.error.message.split('\n')[0]}`);
    expect(codes.filter((c) => !c.startsWith('DAEMON_UNREACHABLE:'))).toEqual([]);
    expect(reconnected).toEqual([]);
    expect(daemonProcesses(sb.home)).toEqual([]);

    // Someone else starts it: the same client uses it.
    await ok(sb, ['daemon', 'start']);
    expect((await client.publish('q', { data: 'found it' })).ids).toHaveLength(1);
    expect(reconnected.map((e) => e.pid)).toEqual([sb.daemonPid()]);
  });

  it('a closed client does not reconnect', async () => {
    const { client, reconnecting } = await open();
    await client.close();
    expect(await rejectionCode(client.request('queue.list', {}))).toBe('DAEMON_UNREACHABLE');
    expect(reconnecting).toEqual([]);
  });
});

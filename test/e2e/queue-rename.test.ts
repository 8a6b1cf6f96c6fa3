/**
 * `discue queue rename OLD NEW`: the queue keeps its messages, listeners,
 * positions, pending retries, live `listen` streams and `publish --wait`
 * waiters; only the catalogue record changes, in one durable write, so a
 * kill -9 right after the reply finds everything under NEW.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { expectError, expectJsonError, listAll, waitForExit } from '../helpers/discue.js';
import { collect, useSandbox, waitFor } from '../helpers/sandbox.js';
import type { RunResult } from '../helpers/sandbox.js';
import { addListener, closeAllServers, listDeliveries, mustRun, publishData, runJson, startHookServer } from '../helpers/delivery.js';
import type { Envelope, ListenerJson } from '../helpers/delivery.js';

const sb = useSandbox('dq-rename-');
afterEach(async () => {
  await closeAllServers();
});

async function killDaemon(): Promise<void> {
  const pid = sb.daemonPid();
  expect(pid).toBeDefined();
  process.kill(pid!, 'SIGKILL');
  await waitForExit(pid!, 'the daemon to die');
}

/** `discue listen ... --json`, its envelopes as they come. */
function startListen(args: string[]): { child: ChildProcess; envelopes(): Envelope[]; done: Promise<RunResult> } {
  const child = sb.spawn(['listen', ...args, '--json']);
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const done = collect(child, { timeoutMs: 60_000 });
  const envelopes = () =>
    stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Envelope);
  return { child, envelopes, done };
}

async function connectedStreams(): Promise<number> {
  const list = await runJson<(ListenerJson & { connected?: boolean })[]>(sb, ['listener', 'list']);
  return list.filter((l) => l.kind === 'stream' && l.connected).length;
}

describe('discue queue rename', () => {
  it('renames with its messages; answers 4 for a missing OLD, 5 for a taken NEW, 2 for a bad NEW; frees OLD', async () => {
    await mustRun(sb, ['queue', 'create', 'orders', '--max-messages', '100']);
    const ids = await publishData(sb, 'orders', ['a', 'b']);
    const text = await mustRun(sb, ['queue', 'rename', 'orders', 'orders.v1']);
    expect(text).toContain('orders.v1');

    expect((await listAll(sb, 'orders.v1')).map((m) => [m.id, m.queue, m.data])).toEqual([
      [ids[0], 'orders.v1', 'a'],
      [ids[1], 'orders.v1', 'b'],
    ]);
    const shown = await runJson<{ name: string; messages: number; maxMessages: number }>(sb, ['queue', 'show', 'orders.v1']);
    expect(shown).toMatchObject({ name: 'orders.v1', messages: 2, maxMessages: 100 });
    expectError(await sb.run(['queue', 'show', 'orders']), 4, 'QUEUE_NOT_FOUND');

    expectError(await sb.run(['queue', 'rename', 'orders', 'x']), 4, 'QUEUE_NOT_FOUND');
    await mustRun(sb, ['queue', 'create', 'taken']);
    expectError(await sb.run(['queue', 'rename', 'orders.v1', 'taken']), 5, 'QUEUE_EXISTS');
    expectJsonError(await sb.run(['queue', 'rename', 'orders.v1', 'taken', '--json']), 5, 'QUEUE_EXISTS');
    expectError(await sb.run(['queue', 'rename', 'orders.v1', 'no spaces']), 2, 'INVALID_QUEUE_NAME');
    expectError(await sb.run(['queue', 'rename', 'orders.v1']), 2, 'USAGE');

    // --json answers the queue as it is now.
    const json = await runJson<{ name: string; messages: number }>(sb, ['queue', 'rename', 'orders.v1', 'orders']);
    expect(json).toMatchObject({ name: 'orders', messages: 2 });
    // The freed name makes a new, empty queue.
    await mustRun(sb, ['queue', 'create', 'orders.v1']);
    expect(await listAll(sb, 'orders.v1')).toEqual([]);
    expect((await listAll(sb, 'orders')).map((m) => m.data)).toEqual(['a', 'b']);
  });

  it('running listeners, `listen` streams and a `publish --wait` carry on under NEW', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    // The first attempt is held until the rename is done, then fails: its retry goes out after the rename.
    const hook = await startHookServer(async (_req, index) => {
      if (index > 0) return { status: 200 };
      await held;
      return { status: 500 };
    });
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'mailer', '--retry-delay', '50ms']);
    const live = startListen(['orders']);
    await waitFor(async () => (await connectedStreams()) === 1, 20_000, 'the listen connected');

    // A --wait publish whose delivery is held by the receiver while the queue is renamed.
    const waiting = sb.run(['publish', 'orders', '--data', 'before', '--wait', '--json']);
    await waitFor(() => hook.requests.length === 1, 20_000, 'the held delivery');
    await mustRun(sb, ['queue', 'rename', 'orders', 'shop']);
    release();
    const published = await waiting;
    expect(published.code, published.stderr).toBe(0);
    const result = JSON.parse(published.stdout) as { deliveries: { listener: string; state: string }[] };
    expect(result.deliveries).toEqual(expect.arrayContaining([expect.objectContaining({ listener: l.id, state: 'delivered' })]));

    await publishData(sb, 'shop', ['after']);
    await waitFor(() => hook.delivered.length === 2 && live.envelopes().length === 2, 20_000, 'both messages to both');
    // Delivered from then on under the new name, by the same listener and stream (the retry of a message read before too).
    expect(hook.requests.map((r) => [r.envelope.data, r.envelope.queue])).toEqual([
      ['before', 'orders'],
      ['before', 'shop'],
      ['after', 'shop'],
    ]);
    expect(live.envelopes().map((m) => m.data)).toEqual(['before', 'after']);
    expect(live.envelopes()[1]!.queue).toBe('shop');
    expect(await connectedStreams()).toBe(1);

    const listener = await runJson<ListenerJson & { progress: { queue: string }[] }>(sb, ['listener', 'show', 'mailer']);
    expect(listener.queues).toEqual(['shop']);
    expect(listener.progress.map((p) => p.queue)).toEqual(['shop']);
    expect((await runJson<ListenerJson[]>(sb, ['listener', 'list', '--queue', 'shop'])).map((x) => x.id)).toContain(l.id);
    expect((await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered'])).map((d) => d.queue)).toEqual(['shop', 'shop']);
    live.child.kill('SIGINT');
    await live.done;
  });

  it('survives kill -9 right after it returns: messages, listener, position and a pending retry are all under NEW', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    let failing = true;
    const hook = await startHookServer(() => (failing ? { status: 503, headers: { 'retry-after': '2' } } : { status: 200 }));
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--retry-delay', '50ms', '--max-attempts', '10']);
    const [first, second] = await publishData(sb, 'orders', ['retried', 'queued behind it']);
    // The first message is in its backoff, saved as an open delivery of the old name's queue.
    await waitFor(
      async () => (await listDeliveries(sb, ['--listener', l.id])).some((d) => d.messageId === first && d.state === 'failed' && d.nextAttemptAt),
      20_000,
      'a retry pending under orders',
    );
    expect((await listDeliveries(sb, ['--listener', l.id]))[0]!.queue).toBe('orders');

    await mustRun(sb, ['queue', 'rename', 'orders', 'shop']);
    await killDaemon();
    failing = false;

    // The next command starts a new daemon on the same data.
    expect((await listAll(sb, 'shop')).map((m) => m.id)).toEqual([first, second]);
    expectError(await sb.run(['queue', 'show', 'orders']), 4, 'QUEUE_NOT_FOUND');
    expect((await runJson<ListenerJson>(sb, ['listener', 'show', l.id])).queues).toEqual(['shop']);
    // The retry pending under OLD is delivered under NEW, with the attempts made before the crash.
    await waitFor(() => hook.delivered.length === 2, 30_000, 'both delivered after the restart');
    expect(hook.delivered.map((r) => [r.envelope.id, r.envelope.queue])).toEqual([
      [first, 'shop'],
      [second, 'shop'],
    ]);
    const done = await waitFor(
      async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered'])).find((d) => d.messageId === first),
      10_000,
      'the delivered record',
    );
    expect(done.queue).toBe('shop');
    expect(done.attempts.length).toBeGreaterThan(1);
    expect(done.attempts[done.attempts.length - 1]!.ok).toBe(true);

    // Its position moved on under NEW: a restart sends nothing again.
    const sent = hook.requests.length;
    await killDaemon();
    await publishData(sb, 'shop', ['third']);
    await waitFor(() => hook.delivered.length === 3, 30_000, 'the third message');
    expect(hook.delivered.map((r) => r.envelope.data)).toEqual(['retried', 'queued behind it', 'third']);
    expect(hook.requests.length).toBe(sent + 1);
  });

  it('a kill -9 while a rename is under way leaves the queue under one name or the other, never both or neither, with everything', async () => {
    await mustRun(sb, ['queue', 'create', 'q0']);
    const ids = await publishData(sb, 'q0', ['a', 'b', 'c']);
    const l = await addListener(sb, ['--queue', 'q0', '--exec', 'true', '--name', 'kept']);
    let name = 'q0';
    // Killed at a different point each round: before, during or after the write.
    for (let round = 1; round <= 4; round++) {
      const next = `q${round}`;
      const rename = sb.spawn(['queue', 'rename', name, next]);
      const renamed = collect(rename, { timeoutMs: 30_000 });
      // Not a wait for anything: where the kill lands varies by round, and every outcome is checked.
      await new Promise((resolve) => setTimeout(resolve, round * 15));
      await killDaemon();
      await renamed;
      const names = (await runJson<{ name: string }[]>(sb, ['queue', 'list'])).map((q) => q.name);
      expect(names.filter((n) => n === name || n === next), `round ${round}: ${names.join(',')}`).toHaveLength(1);
      name = names.includes(next) ? next : name;
      expect((await listAll(sb, name)).map((m) => [m.id, m.queue])).toEqual(ids.map((id) => [id, name]));
      expect((await runJson<ListenerJson>(sb, ['listener', 'show', l.id])).queues).toEqual([name]);
    }
  });
});

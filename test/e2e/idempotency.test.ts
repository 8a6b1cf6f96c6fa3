/**
 * Publishing again after a failure stores the message once: a message with an
 * idempotency key (`publish --key`, `"key"` in JSON, NDJSON and the library)
 * is stored once per queue within the dedupe window, and a repeat is
 * answered with the first id. The key is written in the message's own synced
 * batch, so this holds across kill -9 between the write and the reply.
 */
import { expect, it } from 'vitest';
import { connect, isDiscueError } from '../../src/index.js';
import { RawClient, expectError, expectJsonError, listAll, messageCount, ok, waitForExit } from '../helpers/discue.js';
import { waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';

interface PublishJson {
  queue: string;
  count: number;
  ids: string[];
  duplicates?: number[];
}

describeBackends('idempotency keys', (backend) => {
  const sb = useBackendSandbox('dq-key-');

  async function publishJson(args: string[], env?: Record<string, string>, input?: string): Promise<PublishJson> {
    const result = await sb.run(['publish', ...args, '--json'], { ...(env ? { env } : {}), ...(input === undefined ? {} : { input }) });
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as PublishJson;
  }

  async function killDaemon(): Promise<void> {
    const pid = sb.daemonPid()!;
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid);
  }

  it('stores a message once per key: the repeat prints the first id and exits 0', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    const first = (await ok(sb, ['publish', 'orders', '--data', 'Order 1001 shipped', '--key', 'order-1001'])).trim();
    const again = await sb.run(['publish', 'orders', '--data', 'Order 1001 shipped', '--key', 'order-1001']);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(first);
    expect(again.stderr).toContain('nothing stored');
    // The key in the JSON message, and --json says which were duplicates.
    const json = await publishJson(['orders', '{"data":"Order 1001 shipped","key":"order-1001"}']);
    expect(json).toEqual({ queue: 'orders', count: 1, ids: [first], duplicates: [0] });
    // Another key stores; no key always stores.
    const other = await publishJson(['orders', '--data', 'Order 1002 shipped', '--key', 'order-1002']);
    expect(other.duplicates).toBeUndefined();
    await ok(sb, ['publish', 'orders', '--data', 'no key']);
    await ok(sb, ['publish', 'orders', '--data', 'no key']);

    const stored = await listAll(sb, 'orders');
    expect(stored.map((m) => m.data)).toEqual(['Order 1001 shipped', 'Order 1002 shipped', 'no key', 'no key']);
    expect(stored[0]!.id).toBe(first);
    // The key is not part of the envelope listeners get.
    expect(Object.keys(stored[0]!).sort()).toEqual(['data', 'id', 'publishedAt', 'queue']);
    expect(await messageCount(sb, 'orders')).toBe(4);
  });

  it('keeps keys per queue: the same key in two queues stores in each', async () => {
    await ok(sb, ['queue', 'create', 'a']);
    await ok(sb, ['queue', 'create', 'b']);
    const inA = (await ok(sb, ['publish', 'a', '--data', 'x', '--key', 'same'])).trim();
    const inB = (await ok(sb, ['publish', 'b', '--data', 'x', '--key', 'same'])).trim();
    expect(inB).not.toBe(inA);
    expect((await ok(sb, ['publish', 'b', '--data', 'x', '--key', 'same'])).trim()).toBe(inB);
    expect(await messageCount(sb, 'a')).toBe(1);
    expect(await messageCount(sb, 'b')).toBe(1);
  });

  it('stores a key repeated within one NDJSON batch once, and recognises keys of earlier batches', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const earlier = (await ok(sb, ['publish', 'q', '--data', 'earlier', '--key', 'e'])).trim();
    const lines = [
      { data: 'one', key: 'k1' },
      { data: 'two', key: 'k2' },
      { data: 'one again', key: 'k1' },
      { data: 'no key' },
      { data: 'earlier again', key: 'e' },
    ];
    const input = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
    const json = await publishJson(['q'], undefined, input);
    expect(json.count).toBe(5);
    expect(json.duplicates).toEqual([2, 4]);
    expect(json.ids[2]).toBe(json.ids[0]);
    expect(json.ids[4]).toBe(earlier);
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(['earlier', 'one', 'two', 'no key']);
    // Without --json: one id per line, as always. Only the line without a key stores again.
    const text = await sb.run(['publish', 'q'], { input });
    expect(text.code).toBe(0);
    const textIds = text.stdout.trim().split('\n');
    expect(textIds.filter((_, i) => i !== 3)).toEqual(json.ids.filter((_, i) => i !== 3));
    expect(textIds[3]).not.toBe(json.ids[3]);
    expect(text.stderr).toContain('4 messages had a key published before');
    expect(await messageCount(sb, 'q')).toBe(5);
  });

  it('takes {"key"} in the library, and answers concurrent repeats with the first id', async () => {
    const client = await connect({ home: sb.home });
    sb.onDispose(() => client.close());
    await client.request('queue.create', { name: 'q' });
    const results = await Promise.all(Array.from({ length: 50 }, () => client.publish('q', { data: 'racy', key: 'r' })));
    const ids = new Set(results.map((r) => r.ids[0]));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.duplicates === undefined)).toHaveLength(1);
    expect(results.filter((r) => r.duplicates?.[0] === 0)).toHaveLength(49);
    expect(await client.request('messages.list', { queue: 'q' })).toHaveLength(1);
  });

  it('stores a key repeated across the publishes of one publish.many frame once, each answered with the first id', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    await ok(sb, ['queue', 'create', 'other']);
    const raw = await RawClient.greeted(sb.socket);
    const publishes = [
      { queue: 'orders', messages: [{ data: 'first', key: 'k' }] },
      { queue: 'orders', messages: [{ data: 'plain 1' }] },
      { queue: 'orders', messages: [{ data: 'again', key: 'k' }, { data: 'new', key: 'k2' }] },
      { queue: 'other', messages: [{ data: 'same key, other queue', key: 'k' }] },
      { queue: 'orders', messages: [{ data: 'again and again', key: 'k' }] },
      { queue: 'orders', messages: [{ data: 'plain 2' }] },
    ];
    raw.send({ id: 7, type: 'publish.many', params: { publishes } });
    const reply = (await raw.frame(7)) as { ok: boolean; result: { results: { ok: boolean; result: { ids: string[]; duplicates?: number[] } }[] } };
    raw.destroy();
    expect(reply.ok, JSON.stringify(reply)).toBe(true);
    const results = reply.result.results.map((r) => {
      expect(r.ok, JSON.stringify(r)).toBe(true);
      return r.result;
    });
    const first = results[0]!.ids[0]!;
    expect(results[0]!.duplicates).toBeUndefined();
    expect(results[2]).toMatchObject({ ids: [first, expect.any(String)], duplicates: [0] });
    expect(results[4]).toMatchObject({ ids: [first], duplicates: [0] });
    expect(results[3]!.duplicates).toBeUndefined();
    const stored = await listAll(sb, 'orders');
    expect(stored.map((m) => m.data)).toEqual(['first', 'plain 1', 'new', 'plain 2']);
    expect(stored.map((m) => m.id)).toEqual([first, results[1]!.ids[0], results[2]!.ids[1], results[5]!.ids[0]]);
    expect((await listAll(sb, 'other')).map((m) => m.data)).toEqual(['same key, other queue']);
  });

  it('refuses bad keys with INVALID_MESSAGE (exit 2) and stores nothing', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const bad: unknown[] = ['', 'k'.repeat(257), 'tab\there', 'nul\u0000', 'naïve', 'emoji 🎉', 42, null, ['k'], { k: 1 }];
    for (const key of bad) {
      const result = await sb.run(['publish', 'q', JSON.stringify({ data: 'x', key })]);
      expectError(result, 2, 'INVALID_MESSAGE');
    }
    expectJsonError(await sb.run(['publish', 'q', '--data', 'x', '--key', '', '--json']), 2, 'INVALID_MESSAGE');
    const line = await sb.run(['publish', 'q'], { input: '{"data":"ok","key":"fine"}\n{"data":"x","key":""}\n' });
    expectError(line, 2, 'INVALID_MESSAGE');
    expect(line.stderr).toContain('line 2');
    // The longest allowed key, with every printable character class.
    const longest = ('Az09 !~' + 'k'.repeat(256)).slice(0, 256);
    await ok(sb, ['publish', 'q', '--data', 'x', '--key', longest]);
    expect(await messageCount(sb, 'q')).toBe(1);

    // --key is for one message, and only once.
    expectError(await sb.run(['publish', 'q', '--key', 'k'], { input: '{"data":"x"}\n' }), 2, 'USAGE');
    expectError(await sb.run(['publish', 'q', '{"data":"x","key":"a"}', '--key', 'b']), 2, 'USAGE');
  });

  it('stores a key again once the window has passed (DISCUE_DEDUPE_WINDOW)', async () => {
    const WINDOW_MS = 4000;
    const env = { DISCUE_DEDUPE_WINDOW: '4s' };
    const start = await sb.run(['daemon', 'start'], { env });
    expect(start.code, start.stderr).toBe(0);
    await ok(sb, ['queue', 'create', 'q']);
    /** Publishes x under key w; returns the id and when the CLI was started (the message is stored after that). */
    const publish = async () => {
      const startedAt = Date.now();
      const id = (await ok(sb, ['publish', 'q', '--data', 'x', '--key', 'w'])).trim();
      return { id, startedAt, endedAt: Date.now() };
    };
    const first = (await publish()).id;
    // Repeats return the first id until the window is over; then one new message is stored.
    let latest = await waitFor(
      async () => {
        const p = await publish();
        return p.id !== first ? p : undefined;
      },
      20_000,
      'the key window to pass',
    );
    expect(latest.id > first).toBe(true);
    expect(await messageCount(sb, 'q')).toBe(2);
    // From then on the key means the new message: a repeat inside its window returns it. A repeat
    // is known to be inside only if it ended less than the window after the new one was started;
    // on a machine too busy for that, a later id is what the key means now, and it is tried again.
    for (let tries = 0; ; tries++) {
      const repeat = await publish();
      if (repeat.endedAt - latest.startedAt < WINDOW_MS) {
        expect(repeat.id).toBe(latest.id);
        break;
      }
      expect(repeat.id >= latest.id).toBe(true);
      if (repeat.id !== latest.id) latest = repeat;
      if (tries === 10) throw new Error('no repeat within the 4 s window in 10 tries: the machine is too busy for this test');
    }
  });

  it('refuses a bad DISCUE_DEDUPE_WINDOW or DISCUE_DEDUPE_MAX_KEYS at daemon start', async () => {
    expectError(await sb.run(['daemon', 'start', '--foreground'], { env: { DISCUE_DEDUPE_WINDOW: 'soon' } }), 2, 'INVALID_DURATION');
    expectError(await sb.run(['daemon', 'start', '--foreground'], { env: { DISCUE_DEDUPE_MAX_KEYS: '0' } }), 2, 'INVALID_ARGUMENT');
  });

  // On LevelDB only: NATS does not enforce DISCUE_DEDUPE_MAX_KEYS (README, "What differs from LevelDB":
  // keys last the stream's duplicate window, however many); its keys across a kill -9 are the last test's.
  it.skipIf(backend.kind === 'nats')('remembers keys across a restart, and keeps at most DISCUE_DEDUPE_MAX_KEYS per queue (oldest forgotten first)', async () => {
    const env = { DISCUE_DEDUPE_MAX_KEYS: '3' };
    const start = await sb.run(['daemon', 'start'], { env });
    expect(start.code, start.stderr).toBe(0);
    await ok(sb, ['queue', 'create', 'q']);
    const ids: string[] = [];
    for (const key of ['k1', 'k2', 'k3', 'k4']) ids.push((await ok(sb, ['publish', 'q', '--data', key, '--key', key])).trim());
    await killDaemon();
    const restart = await sb.run(['daemon', 'start'], { env });
    expect(restart.code, restart.stderr).toBe(0);
    // k2..k4 are remembered after kill -9; k1 was pushed out by k4 and stores again.
    for (const [i, key] of ['k2', 'k3', 'k4'].entries()) {
      expect((await ok(sb, ['publish', 'q', '--data', key, '--key', key])).trim()).toBe(ids[i + 1]);
    }
    const k1 = (await ok(sb, ['publish', 'q', '--data', 'k1', '--key', 'k1'])).trim();
    expect(k1).not.toBe(ids[0]);
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(['k1', 'k2', 'k3', 'k4', 'k1']);
  });

  it('forgets the keys of a deleted queue', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const first = (await ok(sb, ['publish', 'q', '--data', 'x', '--key', 'k'])).trim();
    await ok(sb, ['queue', 'delete', 'q', '--force']);
    await ok(sb, ['queue', 'create', 'q']);
    expect((await ok(sb, ['publish', 'q', '--data', 'x', '--key', 'k'])).trim()).not.toBe(first);
    expect(await messageCount(sb, 'q')).toBe(1);
  });

  it('stores each key exactly once when the daemon is killed -9 between writes and replies and everything unanswered is sent again', async () => {
    const ROUNDS = 3;
    const PER_ROUND = 300;
    const LANES = 48;
    let repeatsThatWereStored = 0;
    const firstIds = new Map<string, string>();
    {
      const client = await connect({ home: sb.home });
      await client.request('queue.create', { name: 'd' });
      await client.close();
    }
    for (let round = 0; round < ROUNDS; round++) {
      const keys = Array.from({ length: PER_ROUND }, (_, i) => `r${round}-k${i}`);
      const client = await connect({ home: sb.home });
      const answered = new Map<string, string>();
      let next = 0;
      let dead = false;
      // Killed from inside the lane that got the killAfter-th reply, synchronously:
      // the other lanes' publishes are then in flight. (Killing after polling for
      // the count let a quick daemon answer all of them first.)
      const killAfter = 20 + Math.floor(Math.random() * (PER_ROUND - 100));
      const pid = sb.daemonPid()!;
      const lane = async () => {
        while (!dead && next < keys.length) {
          const key = keys[next++]!;
          try {
            const result = await client.publish('d', { data: key, key });
            answered.set(key, result.ids[0]!);
            if (answered.size === killAfter) process.kill(pid, 'SIGKILL');
          } catch (err) {
            expect(isDiscueError(err), String(err)).toBe(true);
            dead = true;
          }
        }
      };
      const lanes = Promise.all(Array.from({ length: LANES }, lane));
      await lanes;
      await waitForExit(pid);
      await client.close().catch(() => undefined);
      expect(answered.size).toBeLessThan(PER_ROUND);

      // Restart (the next connect starts the daemon) and send again every key
      // without a reply, blindly; and a few answered ones, which must keep their id.
      const again = await connect({ home: sb.home });
      sb.onDispose(() => again.close());
      for (const key of keys) {
        const result = await again.publish('d', { data: key, key });
        const id = result.ids[0]!;
        if (answered.has(key)) {
          expect(id).toBe(answered.get(key));
          expect(result.duplicates).toEqual([0]);
        } else if (result.duplicates) repeatsThatWereStored++;
        firstIds.set(key, id);
      }
    }
    const stored = await listAll(sb, 'd');
    const counts = new Map<string, number>();
    for (const m of stored) counts.set(m.data, (counts.get(m.data) ?? 0) + 1);
    expect(stored).toHaveLength(ROUNDS * PER_ROUND);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    for (const m of stored) expect(m.id).toBe(firstIds.get(m.data));
    // How many unanswered publishes had in fact been stored (the case the keys exist for).
    console.log(`kill -9 rounds: ${repeatsThatWereStored} unanswered publishes had been stored and were recognised on retry`);
  });
});

/**
 * `discue export` and `discue import` between two LevelDB homes: queues with
 * their settings, messages with their ids, times and names, listeners with
 * their secrets, state and position. (A LevelDB home into a NATS cluster:
 * test/e2e/nats-hosts.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { expectError } from '../helpers/discue.js';
import { Sandbox, waitFor } from '../helpers/sandbox.js';
import { addListener, mustRun, runJson, startHookServer, closeAllServers } from '../helpers/delivery.js';

interface Listed {
  id: string;
  name?: string;
  data: string;
  publishedAt: string;
}

describe('export and import between two homes', () => {
  const boxes: Sandbox[] = [];
  afterEach(async () => {
    await closeAllServers();
    for (const sb of boxes.splice(0)) await sb.dispose();
  });

  it('moves queues, messages (same ids and times) and listeners (secret, paused, position); a second import is QUEUE_EXISTS', async () => {
    const [from, to] = [new Sandbox(), new Sandbox()];
    boxes.push(from, to);
    const hook = await startHookServer();
    await mustRun(from, ['queue', 'create', 'a', '--retention', '7d']);
    await mustRun(from, ['queue', 'create', 'b.two', '--max-messages', '5']);
    const listener = await addListener(from, ['--queue', 'a', '--url', `${hook.url}/a`, '--name', 'h', '--from', 'all']);
    await mustRun(from, ['publish', 'a'], { input: '{"data":"1","name":"x"}\n{"data":"2"}\n' });
    await waitFor(() => hook.delivered.length >= 2, 20_000, 'two deliveries');
    await mustRun(from, ['listener', 'pause', 'h']);
    await mustRun(from, ['publish', 'a', '--data', '3']);
    await mustRun(from, ['publish', 'b.two', '--data', 'other']);
    const file = await mustRun(from, ['export']);
    const source = { a: await runJson<Listed[]>(from, ['messages', 'list', 'a']), b: await runJson<Listed[]>(from, ['messages', 'list', 'b.two']) };
    await mustRun(from, ['daemon', 'stop']);

    expect((await mustRun(to, ['import'], { input: file })).trim()).toBe('✓ imported 2 queues, 4 messages, 1 listener');
    expect(await runJson<Listed[]>(to, ['messages', 'list', 'a'])).toEqual(source.a);
    expect(await runJson<Listed[]>(to, ['messages', 'list', 'b.two'])).toEqual(source.b);
    const queues = await runJson<{ name: string; retentionMs?: number; maxMessages?: number }[]>(to, ['queue', 'list']);
    expect(queues.map((q) => [q.name, q.retentionMs, q.maxMessages])).toEqual([
      ['a', 7 * 86_400_000, undefined],
      ['b.two', undefined, 5],
    ]);
    const moved = await runJson<{ secret?: string; state: string }>(to, ['listener', 'show', 'h', '--secret']);
    expect(moved.secret).toBe(listener.secret);
    expect(moved.state).toBe('paused');
    // Resumed, it goes on after its position: the third message only.
    const before = hook.delivered.length;
    await mustRun(to, ['listener', 'resume', 'h']);
    await waitFor(() => hook.delivered.length > before, 20_000, 'the delivery after the position');
    expect(hook.delivered.slice(before).map((r) => r.envelope.data)).toEqual(['3']);
    // A new message sorts after the imported ones.
    const next = (await mustRun(to, ['publish', 'a', '--data', '4'])).trim();
    expect(next > source.a[2]!.id).toBe(true);

    expectError(await to.run(['import'], { input: file }), 5, 'QUEUE_EXISTS');
  }, 60_000);

  it('publishes after an import whose last id is at the top of its millisecond sort after it', async () => {
    const sb = new Sandbox();
    boxes.push(sb);
    // An id far ahead (a future clock, or a hand-made file): the daemon keeps
    // its millisecond and counts on from the top of both counter parts.
    const top = '7ZZZZZZZZZ' + 'Z'.repeat(16);
    const file = [{ type: 'queue', name: 'q' }, { type: 'message', id: top, queue: 'q', data: 'imported', publishedAt: '2026-01-01T00:00:00.000Z' }]
      .map((line) => JSON.stringify(line))
      .join('\n');
    await mustRun(sb, ['import'], { input: `${file}\n` });
    await mustRun(sb, ['publish', 'q', '--data', 'after']);
    await mustRun(sb, ['publish', 'q', '--data', 'after again']);
    const listed = await runJson<Listed[]>(sb, ['messages', 'list', 'q']);
    expect(listed.map((m) => m.data)).toEqual(['imported', 'after', 'after again']);
    expect(listed[1]!.id > top && listed[2]!.id > listed[1]!.id, listed.map((m) => m.id).join(' ')).toBe(true);
  }, 60_000);
});

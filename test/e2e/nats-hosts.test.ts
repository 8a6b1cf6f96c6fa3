/**
 * Two hosts on one NATS JetStream cluster, end to end through the real
 * `discue` binary: two homes (two daemons) whose `store` is the same
 * three-node cluster on 127.0.0.1 (R3). A queue made on one host is there
 * on the other, both publish to it, an HTTP listener added on A is
 * delivered by B once A's daemon is killed -9 mid-delivery (after the
 * consumer's ack_wait), and a command listener runs only on its host.
 */
import { waitForExit } from '../helpers/discue.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsAvailable, natsServers } from '../helpers/nats.js';
import type { NatsServers } from '../helpers/nats.js';
import { Sandbox, waitFor } from '../helpers/sandbox.js';
import { addListener, lines, mustRun, runJson, startHookServer, writeScript } from '../helpers/delivery.js';
import type { HookServer } from '../helpers/delivery.js';
import type { DaemonStatus } from '../../src/protocol/wire.js';

const available = natsAvailable('the two-host NATS end-to-end test');

interface Listed {
  id: string;
  data: string;
}

describe.runIf(available)('two hosts on one NATS cluster, through the CLI', () => {
  let servers: NatsServers;
  let a: Sandbox;
  let b: Sandbox;
  const hooks: HookServer[] = [];

  beforeAll(async () => {
    servers = await natsServers(3);
    a = new Sandbox('discue-na-');
    b = new Sandbox('discue-nb-');
    // B has no replicas setting: its daemon is started with --replicas, or runs with the default (1), on streams A made with 3.
    Object.assign(a.env, { DISCUE_STORE: servers.urls, DISCUE_STORE_REPLICAS: '3' });
    Object.assign(b.env, { DISCUE_STORE: servers.urls });
  }, 60_000);
  afterAll(async () => {
    for (const hook of hooks) await hook.close().catch(() => undefined);
    await a?.dispose();
    await b?.dispose();
    await servers?.stop();
  });

  it('shows the cluster in daemon status; a queue made on A is listed on B; both publish, both list every message', async () => {
    await mustRun(a, ['queue', 'create', 'orders']);
    const status = await runJson<DaemonStatus & { running: boolean }>(a, ['daemon', 'status']);
    expect(status.store.kind).toBe('nats');
    expect(status.cluster?.servers).toHaveLength(3);
    expect(status.cluster?.replicas).toBe(3);
    expect(servers.nodes.map((n) => n.url.replace('nats://', ''))).toContain(status.cluster?.connected?.replace(/^nats:\/\//, ''));
    expect(status.hostId).toMatch(/.+/);
    const human = await mustRun(a, ['daemon', 'status']);
    expect(human).toMatch(/servers:\s+nats:\/\/127\.0\.0\.1/);
    expect(human).toMatch(/replicas:\s+3/);

    // B's daemon starts now (--replicas reaches the daemon started in the background) and reads the catalogue the cluster keeps.
    await mustRun(b, ['daemon', 'start', '--replicas', '2']);
    expect((await runJson<DaemonStatus>(b, ['daemon', 'status'])).cluster?.replicas).toBe(2);
    const onB = await runJson<{ name: string }[]>(b, ['queue', 'list']);
    expect(onB.map((q) => q.name)).toContain('orders');
    const bStatus = await runJson<DaemonStatus>(b, ['daemon', 'status']);
    expect(bStatus.hostId).not.toBe(status.hostId);

    const fromA = (await mustRun(a, ['publish', 'orders', '--data', 'from A'])).trim();
    const fromB = (await mustRun(b, ['publish', 'orders', '--data', 'from B'])).trim();
    for (const sb of [a, b]) {
      const listed = await runJson<Listed[]>(sb, ['messages', 'list', 'orders']);
      expect(listed.map((m) => [m.id, m.data])).toEqual([
        [fromA, 'from A'],
        [fromB, 'from B'],
      ]);
    }
  }, 60_000);

  it('an HTTP listener added on A is delivered by B when A is killed -9 mid-delivery', async () => {
    // B is stopped, so A's daemon is the one that takes the message.
    await mustRun(b, ['daemon', 'stop']);
    const hook = await startHookServer((_req, index) => (index === 0 ? 'hang' : { status: 200, body: 'ok' }));
    hooks.push(hook);
    await mustRun(a, ['queue', 'create', 'payments']);
    const listener = await addListener(a, ['--queue', 'payments', '--url', `${hook.url}/pay`, '--timeout', '1s', '--name', 'pay']);
    const [id] = (await mustRun(a, ['publish', 'payments', '--data', 'pay 1'])).trim().split('\n');
    await waitFor(() => hook.requests.length >= 1, 20_000, 'A to send the message');
    const pid = a.daemonPid()!;
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid, "A's daemon to exit");
    // B starts and shares the listener's consumer: once ack_wait (timeout + margin) passes, the message is B's.
    const seen = await runJson<{ id: string; name?: string }[]>(b, ['listener', 'list']);
    expect(seen.map((l) => l.id)).toContain(listener.id);
    await waitFor(() => hook.delivered.length >= 1, 40_000, 'B to deliver after ack_wait');
    expect(hook.delivered[0]!.envelope.id).toBe(id);
    expect(hook.delivered[0]!.envelope.data).toBe('pay 1');
  }, 90_000);

  it('a listener added on A runs on B; a command listener runs only on the host that added it', async () => {
    // Both daemons up (A's starts again after the kill).
    await mustRun(a, ['daemon', 'start']);
    await mustRun(b, ['daemon', 'start']);
    await mustRun(a, ['queue', 'create', 'mail']);
    const out = join(a.dir, 'ran.txt');
    const script = writeScript(a, 'note.sh', `echo "$DISCUE_HOME" >> ${JSON.stringify(out)}`);
    const pinned = await addListener(a, ['--queue', 'mail', '--exec', script, '--name', 'note']);
    const aStatus = await runJson<DaemonStatus>(a, ['daemon', 'status']);
    expect((pinned as unknown as { host?: string }).host).toBe(aStatus.hostId);
    // B sees it, pinned to A.
    await waitFor(async () => (await runJson<{ name?: string }[]>(b, ['listener', 'list'])).some((l) => l.name === 'note'), 10_000, 'B to see the listener');

    // An HTTP listener added on A is delivered with only B's daemon up.
    const hook = await startHookServer();
    hooks.push(hook);
    await addListener(a, ['--queue', 'mail', '--url', `${hook.url}/mail`, '--name', 'mailhook']);
    const published = (await mustRun(b, ['publish', 'mail'], { input: ['one', 'two', 'three'].map((d) => JSON.stringify({ data: d })).join('\n') + '\n' }))
      .trim()
      .split('\n');
    await waitFor(() => lines(out).length >= 3, 20_000, 'the command to run three times');
    await waitFor(() => hook.delivered.length >= 3, 20_000, 'the hook to get three messages');
    expect(hook.delivered.map((r) => r.envelope.id).slice(0, 3)).toEqual(published);
    expect(new Set(lines(out))).toEqual(new Set([a.home]));

    // Stop A: the pinned command waits for its host; the hook goes on from B.
    await mustRun(a, ['daemon', 'stop']);
    await mustRun(b, ['publish', 'mail', '--data', 'four']);
    await waitFor(() => hook.delivered.some((r) => r.envelope.data === 'four'), 20_000, 'B to deliver to the hook');
    expect(lines(out)).toHaveLength(3);
    // A back: its command catches up.
    await mustRun(a, ['daemon', 'start']);
    await waitFor(() => lines(out).length >= 4, 20_000, 'A to run the command for the fourth message');
    expect(new Set(lines(out))).toEqual(new Set([a.home]));
  }, 90_000);

  it('export from a LevelDB home, import into the cluster: same queue settings, messages and ids, listener with its secret and position', async () => {
    const home = new Sandbox('discue-nl-');
    try {
      const schema = join(home.dir, 'book.schema.json');
      writeFileSync(schema, '{"type":"object"}');
      await mustRun(home, ['queue', 'create', 'books', '--max-messages', '100', '--schema', schema]);
      const hook = await startHookServer();
      hooks.push(hook);
      const shelf = await addListener(home, ['--queue', 'books', '--url', `${hook.url}/books`, '--name', 'shelf', '--from', 'all']);
      const first = (await mustRun(home, ['publish', 'books'], { input: ['{"n":1}', '{"n":2}', '{"n":3}'].map((d) => JSON.stringify({ data: d, name: 'added' })).join('\n') + '\n' }))
        .trim()
        .split('\n');
      await waitFor(() => hook.delivered.length >= 3, 20_000, 'the LevelDB home to deliver three');
      await mustRun(home, ['listener', 'pause', 'shelf']);
      const later = (await mustRun(home, ['publish', 'books', '--data', '{"n":4}'])).trim();
      const exported = await mustRun(home, ['export']);
      const kinds = exported.trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
      expect(kinds).toEqual(['queue', 'message', 'message', 'message', 'message', 'listener']);
      await mustRun(home, ['daemon', 'stop']);

      const imported = await runJson<{ imported: { queues: number; messages: number; listeners: number } }>(a, ['import'], exported);
      expect(imported.imported).toEqual({ queues: 1, messages: 4, listeners: 1 });
      for (const sb of [a, b]) {
        const listed = await runJson<(Listed & { name?: string })[]>(sb, ['messages', 'list', 'books']);
        expect(listed.map((m) => m.id)).toEqual([...first, later]);
        expect(listed.map((m) => m.data)).toEqual(['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']);
        expect(listed.slice(0, 3).map((m) => m.name)).toEqual(['added', 'added', 'added']);
      }
      const queue = await runJson<{ maxMessages?: number; schema?: unknown }>(a, ['queue', 'show', 'books']);
      expect(queue.maxMessages).toBe(100);
      expect(queue.schema).toEqual({ type: 'object' });
      const moved = await runJson<{ secret?: string; state: string; id: string }>(a, ['listener', 'show', 'shelf', '--secret']);
      expect(moved.secret).toMatch(/^whsec_/);
      expect(moved.secret).toBe((shelf as unknown as { secret?: string }).secret);
      expect(moved.state).toBe('paused');
      expect(moved.id).not.toBe(shelf.id);
      // Resumed on the cluster it goes on after its position: only the fourth message.
      const before = hook.delivered.length;
      await mustRun(a, ['listener', 'resume', 'shelf']);
      await waitFor(() => hook.delivered.length > before, 20_000, 'the cluster to deliver the message after the position');
      expect(hook.delivered.slice(before).map((r) => r.envelope.id)).toEqual([later]);
    } finally {
      await home.dispose();
    }
  }, 90_000);
});

/**
 * Faults of a NATS JetStream cluster, end to end through the real `discue`
 * binary and real daemons: a three-node cluster on 127.0.0.1 (R3) and two
 * homes standing for two hosts. Both publish at once while the queue
 * stream's leader node and one daemon are killed -9 and restarted; then
 * the cluster without quorum and with every server down, against running
 * daemons that must answer BACKEND_UNAVAILABLE within 5 s and go on by
 * themselves when the servers are back. One cluster for the whole file.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Names } from '../../src/backend/nats/names.js';
import { natsAvailable, natsServers } from '../helpers/nats.js';
import type { NatsNode, NatsServers } from '../helpers/nats.js';
import { Sandbox, waitFor } from '../helpers/sandbox.js';
import type { RunResult } from '../helpers/sandbox.js';
import { addListener, lines, listDeliveries, mustRun, runJson, startHookServer, writeScript } from '../helpers/delivery.js';
import type { HookServer, ListenerJson } from '../helpers/delivery.js';

const available = natsAvailable('the NATS fault end-to-end test');

type Host = 'A' | 'B';

interface Failure {
  code: number | null;
  stderr: string;
  startedAt: number;
  endedAt: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.runIf(available)('a NATS cluster losing nodes under two hosts, through the CLI', () => {
  let servers: NatsServers;
  let a: Sandbox;
  let b: Sandbox;
  let hook: HookServer;
  let web: ListenerJson;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  /** Where the command listener (added on A) writes "<DISCUE_HOME> <message id>" per run. */
  let ran: string;
  const names = new Names('discue');

  beforeAll(async () => {
    servers = await natsServers(3);
    a = new Sandbox('discue-fa-');
    b = new Sandbox('discue-fb-');
    for (const sb of [a, b]) Object.assign(sb.env, { DISCUE_STORE: servers.urls, DISCUE_STORE_REPLICAS: '3' });
    hook = await startHookServer();
    nc = await connect({ servers: servers.urls.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    jsm = await jetstreamManager(nc);

    await mustRun(a, ['queue', 'create', 'orders']);
    await mustRun(b, ['daemon', 'start']);
    // An HTTP listener added on each host: both are delivered by whichever daemon is up.
    web = await addListener(a, ['--queue', 'orders', '--url', `${hook.url}/web`, '--name', 'web', '--timeout', '1s']);
    await addListener(b, ['--queue', 'orders', '--url', `${hook.url}/shop`, '--name', 'shop', '--timeout', '1s']);
    ran = join(a.dir, 'ran.txt');
    const script = writeScript(a, 'note.sh', `cat > /dev/null\nprintf '%s %s\\n' "$DISCUE_HOME" "$DISCUE_MESSAGE_ID" >> ${JSON.stringify(ran)}`);
    await addListener(a, ['--queue', 'orders', '--exec', script, '--name', 'note']);
    await waitFor(async () => (await runJson<{ name?: string }[]>(b, ['listener', 'list'])).length === 3, 20_000, 'B to see every listener');
  }, 90_000);

  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    await hook?.close();
    await a?.dispose();
    await b?.dispose();
    await servers?.stop();
  });

  /** The node that leads the stream of queue `orders` now. */
  async function streamLeader(): Promise<NatsNode> {
    let stream: string | undefined;
    for await (const name of jsm.streams.names()) if (name.startsWith(names.streamPrefix)) stream = name;
    const leader = (await jsm.streams.info(stream!)).cluster?.leader;
    const node = servers.nodes.find((n) => n.name === leader);
    if (node === undefined) throw new Error(`the stream ${stream} has no leader among ours (${leader})`);
    return node;
  }

  async function listed(sb: Sandbox): Promise<string[]> {
    return (await runJson<{ id: string }[]>(sb, ['messages', 'list', 'orders', '--limit', '10000'])).map((m) => m.id);
  }

  /** Message ids in the order an HTTP listener's receiver first got them. */
  function firstSeen(listener: 'web' | 'shop' = 'web'): string[] {
    return [...new Set(hook.delivered.filter((r) => r.path === `/hook/${listener}`).map((r) => r.envelope.id))];
  }

  function commandRuns(): { home: string; id: string }[] {
    return lines(ran).map((line) => {
      const [home, id] = line.split(' ');
      return { home: home!, id: id! };
    });
  }

  function expectUnavailable(result: RunResult, elapsedMs: number, what: string): void {
    expect(result.code, `${what}: ${result.stderr}`).toBe(3);
    expect(result.stderr).toContain('BACKEND_UNAVAILABLE');
    for (const node of servers.nodes) expect(result.stderr, `${what} names every server tried`).toContain(`127.0.0.1:${node.clientPort}`);
    expect(elapsedMs, `${what} answered within 5 s`).toBeLessThan(5_000);
  }

  async function timed(sb: Sandbox, args: string[], input?: string): Promise<{ result: RunResult; elapsedMs: number }> {
    const startedAt = Date.now();
    const result = await sb.run(args, input === undefined ? {} : { input });
    return { result, elapsedMs: Date.now() - startedAt };
  }

  it('kill -9 of the stream leader and of one daemon while both hosts publish: every acknowledged publish stored once, in order, delivered', async () => {
    const hosts: Record<Host, Sandbox> = { A: a, B: b };
    const acked: Record<Host, string[]> = { A: [], B: [] };
    const failed: Record<Host, Failure[]> = { A: [], B: [] };
    const longest: Record<Host, number> = { A: 0, B: 0 };
    let stop = false;
    const publishing = (['A', 'B'] as const).map(async (host) => {
      for (let i = 0; !stop; i++) {
        const startedAt = Date.now();
        const result = await hosts[host].run(['publish', 'orders', '--data', `${host}-${i}`]);
        longest[host] = Math.max(longest[host], Date.now() - startedAt);
        if (result.code === 0) acked[host].push(result.stdout.trim());
        else failed[host].push({ code: result.code, stderr: result.stderr, startedAt, endedAt: Date.now() });
      }
    });
    const count = (): Record<Host, number> => ({ A: acked.A.length, B: acked.B.length });
    let killedAt: Record<Host, number> = count();
    let bKilledAt = 0;
    const phases: string[] = [];
    const t0 = Date.now();
    const phase = (name: string): void => void phases.push(`${name} ${Date.now() - t0}`);
    try {
      await waitFor(() => acked.A.length >= 3 && acked.B.length >= 3, 60_000, 'both hosts to publish');
      const leader = await streamLeader();
      const bPid = b.daemonPid()!;
      killedAt = count();
      bKilledAt = Date.now();
      phase('kill');
      await Promise.all([servers.kill(leader), (async () => process.kill(bPid, 'SIGKILL'))()]);
      await waitFor(() => !alive(bPid), 10_000, "B's daemon to exit");
      // Restarted: B's daemon (unless B's next publish already started it) and the node, same port and store.
      // Restarted: the node by hand (same port and store), B's daemon by B's own next publish (the CLI starts it).
      await Promise.all([
        servers.restart(leader),
        waitFor(async () => (await b.run(['daemon', 'status'])).code === 0 && b.daemonPid() !== bPid, 90_000, "B's daemon to be started again"),
      ]);
      phase('restarted');
      await waitFor(() => acked.A.length >= killedAt.A + 3 && acked.B.length >= killedAt.B + 3, 90_000, 'both hosts to publish after the restarts');
    } finally {
      stop = true;
      await Promise.all(publishing);
    }

    // A's daemon lived through it: the election was ridden out, no publish of A failed.
    expect(failed.A, 'no publish of A failed').toEqual([]);
    // B's failures: the publish its daemon died under (the CLI does not
    // resend a publish whose answer was lost), and, while the election
    // lasts past the CLI's 20 s for a daemon to start, DAEMON_START_FAILED.
    const diedUnder = failed.B.filter((f) => f.startedAt <= bKilledAt);
    expect(diedUnder.length).toBeLessThanOrEqual(1);
    for (const f of failed.B.filter((f) => f.startedAt > bKilledAt)) expect(f.stderr, `B's publish after the kill failed`).toContain('DAEMON_START_FAILED');

    phase('published');
    const onA = await listed(a);
    expect(await listed(b), 'both hosts list the same messages in the same order').toEqual(onA);
    expect(new Set(onA).size, 'no message stored twice').toBe(onA.length);
    for (const host of ['A', 'B'] as const) {
      expect(onA.filter((id) => acked[host].includes(id)), `every publish of ${host} that exited 0 is stored once, in its order`).toEqual(acked[host]);
    }
    // Only a publish that did not exit 0 may be stored without its id having been printed.
    expect(onA.length).toBeLessThanOrEqual(acked.A.length + acked.B.length + failed.B.length);

    for (const listener of ['web', 'shop'] as const) {
      await waitFor(() => firstSeen(listener).length >= onA.length, 60_000, `HTTP listener ${listener} to get every message`);
      expect(firstSeen(listener), `HTTP listener ${listener} got every message, in order, at least once`).toEqual(onA);
      phase(listener);
    }
    await waitFor(() => new Set(commandRuns().map((r) => r.id)).size >= onA.length, 60_000, 'the command listener to run for every message');
    expect(new Set(commandRuns().map((r) => r.home)), 'the command listener ran only on its host').toEqual(new Set([a.home]));
    expect(new Set(commandRuns().map((r) => r.id))).toEqual(new Set(onA));
    phase('command');

    // Every message's delivery, with its attempts, seen from either host.
    for (const sb of [a, b]) {
      const deliveries = await listDeliveries(sb, ['--listener', 'web', '--state', 'delivered', '--limit', '10000']);
      expect(deliveries.every((d) => d.listenerId === web.id && d.attempts.length >= 1 && d.attempts.at(-1)?.ok === true)).toBe(true);
      expect(new Set(deliveries.map((d) => d.messageId))).toEqual(new Set(onA));
    }
    console.log(`leader kill: ${onA.length} stored, ${acked.A.length}+${acked.B.length} acknowledged, longest publish A ${longest.A} ms, B failed ${failed.B.length} (${failed.B.map((f) => /\[([A-Z_]+)\]\s*$/.exec(f.stderr)?.[1] ?? f.code).join(', ')}), ${hook.delivered.length - 2 * onA.length} redeliveries; ms: ${phases.join(', ')}`);
  }, 240_000);

  /** Servers back: publishing from `sb` works again (polled: the daemon reconnects by itself), and both listeners get the message. */
  async function resumes(sb: Sandbox, data: string): Promise<void> {
    const id = await waitFor(
      async () => {
        const result = await sb.run(['publish', 'orders', '--data', data]);
        return result.code === 0 ? result.stdout.trim() : undefined;
      },
      60_000,
      `publishing from ${sb === a ? 'A' : 'B'} to resume`,
    );
    await waitFor(() => firstSeen().includes(id), 60_000, 'the HTTP listener to get the message published after the outage');
    await waitFor(() => commandRuns().some((r) => r.id === id), 60_000, 'the command listener to run for it');
  }

  it('two of three nodes down (no quorum): publish and queue list fail with BACKEND_UNAVAILABLE within 5 s; the daemons go on once the nodes are back', async () => {
    const pids = [a.daemonPid()!, b.daemonPid()!];
    const before = await listed(a);
    const down = servers.nodes.slice(1);
    await Promise.all(down.map((node) => servers.kill(node)));

    const [publish, list] = await Promise.all([timed(a, ['publish', 'orders', '--data', 'no quorum']), timed(b, ['queue', 'list'])]);
    expectUnavailable(publish.result, publish.elapsedMs, 'publish without quorum');
    expect(publish.result.stderr).toMatch(/no quorum/);
    expectUnavailable(list.result, list.elapsedMs, 'queue list without quorum');
    expect(pids.every(alive), 'the daemons keep running').toBe(true);
    const status = await runJson<{ warnings?: string[] }>(a, ['daemon', 'status']);
    expect(status.warnings?.join('\n')).toMatch(/no quorum/);

    await Promise.all(down.map((node) => servers.restart(node)));
    await resumes(a, 'after no quorum');
    expect([a.daemonPid(), b.daemonPid()]).toEqual(pids);
    expect((await runJson<{ warnings?: string[] }>(a, ['daemon', 'status'])).warnings).toBeUndefined();
    const after = await listed(b);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after).toHaveLength(before.length + 1);
  }, 180_000);

  it('every server down: publish (one message or a batch) and queue list fail with BACKEND_UNAVAILABLE within 5 s, nothing stored; the daemons resume when the servers are back', async () => {
    const pids = [a.daemonPid()!, b.daemonPid()!];
    const before = await listed(a);
    await Promise.all(servers.nodes.map((node) => servers.kill(node)));

    const input = ['lost 1', 'lost 2', 'lost 3'].map((data) => JSON.stringify({ data })).join('\n') + '\n';
    const [one, batch, list] = await Promise.all([
      timed(a, ['publish', 'orders', '--data', 'lost']),
      timed(b, ['publish', 'orders'], input),
      timed(a, ['queue', 'list']),
    ]);
    expectUnavailable(one.result, one.elapsedMs, 'publish with every server down');
    expectUnavailable(batch.result, batch.elapsedMs, 'a batch publish with every server down');
    expect(batch.result.stdout, 'no id printed: nothing stored').toBe('');
    expectUnavailable(list.result, list.elapsedMs, 'queue list with every server down');
    expect(pids.every(alive), 'the daemons keep running').toBe(true);

    // Back on the same ports with the same store directories.
    await Promise.all(servers.nodes.map((node) => servers.restart(node)));
    await resumes(b, 'after the outage');
    expect([a.daemonPid(), b.daemonPid()]).toEqual(pids);
    const after = await listed(a);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after, 'nothing of the failed publishes was stored').toHaveLength(before.length + 1);
    expect(await listed(b)).toEqual(after);
  }, 180_000);
});

/**
 * Scale-out on NATS JetStream (issue 11): a single node and a three-node
 * cluster (R3), started here on 127.0.0.1 with free ports and temp dirs
 * (test/helpers/nats.ts), in one run:
 *
 * - durable publish at 1 and 256 in flight through discue (the library, over
 *   the socket, to a daemon whose store is the cluster) vs a raw
 *   `@nats-io/jetstream` client publishing the same messages (same payload,
 *   a Nats-Msg-Id on each) to a stream with the same settings, connected to
 *   the same server as the daemon; target >= 0.9x at both;
 * - HTTP delivery of a backlog to 1 and 10 listeners, against the LevelDB backend;
 * - on the cluster, the stream leader killed -9 mid-run and restarted: the
 *   longest gap between publish acknowledgements and between deliveries.
 *
 * Every case runs under a bound; one that fails or overruns is reported as
 * FAILED in its table and the section goes on. Without nats-server the
 * section prints a note and measures nothing.
 */
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { jetstream, jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { JetStreamClient } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '../../src/index.js';
import type { DiscueClient } from '../../src/index.js';
import { DEFAULT_DEDUPE } from '../../src/backend/index.js';
import { ELECTION_RIDE_MS } from '../../src/backend/nats/connection.js';
import { IdGenerator } from '../../src/protocol/ids.js';
import { natsServerPath, natsServers } from '../helpers/nats.js';
import type { NatsNode, NatsServers } from '../helpers/nats.js';
import { BenchDaemon, startFloorServer } from './daemon.js';
import { Sink, discueHttp } from './delivery.js';
import type { Publisher } from './load.js';
import { runLoad } from './load.js';
import type { Aggregate, Measured, Section, SectionContext, SectionResult, Table, Target } from './lib.js';
import { bounded, check, failedTarget, fmtMs, fmtPct, fmtRate, fmtRatio, guarded, inRounds, log, scaled, sleep } from './lib.js';

const ROUNDS = scaled(3, 1);
const WARMUP_MS = scaled(500, 300);
const DURATION_MS = scaled(2000, 700);
const HTTP_MESSAGES = scaled(1_000, 300);
const HTTP_ROUNDS = scaled(2, 1);
/** A delivery case (backlog published, then drained) may take this long. */
const HTTP_BOUND_MS = scaled(180_000, 60_000);
/**
 * Publishes in flight while the leader is killed, paced to STALL_RATE in
 * all so that one HTTP listener keeps up: a backlog would hide the
 * delivery stall (the listener would still be draining through it).
 */
const STALL_IN_FLIGHT = 4;
const STALL_RATE = 100;
const STALL_BEFORE_MS = scaled(3_000, 2_000);
/** After publishing resumes, how long until the killed node is started again, and how long publishing goes on after that. */
const STALL_RESTART_AFTER_MS = 2_000;
const STALL_AFTER_MS = scaled(3_000, 2_000);
/** The whole leader-kill case, deliveries drained included. */
const STALL_BOUND_MS = 120_000;
/** What the delivery stall is held to: SCALEOUT.md measured 3.5-11 s for a consumer to notice and a new leader. */
const DELIVERY_STALL_MS = 20_000;
const TARGET_RATIO = 0.9;
const SHAPES = [
  { inFlight: 1, connections: 1, depth: 1 },
  { inFlight: 256, connections: 1, depth: 256 },
];

interface Topology {
  key: 'r1' | 'r3';
  label: string;
  servers: NatsServers;
  daemon: BenchDaemon;
  /** The server the daemon is connected to (the raw client connects there too). */
  connected: string;
}

// ---- the raw client ---------------------------------------------------------------

/** A stream like a discue queue's (backend/nats/store.ts streamConfig) for the raw client. */
async function rawStream(url: string, name: string, replicas: number): Promise<string> {
  const nc = await natsConnect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const subject = `bench.raw.${name}`;
    await jsm.streams.add({
      name,
      subjects: [subject],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
      max_age: 0,
      max_msgs: -1,
      duplicate_window: DEFAULT_DEDUPE.windowMs * 1_000_000,
      allow_direct: true,
    });
    return subject;
  } finally {
    await nc.close();
  }
}

/** One NATS connection publishing with a fresh Nats-Msg-Id each time, as the daemon does. */
function rawPublisher(url: string, subject: string): () => Promise<Publisher> {
  return async () => {
    const nc: NatsConnection = await natsConnect({ servers: url });
    const js: JetStreamClient = jetstream(nc);
    const ids = new IdGenerator();
    return {
      publish: async (_queue, messages) => {
        for (const m of messages) await js.publish(subject, m.data, { msgID: ids.next() });
      },
      close: () => nc.close(),
    };
  };
}

// ---- the floor: a minimal relay ----------------------------------------------------------

/** test/bench/nats-relay.mjs in its own process, publishing to `subject` through `url`. Its socket path. */
async function startRelay(ctx: SectionContext, key: string, url: string, subject: string): Promise<string> {
  const socket = join(ctx.root, `relay-${key}.sock`);
  await startFloorServer(ctx.cleanup, 'nats-relay.mjs', [socket, url, subject]);
  return socket;
}

/** One connection to the relay: a line out per message, its line back. */
function relayPublisher(socket: string): () => Promise<Publisher> {
  return async () => {
    const conn = createConnection(socket);
    await new Promise<void>((resolve, reject) => conn.once('connect', resolve).once('error', reject));
    conn.setEncoding('utf8');
    const waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
    let next = 0;
    let buffer = '';
    conn.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        const reply = JSON.parse(buffer.slice(0, nl)) as { id: number; error?: string };
        buffer = buffer.slice(nl + 1);
        const w = waiting.get(reply.id);
        waiting.delete(reply.id);
        if (reply.error === undefined) w?.resolve();
        else w?.reject(new Error(reply.error));
      }
    });
    const one = (data: string) =>
      new Promise<void>((resolve, reject) => {
        const id = ++next;
        waiting.set(id, { resolve, reject });
        conn.write(JSON.stringify({ id, data }) + '\n');
      });
    return {
      publish: async (_queue, messages) => {
        for (const m of messages) await one(m.data);
      },
      close: () => void conn.destroy(),
    };
  };
}

function libraryPublisher(home: string): () => Promise<Publisher> {
  return async () => {
    const client: DiscueClient = await connect({ home, autoStart: false });
    return { publish: (queue, messages) => client.publish(queue, messages), close: () => client.close() };
  };
}

// ---- set-up ------------------------------------------------------------------------

async function startTopology(ctx: SectionContext, key: Topology['key']): Promise<Topology> {
  const size = key === 'r1' ? 1 : 3;
  log(`nats: starting ${size === 1 ? 'a single node' : 'a three-node cluster'}`);
  const servers = await natsServers(size, 60_000);
  ctx.cleanup.add(
    () => servers.stop(),
    () => {
      for (const node of servers.nodes) node.process?.kill('SIGKILL');
    },
  );
  const daemon = new BenchDaemon(join(ctx.root, `nats-${key}`), ctx.cleanup, { DISCUE_STORE: servers.urls, DISCUE_STORE_REPLICAS: String(size) });
  await daemon.start();
  const status = await withClient(daemon.home, (c) => c.request('daemon.status', {}));
  const connected = status.cluster?.connected;
  if (connected === undefined) throw new Error(`nats ${key}: the daemon reports no connected server`);
  return { key, label: size === 1 ? 'single node (R1)' : 'three nodes (R3)', servers, daemon, connected: connected.includes('://') ? connected : `nats://${connected}` };
}

async function withClient<T>(home: string, fn: (client: DiscueClient) => Promise<T>): Promise<T> {
  const client = await connect({ home, autoStart: false });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

// ---- 1: publish ---------------------------------------------------------------------

async function publishRates(ctx: SectionContext, topologies: Topology[]): Promise<Record<string, Aggregate>> {
  const cases: { key: string; label: string; run: () => Promise<Measured> }[] = [];
  for (const t of topologies) {
    await withClient(t.daemon.home, (c) => c.request('queue.create', { name: 'pub' }));
    const subject = await rawStream(t.connected, `BENCHRAW_${t.key.toUpperCase()}`, t.key === 'r1' ? 1 : 3);
    const relay = await startRelay(ctx, t.key, t.connected, subject);
    for (const s of SHAPES) {
      const common = { queue: 'pub', connections: s.connections, depth: s.depth, warmupMs: WARMUP_MS, durationMs: DURATION_MS, payloads: ctx.payloads };
      cases.push({
        key: `${t.key}.discue${s.inFlight}`,
        label: `nats ${t.key}: discue publish, ${s.inFlight} in flight`,
        run: () => runLoad({ ...common, open: libraryPublisher(t.daemon.home), daemonCpuSeconds: () => t.daemon.cpuSeconds() }),
      });
      cases.push({
        key: `${t.key}.raw${s.inFlight}`,
        label: `nats ${t.key}: raw @nats-io/jetstream publish, ${s.inFlight} in flight`,
        run: () => runLoad({ ...common, open: rawPublisher(t.connected, subject) }),
      });
      // The floor of any daemon design: only where the hop is not hidden by the pipeline.
      if (s.inFlight === 1) {
        cases.push({
          key: `${t.key}.relay${s.inFlight}`,
          label: `nats ${t.key}: minimal relay (socket hop + raw publish), ${s.inFlight} in flight`,
          run: () => runLoad({ ...common, open: relayPublisher(relay) }),
        });
      }
    }
  }
  return inRounds(ROUNDS, cases);
}

// ---- 2: HTTP delivery ------------------------------------------------------------------

async function deliveryRates(ctx: SectionContext, topologies: Topology[]): Promise<Record<string, Aggregate>> {
  const level = new BenchDaemon(join(ctx.root, 'nats-level'), ctx.cleanup);
  log('nats: starting a LevelDB daemon for the delivery comparison');
  await level.start();
  const homes = [{ key: 'level', home: level.home }, ...topologies.map((t) => ({ key: t.key, home: t.daemon.home }))];
  const cases: { key: string; label: string; run: () => Promise<Measured> }[] = [];
  for (const { key, home } of homes) {
    for (const listeners of [1, 10]) {
      cases.push({
        key: `${key}.http${listeners}`,
        label: `nats: HTTP delivery, ${key}, ${listeners} listener(s), ${HTTP_MESSAGES} messages`,
        run: async () => {
          // A sink per case: a case that overran leaves nothing waiting on the next one's.
          const sink = await Sink.start(ctx);
          const client = await connect({ home, autoStart: false });
          try {
            const r = await discueHttp(client, sink, ctx.payloads, HTTP_MESSAGES, listeners);
            return { rate: r.rate, messages: r.deliveries, seconds: r.seconds, latencies: new Float64Array() };
          } finally {
            await client.close();
            sink.stop();
          }
        },
      });
    }
  }
  try {
    return await inRounds(HTTP_ROUNDS, cases, HTTP_BOUND_MS);
  } finally {
    await level.stop();
  }
}

// ---- 3: the leader killed ------------------------------------------------------------------

interface Stall {
  killed: string;
  acked: number;
  failedPublishes: number;
  firstError?: string;
  /** Longest gap between two publish acknowledgements, and when it started relative to the kill. */
  publishStallMs: number;
  publishStallFromKillMs: number;
  deliveryStallMs: number;
  deliveryStallFromKillMs: number;
  delivered: number;
  missing: number;
  restartedAfterMs: number;
}

/** Longest gap in ascending times, and where it starts. */
function longestGap(times: number[]): { gap: number; at: number } {
  let gap = 0;
  let at = NaN;
  for (let i = 1; i < times.length; i++) {
    const d = times[i]! - times[i - 1]!;
    if (d > gap) {
      gap = d;
      at = times[i - 1]!;
    }
  }
  return { gap, at };
}

async function streamLeader(url: string, before: Set<string>): Promise<{ stream: string; leader: string }> {
  const nc = await natsConnect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (before.has(name) || !name.startsWith('DISCUE_Q_')) continue;
      const info = await jsm.streams.info(name);
      const leader = info.cluster?.leader;
      if (leader) return { stream: name, leader };
    }
    throw new Error('the stall queue has no stream with a leader');
  } finally {
    await nc.close();
  }
}

async function streamNames(url: string): Promise<Set<string>> {
  const nc = await natsConnect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const names = new Set<string>();
    for await (const name of jsm.streams.names()) names.add(name);
    return names;
  } finally {
    await nc.close();
  }
}

async function leaderKill(ctx: SectionContext, t: Topology): Promise<Stall> {
  const wall = () => performance.timeOrigin + performance.now();
  const before = await streamNames(t.connected);
  const sink = await Sink.start(ctx);
  const client = await connect({ home: t.daemon.home, autoStart: false });
  let stop = false;
  try {
    await client.request('queue.create', { name: 'stall' });
    const { leader } = await streamLeader(t.connected, before);
    const node = t.servers.nodes.find((n: NatsNode) => n.name === leader);
    if (node === undefined) throw new Error(`stream leader ${leader} is none of the nodes started`);
    const listener = await client.request('listener.add', { kind: 'http', queues: ['stall'], url: sink.url, from: 'new' });
    sink.record(true);
    const ackTimes: number[] = [];
    const ackedIds: string[] = [];
    let failed = 0;
    let firstError: string | undefined;
    let next = 0;
    const slot = async () => {
      for (let due = performance.now(); !stop; due += (STALL_IN_FLIGHT * 1000) / STALL_RATE) {
        if (due > performance.now()) await sleep(due - performance.now());
        try {
          const r = await client.publish('stall', { data: ctx.payloads[next++ % ctx.payloads.length]! });
          ackTimes.push(wall());
          ackedIds.push(r.ids[0]!);
        } catch (err) {
          failed++;
          firstError ??= (err as Error).message;
          await sleep(50);
        }
      }
    };
    const slots = Array.from({ length: STALL_IN_FLIGHT }, slot);
    await sleep(STALL_BEFORE_MS);
    log(`nats r3: kill -9 the stream leader ${leader} (${ackTimes.length} acked so far)`);
    const ackedAtKill = ackTimes.length;
    const killedAt = wall();
    await t.servers.kill(node);
    // Publishing resumes (an ack after the kill), or the bound below ends it.
    const resumeDeadline = Date.now() + ELECTION_RIDE_MS * 3;
    while (ackTimes.length === ackedAtKill && Date.now() < resumeDeadline) await sleep(20);
    await sleep(STALL_RESTART_AFTER_MS);
    log(`nats r3: restarting ${leader}`);
    await t.servers.restart(node);
    const restartedAfterMs = wall() - killedAt;
    await sleep(STALL_AFTER_MS);
    stop = true;
    await Promise.all(slots);
    // Every acknowledged message reaches the listener (bounded by the case's bound).
    const want = new Set(ackedIds);
    const received = new Map<string, number>();
    const deadline = Date.now() + 60_000;
    for (;;) {
      for (const [id, at] of await sink.times()) if (!received.has(id)) received.set(id, at);
      if ([...want].every((id) => received.has(id)) || Date.now() > deadline) break;
      await sleep(250);
    }
    sink.record(false);
    await client.request('listener.remove', { ref: listener.id }).catch(() => undefined);
    const pub = longestGap(ackTimes);
    const arrivals = [...received.values()].sort((a, b) => a - b);
    const del = longestGap(arrivals);
    let missing = 0;
    for (const id of want) if (!received.has(id)) missing++;
    const out: Stall = {
      killed: leader,
      acked: ackTimes.length,
      failedPublishes: failed,
      publishStallMs: pub.gap,
      publishStallFromKillMs: pub.at - killedAt,
      deliveryStallMs: del.gap,
      deliveryStallFromKillMs: del.at - killedAt,
      delivered: received.size,
      missing,
      restartedAfterMs,
    };
    if (firstError !== undefined) out.firstError = firstError;
    return out;
  } finally {
    stop = true;
    await client.close();
    sink.stop();
  }
}

// ---- the section -----------------------------------------------------------------------------

function rateCell(a: Aggregate | undefined): string {
  return a === undefined ? '-' : a.failed ? 'FAILED' : fmtRate(a.rate);
}

function cpuCell(v: number | undefined): string {
  return v === undefined ? '-' : fmtPct(v);
}

export const natsSection: Section = {
  name: 'nats',
  async run(ctx: SectionContext): Promise<SectionResult> {
    if (natsServerPath() === undefined) {
      ctx.report({ title: 'NATS JetStream', columns: ['what', 'result'], rows: [['nats section', 'skipped']], notes: ['nats-server is not installed (apt-get install nats-server): nothing measured.'] });
      return { targets: [], data: { skipped: 'nats-server is not installed' } };
    }
    const topologies: Topology[] = [];
    for (const key of ['r1', 'r3'] as const) topologies.push(await startTopology(ctx, key));
    const targets: Target[] = [];

    const pub = await publishRates(ctx, topologies);
    const pubRows: string[][] = [];
    for (const t of topologies) {
      for (const s of SHAPES) {
        const d = pub[`${t.key}.discue${s.inFlight}`]!;
        const r = pub[`${t.key}.raw${s.inFlight}`]!;
        const relay = pub[`${t.key}.relay${s.inFlight}`];
        const ratio = d.rate / r.rate;
        const clients: (readonly [string, Aggregate])[] = [
          ['discue (library -> daemon)', d],
          ['raw @nats-io/jetstream', r],
        ];
        if (relay) clients.push(['minimal relay (hop + raw)', relay]);
        for (const [who, a] of clients) {
          pubRows.push([
            t.label,
            String(s.inFlight),
            who,
            rateCell(a),
            fmtMs(a.latencyMs.p50),
            fmtMs(a.latencyMs.p99),
            cpuCell(a.cpu?.daemon),
            cpuCell(a.cpu?.client),
            a.rounds.map(fmtRate).join(' '),
            a === d ? fmtRatio(ratio) : a === relay ? fmtRatio(a.rate / r.rate) : '',
          ]);
        }
        const name = `NATS ${t.key.toUpperCase()}: discue publish ${s.inFlight} in flight >= ${TARGET_RATIO}x raw @nats-io/jetstream`;
        targets.push(guarded(name, [d, r], () => check(name, `${fmtRate(d.rate)}/s vs ${fmtRate(r.rate)}/s = ${fmtRatio(ratio)}`, ratio, TARGET_RATIO)));
        if (relay) {
          // Not the issue's target: how much of the gap to raw is the hop any daemon pays, and how much is discue.
          const floor = `(floor) NATS ${t.key.toUpperCase()}: discue publish ${s.inFlight} in flight >= ${TARGET_RATIO}x the minimal relay`;
          targets.push(guarded(floor, [d, relay], () => check(floor, `${fmtRate(d.rate)}/s vs ${fmtRate(relay.rate)}/s = ${fmtRatio(d.rate / relay.rate)}`, d.rate / relay.rate, TARGET_RATIO)));
        }
      }
    }
    ctx.report({
      title: 'NATS JetStream: durable publish through discue vs a raw @nats-io/jetstream client (200-byte messages, 1 per publish)',
      columns: ['cluster', 'in flight', 'client', 'msgs/s', 'p50 ms', 'p99 ms', 'daemon cpu', 'client cpu', 'msgs/s per round', 'discue/raw'],
      rows: pubRows,
      notes: [
        `msgs/s = median of ${ROUNDS} interleaved rounds of ${DURATION_MS / 1000} s (after ${WARMUP_MS / 1000} s warm-up); closed loop on one connection (1x1, 1x256).`,
        'discue: connect() over the Unix socket to a daemon whose store is the cluster; acknowledged = stored on a majority (no fsync in 2.9).',
        'raw: jetstream(nc).publish(subject, data, { msgID }) to a stream with the same settings (file, limits, same replicas and duplicate window),',
        "connected to the server the daemon is connected to, with the client's default options; it runs in the benchmark process, as does discue's load generator.",
        "discue's daemon sends the same PUB + Nats-Msg-Id, but takes acks on one inbox (backend/nats/publisher.ts): js.publish builds three Errors per message.",
        'At 1 in flight discue adds a process hop (library -> socket -> daemon) to the raw path: on a loaded machine each hop waits for the scheduler.',
        'minimal relay = test/bench/nats-relay.mjs: NDJSON over a Unix socket to a process that does the raw js.publish, no checks: the floor of any design with a daemon',
        "between the publisher and the cluster (as core's minimal server is for LevelDB). Its discue/raw column is relay/raw; discue/relay is what discue itself costs.",
      ],
    });

    const http = await deliveryRates(ctx, topologies);
    const httpRows: string[][] = [];
    for (const listeners of [1, 10]) {
      const base = http[`level.http${listeners}`]!;
      for (const key of ['level', ...topologies.map((t) => t.key)]) {
        const a = http[`${key}.http${listeners}`]!;
        const label = key === 'level' ? 'LevelDB' : `NATS ${topologies.find((t) => t.key === key)!.label}`;
        httpRows.push([label, String(listeners), String(HTTP_MESSAGES * listeners), rateCell(a), a.rounds.map(fmtRate).join(' '), key === 'level' ? '' : fmtPct(a.rate / base.rate)]);
        if (key !== 'level') {
          const name = `(context) NATS ${key.toUpperCase()} HTTP delivery, ${listeners} listener(s) vs LevelDB`;
          targets.push(
            guarded(name, [a, base], () => ({ target: name, measured: `${fmtRate(a.rate)}/s = ${fmtPct(a.rate / base.rate)} of ${fmtRate(base.rate)}/s`, met: undefined, value: a.rate / base.rate })),
          );
        }
      }
    }
    ctx.report({
      title: `NATS JetStream: HTTP delivery of a ${HTTP_MESSAGES.toLocaleString('en-US')}-message backlog vs the LevelDB backend`,
      columns: ['backend', 'listeners', 'deliveries', 'deliveries/s', 'per round', 'vs LevelDB'],
      rows: httpRows,
      notes: [
        `Median of ${HTTP_ROUNDS} interleaved round(s); each case a fresh queue and sink; timed from \`listener add\` (from all) until the sink has every delivery; bound ${HTTP_BOUND_MS / 1000} s.`,
      ],
    });

    const r3 = topologies.find((t) => t.key === 'r3')!;
    let stall: Stall | undefined;
    let stallError: string | undefined;
    try {
      stall = await bounded('nats r3 leader kill', STALL_BOUND_MS, leaderKill(ctx, r3));
    } catch (err) {
      stallError = (err as Error).message;
      log(`FAILED: nats r3 leader kill: ${stallError}`);
    }
    const stallTable: Table = {
      title: `NATS JetStream R3: the stream leader killed -9 mid-run (${STALL_RATE} publishes/s, ${STALL_IN_FLIGHT} in flight at most, 1 HTTP listener)`,
      columns: ['measure', 'value'],
      rows:
        stall === undefined
          ? [['leader kill', `FAILED: ${stallError}`]]
          : [
              ['node killed (stream leader)', stall.killed],
              ['publish stall (longest gap between acks)', `${fmtMs(stall.publishStallMs, 0)} ms, from ${fmtMs(stall.publishStallFromKillMs, 0)} ms after the kill`],
              ['delivery stall (longest gap between deliveries)', `${fmtMs(stall.deliveryStallMs, 0)} ms, from ${fmtMs(stall.deliveryStallFromKillMs, 0)} ms after the kill`],
              ['publishes acknowledged / failed', `${stall.acked} / ${stall.failedPublishes}${stall.firstError ? ` (${stall.firstError})` : ''}`],
              ['acknowledged messages delivered / missing', `${stall.acked - stall.missing} / ${stall.missing}`],
              ['killed node restarted after', `${fmtMs(stall.restartedAfterMs, 0)} ms`],
            ],
      notes: [
        `Publishing ${STALL_BEFORE_MS / 1000} s, then kill -9 of the stream's leader node; it is started again ${STALL_RESTART_AFTER_MS / 1000} s after publishing resumes, publishing goes on ${STALL_AFTER_MS / 1000} s more.`,
        `Gaps from acknowledgement times in the benchmark process and first arrivals at the sink; bound ${STALL_BOUND_MS / 1000} s for the whole case.`,
      ],
    };
    ctx.report(stallTable);
    const pubStallName = `NATS R3 leader killed: publish stall < ${ELECTION_RIDE_MS / 1000} s (the election ride), no publish failed`;
    const delStallName = `NATS R3 leader killed: delivery stall < ${DELIVERY_STALL_MS / 1000} s, every acknowledged message delivered`;
    if (stall === undefined) {
      targets.push(failedTarget(pubStallName, stallError ?? 'failed'), failedTarget(delStallName, stallError ?? 'failed'));
    } else {
      targets.push({
        target: pubStallName,
        measured: `${fmtMs(stall.publishStallMs, 0)} ms, ${stall.failedPublishes} failed`,
        met: stall.publishStallMs < ELECTION_RIDE_MS && stall.failedPublishes === 0,
        value: stall.publishStallMs,
        limit: ELECTION_RIDE_MS,
      });
      targets.push({
        target: delStallName,
        measured: `${fmtMs(stall.deliveryStallMs, 0)} ms, ${stall.missing} of ${stall.acked} missing`,
        met: stall.deliveryStallMs < DELIVERY_STALL_MS && stall.missing === 0,
        value: stall.deliveryStallMs,
        limit: DELIVERY_STALL_MS,
      });
    }
    for (const t of topologies) await t.daemon.stop();
    return {
      targets,
      data: {
        settings: { rounds: ROUNDS, warmupMs: WARMUP_MS, durationMs: DURATION_MS, httpMessages: HTTP_MESSAGES, httpRounds: HTTP_ROUNDS, stallInFlight: STALL_IN_FLIGHT },
        publish: pub,
        http,
        stall: stall ?? { failed: stallError },
      },
    };
  },
};

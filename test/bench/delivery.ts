/**
 * Delivery (issue 3): discue's HTTP and command delivery against their raw
 * baselines (undici POSTs, child_process spawns, one at a time), end-to-end latency
 * from publish returning to the HTTP listener receiving at a steady rate, and
 * daemon RSS while 100 HTTP listeners drain a large backlog.
 *
 * The HTTP sink (delivery-server.mjs) runs in its own process, so neither the
 * raw client nor the daemon shares an event loop with it; it counts requests
 * and reports over IPC. Every case uses a fresh queue.
 *
 * The RSS case runs alone, with daemon variants interleaved and the memory
 * split by where it lies, in test/bench/rss.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { fork, spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Agent, WebSocket, request } from 'undici';
import { connect } from '../../src/index.js';
import { timeOfId } from '../../src/protocol/ids.js';
import type { DiscueClient } from '../../src/index.js';
import { BenchDaemon, ROOT } from './daemon.js';
import type { Memory, Smaps } from './daemon.js';
import type { Section, SectionContext, SectionResult, Target } from './lib.js';
import { CASE_BOUND_MS, bounded, check, failedTarget, fmtBytes, fmtMs, fmtPct, fmtRate, log, scaled, sleep, summarize } from './lib.js';

const HTTP_MESSAGES = scaled(5_000, 1_000);
/** Per listener with 100 listeners (and per connection of the raw run beside it): 50,000 deliveries in all. */
const FANOUT_MESSAGES = scaled(500, 100);
/**
 * The 100-listener case and its raw loop take turns this many times; the
 * median of each is compared. One run swung ±20% (9,306-13,652/s on one
 * daemon), enough to flip a 0.6x target either way.
 */
const FANOUT_ROUNDS = scaled(3, 1);
const EXEC_MESSAGES = scaled(400, 60);
const LATENCY_RATE = 1_000;
const LATENCY_MS = scaled(5_000, 2_000);
const RSS_LISTENERS = scaled(100, 20);
const RSS_BACKLOG = scaled(100_000, 10_000);
const RSS_SAMPLE_MS = 250;
const RSS_MAX_MS = scaled(60_000, 5_000);
const PUBLISH_BATCH = 1_000;
const DRAIN_TIMEOUT_MS = 120_000;

const wallMs = () => performance.timeOrigin + performance.now();

// ---- the HTTP sink in its own process ------------------------------------------

type ServerMessage =
  | { type: 'listening'; port: number }
  | { type: 'done'; count: number; atMs: number }
  | { type: 'count'; count: number }
  | { type: 'times'; times: [string, number][] };

export class Sink {
  private waiters: { type: string; resolve: (m: ServerMessage) => void }[] = [];
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on('message', (m: ServerMessage) => {
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
    });
  }

  static async start(ctx: SectionContext): Promise<Sink> {
    const child = fork(join(ROOT, 'test', 'bench', 'delivery-server.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    ctx.cleanup.add(kill, kill);
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`sink exited with ${String(code)}`)));
      child.once('message', (m: ServerMessage) => {
        if (m.type === 'listening') resolve(m.port);
      });
    });
    return new Sink(child, `http://127.0.0.1:${port}/hook`);
  }

  private ask<T extends ServerMessage>(type: T['type'], msg: object, timeoutMs = DRAIN_TIMEOUT_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter = { type, resolve: resolve as (m: ServerMessage) => void };
      this.waiters.push(waiter);
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`sink: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      waiter.resolve = (m) => {
        clearTimeout(timer);
        resolve(m as T);
      };
      this.child.send(msg);
    });
  }

  /**
   * Resolves with the wall-clock ms at which `n` more requests had arrived.
   * The target is absolute (the count now + n): a relative one was counted
   * from when the sink read the IPC message, and requests that reached it
   * before that (HTTP is another channel) went uncounted, so a busy machine
   * could wait for 'done' for ever ("no 'done' within 120000 ms").
   */
  async expect(n: number, timeoutMs = DRAIN_TIMEOUT_MS): Promise<{ wait: Promise<number> }> {
    const target = (await this.count()) + n;
    // Registered before the sink is told, so a fast 'done' is not missed.
    const wait = this.ask<{ type: 'done'; count: number; atMs: number }>('done', { cmd: 'expect', target }, timeoutMs).then((m) => m.atMs);
    return { wait };
  }

  async count(): Promise<number> {
    return (await this.ask<{ type: 'count'; count: number }>('count', { cmd: 'count' }, 10_000)).count;
  }

  record(on: boolean): void {
    this.child.send({ cmd: 'record', on });
  }

  async times(): Promise<Map<string, number>> {
    return new Map((await this.ask<{ type: 'times'; times: [string, number][] }>('times', { cmd: 'times' }, 30_000)).times);
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

// ---- helpers -------------------------------------------------------------------------

let queueSeq = 0;
async function freshQueue(client: DiscueClient, prefix: string): Promise<string> {
  const name = `${prefix}-${++queueSeq}`;
  await client.request('queue.create', { name });
  return name;
}

async function backlog(client: DiscueClient, queue: string, payloads: string[], total: number): Promise<void> {
  let next = 0;
  for (let sent = 0; sent < total; ) {
    const n = Math.min(PUBLISH_BATCH, total - sent);
    const messages = new Array<{ data: string }>(n);
    for (let i = 0; i < n; i++) messages[i] = { data: payloads[next++ % payloads.length]! };
    await client.publish(queue, messages);
    sent += n;
  }
}

async function removeListeners(client: DiscueClient, ids: string[]): Promise<void> {
  for (const id of ids) await client.request('listener.remove', { ref: id }).catch(() => undefined);
}

interface RateResult {
  deliveries: number;
  seconds: number;
  rate: number;
}

const rateOf = (deliveries: number, ms: number): RateResult => ({ deliveries, seconds: ms / 1000, rate: deliveries / (ms / 1000) });

// ---- 1: HTTP ------------------------------------------------------------------------------

/** The envelope discue POSTs, for a fair body size. */
function envelope(i: number, data: string): string {
  return JSON.stringify({ id: `0000000000000-${String(i).padStart(8, '0')}`, queue: 'raw', publishedAt: new Date().toISOString(), data });
}

/** `concurrency` serial keep-alive loops of `n` POSTs each, on as many connections. */
async function rawUndici(sink: Sink, payloads: string[], n: number, concurrency = 1): Promise<RateResult> {
  const agent = new Agent({ keepAliveTimeout: 60_000, connections: concurrency });
  try {
    const post = async (i: number) => {
      const res = await request(sink.url, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', 'webhook-id': `raw-${i}` },
        body: envelope(i, payloads[i % payloads.length]!),
      });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`raw POST: ${res.statusCode}`);
    };
    // Connection and JIT warm-up, as much as a discue case gets.
    const warm = warmUpPer(concurrency);
    await Promise.all(Array.from({ length: concurrency }, async () => { for (let i = 0; i < warm; i++) await post(i); }));
    const { wait } = await sink.expect(n * concurrency);
    const t0 = wallMs();
    await Promise.all(Array.from({ length: concurrency }, async () => { for (let i = 0; i < n; i++) await post(i); }));
    return rateOf(n * concurrency, (await wait) - t0);
  } finally {
    await agent.close();
  }
}

/**
 * Deliveries per connection (per raw loop, per listener) before a timed HTTP
 * case, on both sides alike: a connection opened and the code JIT-compiled.
 * The first delivery case on a fresh daemon otherwise timed V8 compiling its
 * delivery path too (1 listener: 2,778/s cold against 3,171-3,546/s in the
 * next three runs on the same daemon), while the raw loop had been warmed.
 */
function warmUpPer(concurrency: number): number {
  return Math.max(50, Math.ceil(500 / concurrency));
}

export async function discueHttp(client: DiscueClient, sink: Sink, payloads: string[], n: number, listeners: number): Promise<RateResult> {
  const queue = await freshQueue(client, 'http');
  await backlog(client, queue, payloads, n);
  const { wait } = await sink.expect(n * listeners);
  const t0 = wallMs();
  const added = await Promise.all(
    Array.from({ length: listeners }, () => client.request('listener.add', { kind: 'http', queues: [queue], url: sink.url, from: 'all' })),
  );
  try {
    return rateOf(n * listeners, (await wait) - t0);
  } finally {
    await removeListeners(
      client,
      added.map((l) => l.id),
    );
  }
}

// ---- 2: commands -----------------------------------------------------------------------------

/** One command run the plain way (what the spawner does): data on stdin, wait for its exit and output. */
function runCat(input: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn('cat', [], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
    child.stdin.end(input);
  });
}

async function rawSpawn(payloads: string[], n: number): Promise<RateResult> {
  for (let i = 0; i < 5; i++) await runCat(payloads[i]!);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const code = await runCat(payloads[i % payloads.length]!);
    if (code !== 0) throw new Error(`cat exited ${String(code)}`);
  }
  return rateOf(n, performance.now() - t0);
}

async function discueExec(client: DiscueClient, payloads: string[], n: number): Promise<RateResult> {
  // Warm-up: the daemon forks its spawner on its first command delivery.
  const warm = await freshQueue(client, 'execwarm');
  await backlog(client, warm, payloads, 5);
  const w = await client.request('listener.add', { kind: 'exec', queues: [warm], command: 'cat', from: 'all' });
  await waitDelivered(client, w.id, 5, 50);
  await removeListeners(client, [w.id]);

  const queue = await freshQueue(client, 'exec');
  await backlog(client, queue, payloads, n);
  const t0 = performance.now();
  const l = await client.request('listener.add', { kind: 'exec', queues: [queue], command: 'cat', from: 'all' });
  try {
    const ms = (await waitDelivered(client, l.id, n, 20)) - t0;
    return rateOf(n, ms);
  } finally {
    await removeListeners(client, [l.id]);
  }
}

/** Polls the listener's progress; returns performance.now() when `n` were delivered. */
async function waitDelivered(client: DiscueClient, id: string, n: number, everyMs: number): Promise<number> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  for (;;) {
    const info = await client.request('listener.get', { ref: id });
    const progress = info.progress ?? [];
    const delivered = progress.reduce((s, p) => s + p.delivered, 0);
    const dead = progress.reduce((s, p) => s + p.dead, 0);
    if (delivered >= n) return performance.now();
    if (dead > 0) throw new Error(`exec listener: ${dead} dead deliveries (${progress[0]?.lastError ?? ''})`);
    if (Date.now() > deadline) throw new Error(`exec listener: ${delivered}/${n} delivered after ${DRAIN_TIMEOUT_MS} ms`);
    await sleep(everyMs);
  }
}

// ---- 3: latency ---------------------------------------------------------------------------------

async function latency(client: DiscueClient, sink: Sink, payloads: string[]) {
  const queue = await freshQueue(client, 'latency');
  const l = await client.request('listener.add', { kind: 'http', queues: [queue], url: sink.url, from: 'new' });
  try {
    // Warm-up: the listener is running and its connection is open.
    const warm = await sink.expect(20, 10_000);
    for (let i = 0; i < 20; i++) await client.publish(queue, { data: payloads[i]! });
    await warm.wait;

    const total = Math.round((LATENCY_RATE * LATENCY_MS) / 1000);
    sink.record(true);
    const arrived = await sink.expect(total, LATENCY_MS + 60_000);
    /** id -> [wall ms the publish was called, wall ms it returned]. */
    const returned = new Map<string, [number, number]>();
    const publishMs: number[] = [];
    const pending = new Set<Promise<void>>();
    let maxInFlight = 0;
    const start = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * LATENCY_RATE) / 1000) + 1);
      while (sent < due) {
        const data = payloads[sent++ % payloads.length]!;
        const t = performance.now();
        const p: Promise<void> = client.publish(queue, { data }).then((r) => {
          const back = performance.now();
          returned.set(r.ids[0]!, [performance.timeOrigin + t, performance.timeOrigin + back]);
          publishMs.push(back - t);
          pending.delete(p);
        });
        pending.add(p);
        maxInFlight = Math.max(maxInFlight, pending.size);
      }
      await sleep(1);
    }
    const sendSeconds = (performance.now() - start) / 1000;
    await Promise.all(pending);
    await arrived.wait;
    sink.record(false);
    const received = await sink.times();
    const diffs: number[] = [];
    // Against the daemon's own publish time: includes the group commit the
    // publish shared with acks. The id carries it in whole ms (taken before
    // the synced commit), which reads up to 1 ms high, 0.5 ms on average. The
    // daemon cannot have published before the publisher called, so
    // max(id's ms, call time) is still no later than the real publish time:
    // latency from it is an upper bound, and a tight one.
    const fromDaemon: number[] = [];
    const fromIdMs: number[] = [];
    let missing = 0;
    for (const [id, [called, back]] of returned) {
      const at = received.get(id);
      if (at === undefined) missing++;
      else {
        diffs.push(at - back);
        fromDaemon.push(at - Math.max(timeOfId(id), called));
        fromIdMs.push(at - timeOfId(id));
      }
    }
    return {
      messages: total,
      offeredRate: total / sendSeconds,
      latencyMs: summarize(diffs),
      fromDaemonMs: summarize(fromDaemon),
      idOnlyMs: summarize(fromIdMs),
      publishMs: summarize(publishMs),
      negative: diffs.filter((d) => d < 0).length,
      missing,
      maxInFlight,
    };
  } finally {
    sink.record(false);
    await removeListeners(client, [l.id]);
  }
}

// ---- 4: RSS while a backlog drains -----------------------------------------------------------------

/** The daemon's own account of its memory, read through the inspector. */
export interface V8Memory {
  /** JS heap in use (process.memoryUsage().heapUsed). */
  heapUsedBytes: number;
  /** JS heap committed (heapTotal): what V8 holds from the OS, used or not. */
  heapTotalBytes: number;
  /** Memory of C++ objects bound to JS objects, array buffers included. */
  externalBytes: number;
  /** Resident bytes per V8 heap space (physical_space_size). */
  spaces: Record<string, number>;
}

const V8_MEMORY = `(() => {
  const m = process.memoryUsage();
  const spaces = {};
  for (const s of process.getBuiltinModule('node:v8').getHeapSpaceStatistics()) spaces[s.space_name] = s.physical_space_size;
  return { heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external, spaces };
})()`;

interface Inspector {
  call(method: string, params?: object): Promise<unknown>;
  /** A heap snapshot (JSON); it collects garbage first, and its own allocations stay in RSS. */
  heapSnapshot(): Promise<string>;
  v8Memory(): Promise<V8Memory>;
  close(): void;
}

/**
 * The daemon's inspector, from outside: SIGUSR1 opens it on the port the
 * daemon was started with (--inspect-port); it stays open until the daemon
 * exits, so a second SIGUSR1 changes nothing.
 */
async function inspect(daemon: BenchDaemon, port: number): Promise<Inspector> {
  process.kill(daemon.pid!, 'SIGUSR1');
  const deadline = Date.now() + 30_000;
  let target: string | undefined;
  while (target === undefined) {
    if (Date.now() > deadline) throw new Error(`the daemon's inspector did not open on port ${port}`);
    try {
      const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
      target = list[0]?.webSocketDebuggerUrl;
    } catch {
      await sleep(100);
    }
  }
  const ws = new WebSocket(target);
  const replies = new Map<number, (result: unknown) => void>();
  let chunks: string[] = [];
  ws.addEventListener('message', (event) => {
    const m = JSON.parse(String(event.data)) as { id?: number; result?: unknown; method?: string; params?: { chunk: string } };
    if (m.id !== undefined) replies.get(m.id)?.(m.result);
    else if (m.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(m.params!.chunk);
  });
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error('inspector connection failed')));
  });
  let seq = 0;
  const call = (method: string, params: object = {}) =>
    bounded(method, 30_000, new Promise<unknown>((resolve) => {
      const id = ++seq;
      replies.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    }));
  return {
    call,
    async v8Memory() {
      const reply = (await call('Runtime.evaluate', { expression: V8_MEMORY, returnByValue: true })) as { result: { value: V8Memory } };
      return reply.result.value;
    },
    async heapSnapshot() {
      chunks = [];
      await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
      return chunks.join('');
    },
    close: () => ws.close(),
  };
}

/**
 * Self size per kind of object in a V8 heap snapshot ("object Foo", "string",
 * "closure bar", ...), largest first: what the live JS heap holds.
 */
export function heapByKind(snapshot: string): [string, number, number][] {
  const s = JSON.parse(snapshot) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [type, name, size] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const kinds = new Map<string, [number, number]>();
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const t = types[s.nodes[i + type]!]!;
    const kind = t === 'object' || t === 'closure' || t === 'native' ? `${t} ${s.strings[s.nodes[i + name]!]!.slice(0, 60)}` : t;
    const k = kinds.get(kind) ?? [0, 0];
    k[0] += s.nodes[i + size]!;
    k[1]++;
    kinds.set(kind, k);
  }
  return [...kinds].map(([k, [bytes, count]]): [string, number, number] => [k, bytes, count]).sort((a, b) => b[1] - a[1]);
}

/**
 * A full GC in the daemon through the inspector: HeapProfiler.collectGarbage
 * runs a full, compacting GC. (A heap snapshot also collects garbage, but
 * its own allocations stay in RSS.) Returns the memory a second later: the
 * process's, where it lies (smaps), and V8's own account.
 */
async function forcedGc(daemon: BenchDaemon, port: number, snapshot = false): Promise<Memory & V8Memory & { smaps: Smaps; heap?: [string, number, number][] }> {
  const inspector = await inspect(daemon, port);
  try {
    await inspector.call('HeapProfiler.collectGarbage');
    await inspector.call('HeapProfiler.collectGarbage');
    await sleep(1000);
    const memory = { ...daemon.memory(), ...(await inspector.v8Memory()), smaps: daemon.smaps() };
    // After the memory is read: the snapshot's own allocations stay in RSS.
    return snapshot ? { ...memory, heap: heapByKind(await inspector.heapSnapshot()) } : memory;
  } finally {
    inspector.close();
  }
}

/** A port free now, for the daemon's inspector. */
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface RssOptions {
  /** More environment for the daemon (test/bench/rss.ts: MALLOC_ARENA_MAX, V8 flags in NODE_OPTIONS). */
  env?: NodeJS.ProcessEnv;
  /** How long to sample (default RSS_MAX_MS). */
  maxMs?: number;
  /** A heap snapshot after each forced GC, summed by kind of object (gcBefore.heap, gcAfter.heap). */
  snapshot?: boolean;
  /** Run on the daemon at the end of the drain and after the forced GC that follows (test/bench/rss.ts: gdb and malloc). */
  probe?: (daemon: BenchDaemon, phase: 'draining' | 'after GC') => Promise<unknown>;
}

export async function rssDrain(ctx: SectionContext, sink: Sink, options: RssOptions = {}) {
  const maxMs = options.maxMs ?? RSS_MAX_MS;
  const inspectPort = await freePort();
  const nodeOptions = [process.env.NODE_OPTIONS, options.env?.NODE_OPTIONS, `--inspect-port=127.0.0.1:${inspectPort}`].filter(Boolean).join(' ');
  // The inspector opens only on SIGUSR1 (forcedGc), on this port.
  const daemon = new BenchDaemon(join(ctx.root, `d-rss-${++queueSeq}`), ctx.cleanup, { ...options.env, NODE_OPTIONS: nodeOptions });
  await daemon.start();
  const client = await connect({ home: daemon.home, autoStart: false });
  try {
    const queue = await freshQueue(client, 'drain');
    log(`rss: publishing a backlog of ${RSS_BACKLOG.toLocaleString('en-US')} messages`);
    const publishCpu0 = daemon.cpuSeconds();
    const publishT0 = performance.now();
    await backlog(client, queue, ctx.payloads, RSS_BACKLOG);
    const publish = { ms: performance.now() - publishT0, cpuUsPerMessage: ((daemon.cpuSeconds() - publishCpu0) * 1e6) / RSS_BACKLOG };
    const gcBefore = await forcedGc(daemon, inspectPort, options.snapshot);
    const idle = daemon.memory();
    const total = RSS_BACKLOG * RSS_LISTENERS;
    const countAtStart = await sink.count();
    log(`rss: adding ${RSS_LISTENERS} HTTP listeners (from all), sampling RSS every ${RSS_SAMPLE_MS} ms for up to ${maxMs / 1000} s`);
    const t0 = performance.now();
    const cpu0 = daemon.cpuSeconds();
    await Promise.all(
      Array.from({ length: RSS_LISTENERS }, () => client.request('listener.add', { kind: 'http', queues: [queue], url: sink.url, from: 'all' })),
    );
    const samples: { ms: number; rssBytes: number; anonBytes: number; fileBytes: number; delivered: number }[] = [];
    for (;;) {
      const delivered = (await sink.count()) - countAtStart;
      const m = daemon.memory();
      samples.push({ ms: performance.now() - t0, rssBytes: m.rssBytes, anonBytes: m.anonBytes, fileBytes: m.fileBytes, delivered });
      if (delivered >= total || performance.now() - t0 >= maxMs) break;
      await sleep(RSS_SAMPLE_MS);
    }
    // CPU per delivery: unlike deliveries/s, barely moved by other load on the machine.
    const cpuSeconds = daemon.cpuSeconds() - cpu0;
    // Where the memory lies while listeners still run (the plateau: the curve is flat after ~10 s).
    const inspector = await inspect(daemon, inspectPort);
    const draining = { ...daemon.memory(), ...(await inspector.v8Memory().finally(() => inspector.close())), smaps: daemon.smaps() };
    const probedDraining = await options.probe?.(daemon, 'draining');
    // Listeners gone, then a forced GC: what is left over is what the drain kept.
    await removeAllListeners(client);
    const gcAfter = await forcedGc(daemon, inspectPort, options.snapshot);
    const probed = { draining: probedDraining, afterGc: await options.probe?.(daemon, 'after GC') };
    const end = samples[samples.length - 1]!;
    const peak = Math.max(...samples.map((s) => s.rssBytes));
    const peakAnon = Math.max(...samples.map((s) => s.anonBytes));
    const peakHwm = daemon.memory().peakBytes;
    return {
      listeners: RSS_LISTENERS,
      backlog: RSS_BACKLOG,
      totalDeliveries: total,
      maxMs,
      idleBytes: idle.rssBytes,
      startBytes: samples[0]!.rssBytes,
      peakBytes: peak,
      endBytes: end.rssBytes,
      startAnonBytes: samples[0]!.anonBytes,
      peakAnonBytes: peakAnon,
      vmHwmBytes: peakHwm,
      delivered: end.delivered,
      seconds: end.ms / 1000,
      rate: end.delivered / (end.ms / 1000),
      cpuUsPerDelivery: (cpuSeconds * 1e6) / end.delivered,
      /** The backlog's publish (batches of 1,000): its time and the daemon's CPU per message. */
      publish,
      complete: end.delivered >= total,
      gcBefore,
      draining,
      gcAfter,
      probed,
      samples,
    };
  } finally {
    await client.close();
    await daemon.stop();
  }
}

/** The RSS by kind of mapping, and V8's committed heap (the rest of the anonymous memory is mostly V8's). */
function whereNote(m: Memory & V8Memory & { smaps: Smaps }): string {
  const k = m.smaps.kinds;
  const mi = (b: number | undefined) => ((b ?? 0) / (1024 * 1024)).toFixed(1);
  return `JS ${mi(m.heapTotalBytes)} (new ${mi(m.spaces.new_space)}, old ${mi(m.spaces.old_space)}), malloc ${mi(k['[heap]']! + k['malloc arenas']!)}, LevelDB tables ${mi(k['LevelDB tables'])}, other files ${mi(k['other files'])} MiB`;
}

// ---- the section -------------------------------------------------------------------------------------

type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

/** One case, bounded in time: a case that fails or hangs is reported as FAILED, the others still run. */
async function measure<T>(label: string, boundMs: number, work: () => Promise<T>): Promise<Outcome<T>> {
  log(label);
  try {
    return { ok: true, value: await bounded(label, boundMs, work()) };
  } catch (err) {
    const reason = (err as Error).message;
    log(`FAILED: ${label}: ${reason}`);
    return { ok: false, reason };
  }
}

/** After a failed case: its listeners would go on sending to the sink and skew the next case's count. */
async function removeAllListeners(client: DiscueClient): Promise<void> {
  const all = await client.request('listener.list', {}).catch(() => []);
  await removeListeners(
    client,
    all.map((l) => l.id),
  );
}

function rateRow(what: string, o: Outcome<RateResult>, base: number | undefined): string[] {
  if (!o.ok) return [what, '-', '-', 'FAILED', '-'];
  const r = o.value;
  return [what, String(r.deliveries), r.seconds.toFixed(2), fmtRate(r.rate), base === undefined ? '-' : fmtPct(r.rate / base)];
}

/** The round with the median rate; the first failure if any round failed. */
function medianOutcome(rounds: Outcome<RateResult>[]): Outcome<RateResult> {
  const failed = rounds.find((o) => !o.ok);
  if (failed) return failed;
  const ok = (rounds as { ok: true; value: RateResult }[]).slice().sort((a, b) => a.value.rate - b.value.rate);
  return ok[Math.floor((ok.length - 1) / 2)]!;
}

function roundRates(rounds: Outcome<RateResult>[]): string {
  return rounds.map((o) => (o.ok ? fmtRate(o.value.rate) : 'failed')).join(' / ');
}

/** Mean rate of the outcomes that succeeded; undefined if none did. */
function meanRate(...all: Outcome<RateResult>[]): number | undefined {
  const ok = all.filter((o): o is { ok: true; value: RateResult } => o.ok);
  return ok.length === 0 ? undefined : ok.reduce((sum, o) => sum + o.value.rate, 0) / ok.length;
}

function ratioTarget(target: string, o: Outcome<RateResult>, base: number | undefined, limit: number, baseWhy: string): Target {
  if (!o.ok) return failedTarget(target, o.reason);
  if (base === undefined) return failedTarget(target, `no ${baseWhy} to compare with`);
  const ratio = o.value.rate / base;
  return check(target, `${fmtRate(o.value.rate)}/s = ${ratio.toFixed(2)}x of ${fmtRate(base)}/s`, ratio, limit);
}

export const deliverySection: Section = {
  name: 'delivery',
  async run(ctx: SectionContext): Promise<SectionResult> {
    const sink = await Sink.start(ctx);
    const daemon = new BenchDaemon(join(ctx.root, 'd1'), ctx.cleanup);
    log('delivery: starting a daemon on an empty store');
    await daemon.start();
    const client = await connect({ home: daemon.home, autoStart: false });
    ctx.cleanup.add(() => client.close());
    const targets: Target[] = [];
    const httpCase = async (label: string, listeners: number, n: number) => {
      const o = await measure(label, CASE_BOUND_MS, async () => {
        await discueHttp(client, sink, ctx.payloads, warmUpPer(listeners), listeners);
        return discueHttp(client, sink, ctx.payloads, n, listeners);
      });
      if (!o.ok) await removeAllListeners(client);
      return o;
    };

    const n = HTTP_MESSAGES;
    const f = FANOUT_MESSAGES;
    const rawHttp = await measure(`http: raw undici, ${n.toLocaleString('en-US')} POSTs one at a time`, CASE_BOUND_MS, () => rawUndici(sink, ctx.payloads, n));
    const http1 = await httpCase(`http: discue, ${n.toLocaleString('en-US')}-message backlog -> 1 listener`, 1, n);
    const http10 = await httpCase(`http: discue, ${n.toLocaleString('en-US')}-message backlog -> 10 listeners`, 10, n);
    const raw10 = await measure(`http: raw undici, 10 loops of ${n.toLocaleString('en-US')} POSTs`, CASE_BOUND_MS, () => rawUndici(sink, ctx.payloads, n, 10));
    const http100Rounds: Outcome<RateResult>[] = [];
    const raw100Rounds: Outcome<RateResult>[] = [];
    for (let round = 1; round <= FANOUT_ROUNDS; round++) {
      http100Rounds.push(await httpCase(`http: discue, ${f.toLocaleString('en-US')}-message backlog -> 100 listeners (round ${round}/${FANOUT_ROUNDS})`, 100, f));
      raw100Rounds.push(await measure(`http: raw undici, 100 loops of ${f.toLocaleString('en-US')} POSTs (round ${round}/${FANOUT_ROUNDS})`, CASE_BOUND_MS, () => rawUndici(sink, ctx.payloads, f, 100)));
    }
    const http100 = medianOutcome(http100Rounds);
    const raw100 = medianOutcome(raw100Rounds);
    // A second serial raw run after the discue runs: the machine drifts, so show both.
    const rawHttp2 = await measure('http: raw undici again, one at a time', CASE_BOUND_MS, () => rawUndici(sink, ctx.payloads, n));
    const rawHttpRate = meanRate(rawHttp, rawHttp2);
    const raw10Rate = meanRate(raw10);
    const raw100Rate = meanRate(raw100);
    ctx.report({
      title: `HTTP delivery vs raw undici (200-byte data; ${n.toLocaleString('en-US')} messages per listener, ${f.toLocaleString('en-US')} with 100)`,
      columns: ['what', 'deliveries', 'seconds', 'deliveries/s', 'vs raw'],
      rows: [
        rateRow('raw undici POST, 1 at a time, keep-alive (before)', rawHttp, rawHttpRate),
        rateRow('raw undici POST, 1 at a time, keep-alive (after)', rawHttp2, rawHttpRate),
        rateRow('discue HTTP delivery, 1 listener', http1, rawHttpRate),
        rateRow('raw undici POST, 10 loops on 10 connections', raw10, raw10Rate),
        rateRow('discue HTTP delivery, 10 listeners', http10, raw10Rate),
        rateRow('raw undici POST, 100 loops on 100 connections', raw100, raw100Rate),
        rateRow('discue HTTP delivery, 100 listeners', http100, raw100Rate),
      ],
      notes: [
        'Sink: node:http server in its own process, 200 with empty body; it counts requests and reports over IPC.',
        'discue: backlog published first (batches of 1,000), timed from `listener add` (from all) until the sink has them all.',
        `Warm-up on both sides before each timed case, per raw loop and per listener (same daemon, own queue): ${warmUpPer(1)} with 1, ${warmUpPer(10)} with 10, ${warmUpPer(100)} with 100.`,
        '"vs raw": 1 listener against the mean of the two serial raw runs; 10 and 100 listeners against raw loops at the same concurrency.',
        `100 listeners and their raw loop: median of ${FANOUT_ROUNDS} alternating rounds; discue ${roundRates(http100Rounds)}, raw ${roundRates(raw100Rounds)} deliveries/s.`,
      ],
    });
    targets.push(
      ratioTarget('HTTP delivery, 1 listener >= 0.7x raw undici (serial keep-alive)', http1, rawHttpRate, 0.7, 'raw run'),
      ratioTarget('HTTP delivery, 10 listeners >= 0.6x raw undici at 10 concurrent', http10, raw10Rate, 0.6, 'raw run at 10'),
      ratioTarget('HTTP delivery, 100 listeners >= 0.6x raw undici at 100 concurrent', http100, raw100Rate, 0.6, 'raw run at 100'),
    );

    const rawExec = await measure(`exec: raw spawn('cat'), ${EXEC_MESSAGES} spawns one at a time`, CASE_BOUND_MS, () => rawSpawn(ctx.payloads, EXEC_MESSAGES));
    const exec1 = await measure(`exec: discue command delivery ('cat'), ${EXEC_MESSAGES}-message backlog`, CASE_BOUND_MS, () => discueExec(client, ctx.payloads, EXEC_MESSAGES));
    if (!exec1.ok) await removeAllListeners(client);
    const rawExec2 = await measure('exec: raw spawn again', CASE_BOUND_MS, () => rawSpawn(ctx.payloads, EXEC_MESSAGES));
    const rawExecRate = meanRate(rawExec, rawExec2);
    ctx.report({
      title: `Command delivery vs raw child_process spawns (\`cat\`, data on stdin, ${EXEC_MESSAGES} messages)`,
      columns: ['what', 'deliveries', 'seconds', 'deliveries/s', 'vs raw'],
      rows: [
        rateRow('raw spawn(cat), 1 at a time (before)', rawExec, rawExecRate),
        rateRow('raw spawn(cat), 1 at a time (after)', rawExec2, rawExecRate),
        rateRow('discue command delivery, 1 listener', exec1, rawExecRate),
      ],
      notes: ['discue: timed from `listener add` (from all) until listener.get reports all delivered (polled every 20 ms).'],
    });
    targets.push(ratioTarget('command delivery >= 0.8x raw spawn rate', exec1, rawExecRate, 0.8, 'raw spawn run'));

    const latOutcome = await measure(`latency: ${LATENCY_RATE} msgs/s for ${LATENCY_MS / 1000} s, 1 HTTP listener`, LATENCY_MS + 90_000, () => latency(client, sink, ctx.payloads));
    const latTitle = `End-to-end latency: publish -> HTTP listener received (${LATENCY_RATE} msgs/s, ${LATENCY_MS / 1000} s)`;
    if (latOutcome.ok) {
      const lat = latOutcome.value;
      ctx.report({
        title: latTitle,
        columns: ['measure', 'p50 ms', 'p99 ms', 'max ms', 'mean ms'],
        rows: [
          ['daemon publish time -> sink received', fmtMs(lat.fromDaemonMs.p50), fmtMs(lat.fromDaemonMs.p99), fmtMs(lat.fromDaemonMs.max), fmtMs(lat.fromDaemonMs.mean)],
          ["(context) the id's whole ms -> sink received", fmtMs(lat.idOnlyMs.p50), fmtMs(lat.idOnlyMs.p99), fmtMs(lat.idOnlyMs.max), fmtMs(lat.idOnlyMs.mean)],
          ['(context) publish returned -> sink received', fmtMs(lat.latencyMs.p50), fmtMs(lat.latencyMs.p99), fmtMs(lat.latencyMs.max), fmtMs(lat.latencyMs.mean)],
          ['(context) publish call -> returned', fmtMs(lat.publishMs.p50), fmtMs(lat.publishMs.p99), fmtMs(lat.publishMs.max), fmtMs(lat.publishMs.mean)],
        ],
        notes: [
          `${lat.messages} messages, 1 per publish, offered at ${fmtRate(lat.offeredRate)}/s (open loop, up to ${lat.maxInFlight} publishes in flight); ${lat.missing} not matched, ${lat.negative} negative (returned after received).`,
          'Both sides take wall-clock ms as performance.timeOrigin + performance.now(); the sink is another process.',
          "The daemon's publish time is in its id, in whole ms (taken before the synced commit): up to 1 ms early, so the id row reads up to 1 ms high. The first row, which the targets use, takes the later of the id's ms and the publisher's call time: the daemon cannot have published before it was asked, so that time is still no later than the real one, and the latency an upper bound.",
        ],
      });
      targets.push(
        check(`latency p50 < 1 ms at ${LATENCY_RATE} msgs/s (daemon publish time -> receiver)`, `${fmtMs(lat.fromDaemonMs.p50)} ms`, lat.fromDaemonMs.p50, 1, true),
        check(`latency p99 < 10 ms at ${LATENCY_RATE} msgs/s (daemon publish time -> receiver)`, `${fmtMs(lat.fromDaemonMs.p99)} ms`, lat.fromDaemonMs.p99, 10, true),
      );
    } else {
      ctx.report({ title: latTitle, columns: ['measure', 'result'], rows: [['latency', `FAILED: ${latOutcome.reason}`]] });
      targets.push(failedTarget(`latency p50 < 1 ms, p99 < 10 ms at ${LATENCY_RATE} msgs/s`, latOutcome.reason));
    }
    await client.close();
    await daemon.stop();

    const rssOutcome = await measure(
      `rss: ${RSS_LISTENERS} HTTP listeners draining a ${RSS_BACKLOG.toLocaleString('en-US')}-message backlog`,
      RSS_MAX_MS + 180_000,
      () => rssDrain(ctx, sink),
    );
    const rssTitle = `Daemon RSS: ${RSS_LISTENERS} HTTP listeners draining a ${RSS_BACKLOG.toLocaleString('en-US')}-message backlog`;
    if (rssOutcome.ok) {
      const rss = rssOutcome.value;
      const curve = rss.samples.filter((_, i) => i % 8 === 0 || i === rss.samples.length - 1);
      ctx.report({
        title: rssTitle,
        columns: ['t s', 'RSS', 'anon', 'file-backed', 'delivered'],
        rows: curve.map((s) => [(s.ms / 1000).toFixed(2), fmtBytes(s.rssBytes), fmtBytes(s.anonBytes), fmtBytes(s.fileBytes), s.delivered.toLocaleString('en-US')]),
        notes: [
          `idle with the backlog stored ${fmtBytes(rss.idleBytes)}; start ${fmtBytes(rss.startBytes)}, peak ${fmtBytes(rss.peakBytes)}, end ${fmtBytes(rss.endBytes)}, VmHWM ${fmtBytes(rss.vmHwmBytes)}; anon start ${fmtBytes(rss.startAnonBytes)}, peak ${fmtBytes(rss.peakAnonBytes)}.`,
          `after a forced GC (inspector, HeapProfiler.collectGarbage, listeners removed): before the drain RSS ${fmtBytes(rss.gcBefore.rssBytes)} (anon ${fmtBytes(rss.gcBefore.anonBytes)}, JS heap used ${fmtBytes(rss.gcBefore.heapUsedBytes)}); after it RSS ${fmtBytes(rss.gcAfter.rssBytes)} (anon ${fmtBytes(rss.gcAfter.anonBytes)}, JS heap used ${fmtBytes(rss.gcAfter.heapUsedBytes)}).`,
          `where it lies (smaps; JS = V8 heap committed): idle ${whereNote(rss.gcBefore)}; draining (end) ${whereNote(rss.draining)}; after GC ${whereNote(rss.gcAfter)}.`,
          `${rss.delivered.toLocaleString('en-US')} of ${rss.totalDeliveries.toLocaleString('en-US')} deliveries in ${rss.seconds.toFixed(1)} s (${fmtRate(rss.rate)}/s)` +
            (rss.complete ? ', drained.' : `, sampling stopped at ${RSS_MAX_MS / 1000} s (bounded).`),
          `RSS sampled every ${RSS_SAMPLE_MS} ms from /proc/PID/status (anon = RssAnon, file-backed = RssFile: the node binary's pages, ~43 MiB, and LevelDB's mmapped tables, which grow as the drain reads them, up to the store's size); every 8th sample shown (all in results.json).`,
        ],
      });
      targets.push(
        check(
          `RSS growth < 30 MiB while ${RSS_LISTENERS} listeners drain for ${RSS_MAX_MS / 1000} s (peak - start)`,
          `start ${fmtBytes(rss.startBytes)}, peak ${fmtBytes(rss.peakBytes)}, end ${fmtBytes(rss.endBytes)} (+${fmtBytes(rss.peakBytes - rss.startBytes)})`,
          (rss.peakBytes - rss.startBytes) / (1024 * 1024),
          30,
          true,
        ),
        check(
          'no growth after a forced GC (anon RSS after - before the drain < 10 MiB)',
          `anon ${fmtBytes(rss.gcBefore.anonBytes)} -> ${fmtBytes(rss.gcAfter.anonBytes)}; JS heap used ${fmtBytes(rss.gcBefore.heapUsedBytes)} -> ${fmtBytes(rss.gcAfter.heapUsedBytes)}`,
          (rss.gcAfter.anonBytes - rss.gcBefore.anonBytes) / (1024 * 1024),
          10,
          true,
        ),
      );
    } else {
      ctx.report({ title: rssTitle, columns: ['measure', 'result'], rows: [['rss', `FAILED: ${rssOutcome.reason}`]] });
      targets.push(failedTarget('RSS growth < 30 MiB while the backlog drains, none after a forced GC', rssOutcome.reason));
    }
    sink.stop();

    const value = <T>(o: Outcome<T>) => (o.ok ? o.value : { failed: o.reason });
    return {
      targets,
      data: {
        settings: { httpMessages: HTTP_MESSAGES, fanoutMessages: FANOUT_MESSAGES, execMessages: EXEC_MESSAGES, latencyRate: LATENCY_RATE, latencyMs: LATENCY_MS, rssListeners: RSS_LISTENERS, rssBacklog: RSS_BACKLOG, rssMaxMs: RSS_MAX_MS },
        http: { raw: [value(rawHttp), value(rawHttp2)], raw10: value(raw10), raw100: value(raw100), listeners1: value(http1), listeners10: value(http10), listeners100: value(http100), raw100Rounds: raw100Rounds.map(value), listeners100Rounds: http100Rounds.map(value) },
        exec: { raw: [value(rawExec), value(rawExec2)], discue: value(exec1) },
        latency: value(latOutcome),
        rss: value(rssOutcome),
      },
    };
  },
};

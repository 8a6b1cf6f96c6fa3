/**
 * Delivery (issue 3): discue's HTTP and command delivery against their raw
 * baselines (undici POSTs, child_process spawns, one at a time), end-to-end latency
 * from publish returning to the HTTP listener receiving at a steady rate, and
 * daemon RSS while 100 HTTP listeners drain a large backlog.
 *
 * The HTTP sink (delivery-server.mjs) runs in its own process, so neither the
 * raw client nor the daemon shares an event loop with it; it counts requests
 * and reports over IPC. Every case uses a fresh queue.
 */
import type { ChildProcess } from 'node:child_process';
import { fork, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { connect } from '../../src/index.js';
import { timeOfId } from '../../src/protocol/ids.js';
import type { DiscueClient } from '../../src/index.js';
import { BenchDaemon, ROOT } from './daemon.js';
import type { Section, SectionContext, SectionResult, Target } from './lib.js';
import { check, fmtBytes, fmtMs, fmtPct, fmtRate, log, scaled, sleep, summarize } from './lib.js';

const HTTP_MESSAGES = scaled(5_000, 1_000);
const EXEC_MESSAGES = scaled(400, 60);
const LATENCY_RATE = 1_000;
const LATENCY_MS = scaled(5_000, 2_000);
const RSS_LISTENERS = scaled(100, 20);
const RSS_BACKLOG = scaled(100_000, 10_000);
const RSS_SAMPLE_MS = 250;
const RSS_MAX_MS = scaled(20_000, 5_000);
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

  /** Resolves with the wall-clock ms at which `n` more requests had arrived. */
  async expect(n: number, timeoutMs = DRAIN_TIMEOUT_MS): Promise<{ wait: Promise<number> }> {
    // Registered before the sink is told, so a fast 'done' is not missed.
    const wait = this.ask<{ type: 'done'; count: number; atMs: number }>('done', { cmd: 'expect', n }, timeoutMs).then((m) => m.atMs);
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

async function rawUndici(sink: Sink, payloads: string[], n: number): Promise<RateResult> {
  const agent = new Agent({ keepAliveTimeout: 60_000, connections: 1 });
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
    for (let i = 0; i < 50; i++) await post(i); // connection and JIT warm-up
    const { wait } = await sink.expect(n);
    const t0 = wallMs();
    for (let i = 0; i < n; i++) await post(i);
    return rateOf(n, (await wait) - t0);
  } finally {
    await agent.close();
  }
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
    const returned = new Map<string, number>();
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
          returned.set(r.ids[0]!, performance.timeOrigin + back);
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
    // Against the daemon's own publish time (the id's ms, taken before the
    // synced commit): includes the group commit the publish shared with acks.
    const fromDaemon: number[] = [];
    let missing = 0;
    for (const [id, back] of returned) {
      const at = received.get(id);
      if (at === undefined) missing++;
      else {
        diffs.push(at - back);
        fromDaemon.push(at - timeOfId(id));
      }
    }
    return {
      messages: total,
      offeredRate: total / sendSeconds,
      latencyMs: summarize(diffs),
      fromDaemonMs: summarize(fromDaemon),
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

async function rssDrain(ctx: SectionContext, sink: Sink) {
  const daemon = new BenchDaemon(join(ctx.root, 'd-rss'), ctx.cleanup);
  await daemon.start();
  const client = await connect({ home: daemon.home, autoStart: false });
  try {
    const queue = await freshQueue(client, 'drain');
    log(`rss: publishing a backlog of ${RSS_BACKLOG.toLocaleString('en-US')} messages`);
    await backlog(client, queue, ctx.payloads, RSS_BACKLOG);
    const idle = daemon.memory();
    const total = RSS_BACKLOG * RSS_LISTENERS;
    const countAtStart = await sink.count();
    log(`rss: adding ${RSS_LISTENERS} HTTP listeners (from all), sampling RSS every ${RSS_SAMPLE_MS} ms for up to ${RSS_MAX_MS / 1000} s`);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: RSS_LISTENERS }, () => client.request('listener.add', { kind: 'http', queues: [queue], url: sink.url, from: 'all' })),
    );
    const samples: { ms: number; rssBytes: number; anonBytes: number; fileBytes: number; delivered: number }[] = [];
    for (;;) {
      const delivered = (await sink.count()) - countAtStart;
      const m = daemon.memory();
      samples.push({ ms: performance.now() - t0, rssBytes: m.rssBytes, anonBytes: m.anonBytes, fileBytes: m.fileBytes, delivered });
      if (delivered >= total || performance.now() - t0 >= RSS_MAX_MS) break;
      await sleep(RSS_SAMPLE_MS);
    }
    const end = samples[samples.length - 1]!;
    const peak = Math.max(...samples.map((s) => s.rssBytes));
    const peakAnon = Math.max(...samples.map((s) => s.anonBytes));
    const peakHwm = daemon.memory().peakBytes;
    return {
      listeners: RSS_LISTENERS,
      backlog: RSS_BACKLOG,
      totalDeliveries: total,
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
      complete: end.delivered >= total,
      samples,
    };
  } finally {
    await client.close();
    await daemon.stop();
  }
}

// ---- the section -------------------------------------------------------------------------------------

export const deliverySection: Section = {
  name: 'delivery',
  async run(ctx: SectionContext): Promise<SectionResult> {
    const sink = await Sink.start(ctx);
    const daemon = new BenchDaemon(join(ctx.root, 'd1'), ctx.cleanup);
    log('delivery: starting a daemon on an empty store');
    await daemon.start();
    const client = await connect({ home: daemon.home, autoStart: false });
    ctx.cleanup.add(() => client.close());

    const n = HTTP_MESSAGES;
    log(`http: raw undici, ${n.toLocaleString('en-US')} POSTs one at a time`);
    const rawHttp = await rawUndici(sink, ctx.payloads, n);
    log(`http: discue, ${n.toLocaleString('en-US')}-message backlog -> 1 listener`);
    const http1 = await discueHttp(client, sink, ctx.payloads, n, 1);
    log(`http: discue, ${n.toLocaleString('en-US')}-message backlog -> 10 listeners`);
    const http10 = await discueHttp(client, sink, ctx.payloads, n, 10);
    // A second raw run after the discue runs: the machine drifts, so show both.
    log('http: raw undici again');
    const rawHttp2 = await rawUndici(sink, ctx.payloads, n);
    const rawHttpRate = (rawHttp.rate + rawHttp2.rate) / 2;
    ctx.report({
      title: `HTTP delivery vs raw undici (200-byte data, ${n.toLocaleString('en-US')} messages per listener)`,
      columns: ['what', 'deliveries', 'seconds', 'deliveries/s', 'vs raw'],
      rows: [
        ['raw undici POST, 1 at a time, keep-alive (before)', String(rawHttp.deliveries), rawHttp.seconds.toFixed(2), fmtRate(rawHttp.rate), fmtPct(rawHttp.rate / rawHttpRate)],
        ['raw undici POST, 1 at a time, keep-alive (after)', String(rawHttp2.deliveries), rawHttp2.seconds.toFixed(2), fmtRate(rawHttp2.rate), fmtPct(rawHttp2.rate / rawHttpRate)],
        ['discue HTTP delivery, 1 listener', String(http1.deliveries), http1.seconds.toFixed(2), fmtRate(http1.rate), fmtPct(http1.rate / rawHttpRate)],
        ['discue HTTP delivery, 10 listeners', String(http10.deliveries), http10.seconds.toFixed(2), fmtRate(http10.rate), fmtPct(http10.rate / rawHttpRate)],
      ],
      notes: [
        'Sink: node:http server in its own process, 200 with empty body; it counts requests and reports over IPC.',
        'discue: backlog published first (batches of 1,000), timed from `listener add` (from all) until the sink has them all.',
        '"vs raw" = against the mean of the two raw runs.',
      ],
    });

    log(`exec: raw spawn('cat'), ${EXEC_MESSAGES} spawns one at a time`);
    const rawExec = await rawSpawn(ctx.payloads, EXEC_MESSAGES);
    log(`exec: discue command delivery ('cat'), ${EXEC_MESSAGES}-message backlog`);
    const exec1 = await discueExec(client, ctx.payloads, EXEC_MESSAGES);
    log('exec: raw spawn again');
    const rawExec2 = await rawSpawn(ctx.payloads, EXEC_MESSAGES);
    const rawExecRate = (rawExec.rate + rawExec2.rate) / 2;
    ctx.report({
      title: `Command delivery vs raw child_process spawns (\`cat\`, data on stdin, ${EXEC_MESSAGES} messages)`,
      columns: ['what', 'deliveries', 'seconds', 'deliveries/s', 'vs raw'],
      rows: [
        ['raw spawn(cat), 1 at a time (before)', String(rawExec.deliveries), rawExec.seconds.toFixed(2), fmtRate(rawExec.rate), fmtPct(rawExec.rate / rawExecRate)],
        ['raw spawn(cat), 1 at a time (after)', String(rawExec2.deliveries), rawExec2.seconds.toFixed(2), fmtRate(rawExec2.rate), fmtPct(rawExec2.rate / rawExecRate)],
        ['discue command delivery, 1 listener', String(exec1.deliveries), exec1.seconds.toFixed(2), fmtRate(exec1.rate), fmtPct(exec1.rate / rawExecRate)],
      ],
      notes: ['discue: timed from `listener add` (from all) until listener.get reports all delivered (polled every 20 ms).'],
    });

    log(`latency: ${LATENCY_RATE} msgs/s for ${LATENCY_MS / 1000} s, 1 HTTP listener`);
    const lat = await latency(client, sink, ctx.payloads);
    ctx.report({
      title: `End-to-end latency: publish returned -> HTTP listener received (${LATENCY_RATE} msgs/s, ${LATENCY_MS / 1000} s)`,
      columns: ['measure', 'p50 ms', 'p99 ms', 'max ms', 'mean ms'],
      rows: [
        ['publish returned -> sink received', fmtMs(lat.latencyMs.p50), fmtMs(lat.latencyMs.p99), fmtMs(lat.latencyMs.max), fmtMs(lat.latencyMs.mean)],
        ['daemon publish time (id) -> sink received', fmtMs(lat.fromDaemonMs.p50), fmtMs(lat.fromDaemonMs.p99), fmtMs(lat.fromDaemonMs.max), fmtMs(lat.fromDaemonMs.mean)],
        ['(context) publish call -> returned', fmtMs(lat.publishMs.p50), fmtMs(lat.publishMs.p99), fmtMs(lat.publishMs.max), fmtMs(lat.publishMs.mean)],
      ],
      notes: [
        `${lat.messages} messages, 1 per publish, offered at ${fmtRate(lat.offeredRate)}/s (open loop, up to ${lat.maxInFlight} publishes in flight); ${lat.missing} not matched, ${lat.negative} negative.`,
        'Both sides take wall-clock ms as performance.timeOrigin + performance.now(); the sink is another process.',
        "The daemon's publish time is the id's whole ms (taken before the synced commit), so that row reads up to 1 ms high.",
      ],
    });
    await client.close();
    await daemon.stop();

    const rss = await rssDrain(ctx, sink);
    const curve = rss.samples.filter((_, i) => i % 4 === 0 || i === rss.samples.length - 1);
    ctx.report({
      title: `Daemon RSS: ${rss.listeners} HTTP listeners draining a ${rss.backlog.toLocaleString('en-US')}-message backlog`,
      columns: ['t s', 'RSS', 'anon', 'file-backed', 'delivered'],
      rows: curve.map((s) => [(s.ms / 1000).toFixed(2), fmtBytes(s.rssBytes), fmtBytes(s.anonBytes), fmtBytes(s.fileBytes), s.delivered.toLocaleString('en-US')]),
      notes: [
        `idle with the backlog stored ${fmtBytes(rss.idleBytes)}; start ${fmtBytes(rss.startBytes)}, peak ${fmtBytes(rss.peakBytes)}, end ${fmtBytes(rss.endBytes)}, VmHWM ${fmtBytes(rss.vmHwmBytes)}; anon start ${fmtBytes(rss.startAnonBytes)}, peak ${fmtBytes(rss.peakAnonBytes)}.`,
        `${rss.delivered.toLocaleString('en-US')} of ${rss.totalDeliveries.toLocaleString('en-US')} deliveries in ${rss.seconds.toFixed(1)} s (${fmtRate(rss.rate)}/s)` +
          (rss.complete ? ', drained.' : `, sampling stopped at ${RSS_MAX_MS / 1000} s (bounded).`),
        `RSS sampled every ${RSS_SAMPLE_MS} ms from /proc/PID/status (anon = RssAnon, file-backed = RssFile: mostly LevelDB's mmapped tables, bounded by the store); every 4th sample shown (all in results.json).`,
      ],
    });
    sink.stop();

    const targets: Target[] = [
      check(
        'HTTP delivery (1 listener) >= 50% of raw undici rate',
        `${fmtRate(http1.rate)}/s = ${fmtPct(http1.rate / rawHttpRate)} of ${fmtRate(rawHttpRate)}/s`,
        http1.rate / rawHttpRate,
        0.5,
      ),
      {
        target: '(context) HTTP delivery, 10 listeners vs raw undici',
        measured: `${fmtRate(http10.rate)}/s = ${fmtPct(http10.rate / rawHttpRate)}`,
        met: undefined,
        value: http10.rate / rawHttpRate,
      },
      check(
        'command delivery >= 80% of raw spawn rate',
        `${fmtRate(exec1.rate)}/s = ${fmtPct(exec1.rate / rawExecRate)} of ${fmtRate(rawExecRate)}/s`,
        exec1.rate / rawExecRate,
        0.8,
      ),
      check(`p50 latency < 2 ms at ${LATENCY_RATE} msgs/s`, `${fmtMs(lat.latencyMs.p50)} ms`, lat.latencyMs.p50, 2, true),
      check(`p99 latency < 20 ms at ${LATENCY_RATE} msgs/s`, `${fmtMs(lat.latencyMs.p99)} ms`, lat.latencyMs.p99, 20, true),
      check(
        'RSS flat while the backlog drains (peak - start < 50 MiB)',
        `start ${fmtBytes(rss.startBytes)}, peak ${fmtBytes(rss.peakBytes)}, end ${fmtBytes(rss.endBytes)} (+${fmtBytes(rss.peakBytes - rss.startBytes)})`,
        (rss.peakBytes - rss.startBytes) / (1024 * 1024),
        50,
        true,
      ),
    ];
    return {
      targets,
      data: {
        settings: { httpMessages: HTTP_MESSAGES, execMessages: EXEC_MESSAGES, latencyRate: LATENCY_RATE, latencyMs: LATENCY_MS, rssListeners: RSS_LISTENERS, rssBacklog: RSS_BACKLOG, rssMaxMs: RSS_MAX_MS },
        http: { raw: [rawHttp, rawHttp2], listeners1: http1, listeners10: http10 },
        exec: { raw: [rawExec, rawExec2], discue: exec1 },
        latency: lat,
        rss,
      },
    };
  },
};

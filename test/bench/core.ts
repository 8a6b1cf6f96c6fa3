/**
 * The broker's core (issue 2): raw classic-level limits, durable publish
 * over the socket at 1/16/256 in flight, whole-process time of the CLI,
 * and the broker holding 1,000,000 messages (publish rate, RSS, start time).
 *
 * Every comparison the targets make is measured in interleaved rounds
 * (lib.ts inRounds): on a shared 2-core VM, fsync latency and CPU speed
 * drift by 2x within a minute, so back-to-back blocks would compare noise.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '../../src/index.js';
import type { DiscueClient } from '../../src/index.js';
import { BIN, BenchDaemon, ROOT, discueEnv, startFloorServer } from './daemon.js';
import type { StartTiming } from './daemon.js';
import type { Publisher } from './load.js';
import { runLoad } from './load.js';
import type { Aggregate, Cleanup, Section, SectionContext, SectionResult, Table, Target } from './lib.js';
import { CASE_BOUND_MS, bounded, check, fmtBytes, guarded, fmtMs, fmtPct, fmtRate, fmtRatio, inRounds, log, scaled, sleep, summarize } from './lib.js';
import type { ProcessTiming } from './process.js';
import { timeCommands } from './process.js';
import { RawLevel } from './raw.js';
import { RawClient, answersHello } from './wire.js';
import { installed, natsJetStream } from './peers.js';

const ROUNDS = scaled(4, 1);
const WARMUP_MS = scaled(500, 200);
const DURATION_MS = scaled(2000, 500);
const RAW_BATCH = 256;
const FILL_MESSAGES = scaled(1_000_000, 100_000);
/** Messages per publish request while filling (the daemon's MAX_BATCH). */
const FILL_BATCH = 10_000;
const FILL_IN_FLIGHT = 4;
const PROCESS_RUNS = scaled(60, 8);
const PROCESS_ROUNDS = scaled(5, 1);
const PROCESS_WARMUP = scaled(5, 2);
const START_REPEATS = scaled(3, 1);
/** Starts of a daemon on a new empty store, each in a fresh home. */
const EMPTY_STARTS = scaled(5, 2);

interface Shape {
  connections: number;
  depth: number;
}

/** How "N in flight" is produced: connections × publishes pipelined on each. */
const SHAPES: { inFlight: number; shape: Shape }[] = [
  { inFlight: 1, shape: { connections: 1, depth: 1 } },
  { inFlight: 16, shape: { connections: 4, depth: 4 } },
  { inFlight: 256, shape: { connections: 8, depth: 32 } },
];
const SHAPE_256 = SHAPES[2]!.shape;

function libraryPublisher(home: string): () => Promise<Publisher> {
  return async () => {
    const client: DiscueClient = await connect({ home, autoStart: false });
    return { publish: (queue, messages) => client.publish(queue, messages), close: () => client.close() };
  };
}

function rawPublisher(socket: string): () => Promise<Publisher> {
  return async () => {
    const client = await RawClient.connect(socket);
    return { publish: (queue, messages) => client.publish(queue, messages), close: () => client.close() };
  };
}

/** test/bench/minimal-server.mjs in its own process: the floor for 1 in flight. Its socket path. */
async function startMinimalServer(ctx: SectionContext): Promise<string> {
  const dir = join(ctx.root, 'minimal');
  const socket = join(ctx.root, 'minimal.sock');
  await startFloorServer(ctx.cleanup, 'minimal-server.mjs', [socket, dir]);
  return socket;
}

async function withClient<T>(home: string, fn: (client: DiscueClient) => Promise<T>): Promise<T> {
  const client = await connect({ home, autoStart: false });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

function load(daemon: BenchDaemon, queue: string, shape: Shape, payloads: string[], client: 'library' | 'raw' = 'library') {
  return runLoad({
    open: client === 'library' ? libraryPublisher(daemon.home) : rawPublisher(daemon.socket),
    queue,
    ...shape,
    warmupMs: WARMUP_MS,
    durationMs: DURATION_MS,
    payloads,
    daemonCpuSeconds: () => daemon.cpuSeconds(),
  });
}

function cpuText(a: Aggregate): [string, string] {
  return [a.cpu?.daemon === undefined ? '-' : fmtPct(a.cpu.daemon), a.cpu === undefined ? '-' : fmtPct(a.cpu.client)];
}

function rateRow(what: string, client: string, shape: string, a: Aggregate): string[] {
  return [what, client, shape, a.failed ? 'FAILED' : fmtRate(a.rate), fmtMs(a.latencyMs.p50), fmtMs(a.latencyMs.p99), ...cpuText(a), a.rounds.map(fmtRate).join(' ')];
}

function signedPct(ratio: number): string {
  return (ratio >= 0 ? '+' : '') + fmtPct(ratio);
}

// ---- 1 and 2: the limits, and publish over the socket -------------------------

async function publishRates(ctx: SectionContext, daemon: BenchDaemon): Promise<Record<string, Aggregate>> {
  const raw = await RawLevel.open(join(ctx.root, 'raw-db'), ctx.payloads);
  ctx.cleanup.add(() => raw.close());
  await withClient(daemon.home, (c) => c.request('queue.create', { name: 'q' }));
  const minimal = await startMinimalServer(ctx);
  const cases = [
    { key: 'rawSingle', label: 'raw classic-level single synced puts', run: () => raw.singlePuts(WARMUP_MS, DURATION_MS) },
    { key: 'rawBatch', label: `raw classic-level synced batches of ${RAW_BATCH}`, run: () => raw.batches(RAW_BATCH, WARMUP_MS, DURATION_MS) },
    {
      key: 'rawChained',
      label: `raw classic-level synced chained batches of ${RAW_BATCH}`,
      run: () => raw.chainedBatches(RAW_BATCH, WARMUP_MS, DURATION_MS),
    },
  ];
  for (const { inFlight, shape } of SHAPES) {
    const how = `${inFlight} in flight (${shape.connections}x${shape.depth})`;
    cases.push({ key: `library${inFlight}`, label: `publish ${how}, library client`, run: () => load(daemon, 'q', shape, ctx.payloads) });
    cases.push({ key: `raw${inFlight}`, label: `publish ${how}, raw NDJSON client`, run: () => load(daemon, 'q', shape, ctx.payloads, 'raw') });
  }
  cases.push({
    key: 'minimal1',
    label: 'publish 1 in flight to the minimal server, raw NDJSON client',
    run: () =>
      runLoad({
        open: rawPublisher(minimal),
        queue: 'q',
        connections: 1,
        depth: 1,
        warmupMs: WARMUP_MS,
        durationMs: DURATION_MS,
        payloads: ctx.payloads,
      }),
  });
  cases.push({
    key: 'library256one',
    label: 'publish 256 in flight (1x256), library client',
    run: () => load(daemon, 'q', { connections: 1, depth: 256 }, ctx.payloads),
  });
  const results = await inRounds(ROUNDS, cases);
  await raw.close();
  return results;
}

// ---- peers: other brokers, when installed ----------------------------------------

async function peers(ctx: SectionContext, ours256: Aggregate): Promise<Table> {
  const rows: string[][] = [];
  const notes: string[] = [];
  if (installed('nats-server')) {
    log('peer: nats-server JetStream publish, 256 in flight');
    try {
      const nats = await bounded('nats JetStream', CASE_BOUND_MS, natsJetStream(ctx, 256, WARMUP_MS, DURATION_MS));
      const l = summarize(nats.latencies);
      rows.push(['NATS JetStream publish (file storage)', '256 on 1 conn', fmtRate(nats.rate), fmtMs(l.p50), fmtMs(l.p99), fmtRatio(ours256.rate / nats.rate)]);
      notes.push('nats-server -js: file storage syncs on its own interval (2.9: no per-message fsync), so it is less durable than a discue publish.');
    } catch (err) {
      rows.push(['NATS JetStream publish (file storage)', '256 on 1 conn', 'FAILED', '-', '-', '-']);
      notes.push(`nats: ${(err as Error).message}`);
    }
  } else notes.push('nats-server is not installed: JetStream skipped.');
  if (!installed('redis-server')) notes.push('redis-server is not installed: XADD with appendfsync always (50 clients) skipped.');
  else notes.push('redis-server is installed, but its XADD case is not written yet.');
  return {
    title: 'Peers: the same durable publish on other brokers, this run',
    columns: ['what', 'in flight', 'msgs/s', 'p50 ms', 'p99 ms', 'discue 256 in flight / peer'],
    rows,
    notes: [`One ${DURATION_MS / 1000} s run after ${WARMUP_MS / 1000} s warm-up; discue = the library row at 256 in flight above.`, ...notes],
  };
}

// ---- 3: whole processes ------------------------------------------------------------

async function processTimes(ctx: SectionContext, daemon: BenchDaemon): Promise<Record<string, ProcessTiming>> {
  const node = process.execPath;
  log(`whole-process times (${PROCESS_RUNS} runs each, in ${PROCESS_ROUNDS} rounds)`);
  const timings = await timeCommands(
    [
      { name: "node -e ''", argv: [node, '-e', ''] },
      { name: 'minimal publish script', argv: [node, join(ROOT, 'test', 'bench', 'minimal-publish.mjs'), 'q', 'x'] },
      { name: 'discue publish q --data x', argv: [node, BIN, 'publish', 'q', '--data', 'x'] },
      { name: 'discue --version', argv: [node, BIN, '--version'] },
      { name: 'discue queue list', argv: [node, BIN, 'queue', 'list'] },
    ],
    {
      runs: PROCESS_RUNS,
      rounds: PROCESS_ROUNDS,
      warmup: PROCESS_WARMUP,
      env: discueEnv(daemon.home),
      scratch: ctx.root,
      cleanup: ctx.cleanup,
    },
  );
  return Object.fromEntries(timings.map((t) => [t.name, t]));
}

// ---- daemon start on an empty store ---------------------------------------------

/**
 * One start of the floor (test/bench/start-floor.mjs): spawn -> a hello
 * answered, as for `discue daemon start`; the server is killed after.
 */
async function floorStart(cleanup: Cleanup, dir: string, withLevel: boolean): Promise<number> {
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'floor.sock');
  // The server is detached, like the daemon: stopped by the pid it writes,
  // once (a second kill could hit a reused pid), also if the run is cut short.
  let stopped = false;
  const stop = () => {
    if (stopped || !existsSync(`${socket}.pid`)) return;
    stopped = true;
    process.kill(Number(readFileSync(`${socket}.pid`, 'utf8')), 'SIGKILL');
  };
  cleanup.add(stop, stop);
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(ROOT, 'test', 'bench', 'start-floor.mjs'), socket, ...(withLevel ? [join(dir, 'db')] : [])], { stdio: 'ignore' });
  const deadline = Date.now() + 60_000;
  while (!(await answersHello(socket))) {
    if (Date.now() > deadline) throw new Error(`start floor: no answer on ${socket} within 60 s`);
    await sleep(2);
  }
  const ms = performance.now() - t0;
  await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  stop();
  return ms;
}

interface EmptyStarts {
  discue: StartTiming[];
  /** Two Node start-ups and a socket: spawn -> hello, ms. */
  floor: number[];
  /** The same with classic-level loaded and an empty LevelDB opened first. */
  floorLevel: number[];
}

/** discue and its floors take turns, so a drifting machine moves all three alike. */
async function emptyStarts(ctx: SectionContext): Promise<EmptyStarts> {
  const result: EmptyStarts = { discue: [], floor: [], floorLevel: [] };
  for (let i = 0; i < EMPTY_STARTS; i++) {
    const daemon = new BenchDaemon(join(ctx.root, `empty-${i}`), ctx.cleanup);
    result.discue.push(await daemon.start());
    await daemon.stop();
    result.floor.push(await floorStart(ctx.cleanup, join(ctx.root, `floor-${i}`), false));
    result.floorLevel.push(await floorStart(ctx.cleanup, join(ctx.root, `floor-level-${i}`), true));
  }
  return result;
}

// ---- 4 and 5: a million messages ---------------------------------------------------

async function fill(daemon: BenchDaemon, payloads: string[], queue: string, total: number) {
  const client = await RawClient.connect(daemon.socket);
  const start = performance.now();
  let sent = 0;
  let next = 0;
  const worker = async () => {
    while (sent < total) {
      const n = Math.min(FILL_BATCH, total - sent);
      sent += n;
      const messages = new Array<{ data: string }>(n);
      for (let i = 0; i < n; i++) messages[i] = { data: payloads[next++ % payloads.length]! };
      await client.publish(queue, messages);
    }
  };
  await Promise.all(Array.from({ length: FILL_IN_FLIGHT }, worker));
  client.close();
  const seconds = (performance.now() - start) / 1000;
  return { messages: total, seconds, rate: total / seconds, batch: FILL_BATCH, inFlight: FILL_IN_FLIGHT };
}

async function atScale(ctx: SectionContext) {
  const big = new BenchDaemon(join(ctx.root, 'h2'), ctx.cleanup);
  log('starting a second daemon on an empty store');
  const emptyStart = await big.start();
  await withClient(big.home, (c) => c.request('queue.create', { name: 'big' }));
  log(`filling queue "big" with ${FILL_MESSAGES.toLocaleString('en-US')} messages (${FILL_IN_FLIGHT} x ${FILL_BATCH}-message publishes in flight)`);
  const filled = await fill(big, ctx.payloads, 'big', FILL_MESSAGES);
  const afterFill = big.memory();
  const statusAfterFill = await withClient(big.home, (c) => c.request('daemon.status', {}));
  log('stopping it (clean shutdown) and starting it again with the messages stored');
  const t = performance.now();
  await big.stop();
  const stopMs = performance.now() - t;
  const starts: StartTiming[] = [];
  for (let i = 0; i < START_REPEATS; i++) {
    if (i > 0) await big.stop();
    starts.push(await big.start());
  }
  const afterRestart = big.memory();
  const storedAtStart = (await withClient(big.home, (c) => c.request('queue.get', { name: 'big' }))).messages;

  // The comparison: a fresh daemon on an empty store, taking turns with the full one.
  const fresh = new BenchDaemon(join(ctx.root, 'h3'), ctx.cleanup);
  await fresh.start();
  const newQueue = async (daemon: BenchDaemon, name: string) => {
    await withClient(daemon.home, (c) => c.request('queue.create', { name }));
    return load(daemon, name, SHAPE_256, ctx.payloads);
  };
  const rates = await inRounds(ROUNDS, [
    { key: 'fresh', label: 'publish 256 in flight: fresh store, empty queue', run: (r) => newQueue(fresh, `empty${r}`) },
    {
      key: 'big',
      label: `publish 256 in flight: queue holding ${FILL_MESSAGES.toLocaleString('en-US')}+`,
      run: () => load(big, 'big', SHAPE_256, ctx.payloads),
    },
    { key: 'bigStoreEmptyQueue', label: 'publish 256 in flight: full store, new empty queue', run: (r) => newQueue(big, `empty${r}`) },
  ]);
  const afterLoad = big.memory();
  await fresh.stop();
  await big.stop();
  return {
    emptyStart,
    filled,
    storedAtStart,
    memory: { afterFill, statusRssAfterFill: statusAfterFill.rssBytes, afterRestart, afterLoad },
    stopMs,
    starts,
    startSocketMs: summarize(starts.map((s) => s.socketMs)),
    rates,
  };
}

// ---- the section -------------------------------------------------------------------

export const coreSection: Section = {
  name: 'core',
  async run(ctx: SectionContext): Promise<SectionResult> {
    const daemon = new BenchDaemon(join(ctx.root, 'h1'), ctx.cleanup);
    log('starting a daemon on an empty store');
    const firstStart = await daemon.start();
    const idle = daemon.memory();

    const rates = await publishRates(ctx, daemon);
    const r = (key: string) => rates[key]!;
    const rawRow = (what: string, a: Aggregate) => [what, 'classic-level', 'in-process', fmtRate(a.rate), fmtMs(a.latencyMs.p50), fmtMs(a.latencyMs.p99), '-', fmtPct(a.cpu?.client ?? NaN), a.rounds.map(fmtRate).join(' ')];
    const rows: string[][] = [
      rawRow('raw single synced put', r('rawSingle')),
      rawRow(`raw synced batch of ${RAW_BATCH}`, r('rawBatch')),
      rawRow(`raw synced chained batch of ${RAW_BATCH}`, r('rawChained')),
    ];
    for (const { inFlight, shape } of SHAPES) {
      const s = `${shape.connections} conn x ${shape.depth}`;
      rows.push(rateRow(`publish, ${inFlight} in flight`, 'library', s, r(`library${inFlight}`)));
      rows.push(rateRow(`publish, ${inFlight} in flight`, 'raw NDJSON', s, r(`raw${inFlight}`)));
    }
    rows.push(rateRow('publish, 256 in flight', 'library', '1 conn x 256', r('library256one')));
    rows.push(rateRow('minimal server, 1 in flight', 'raw NDJSON', '1 conn x 1', r('minimal1')));
    ctx.report({
      title: 'Durable publish over the socket vs raw classic-level (200-byte messages, 1 message per publish)',
      columns: ['what', 'client', 'in flight', 'msgs/s', 'p50 ms', 'p99 ms', 'daemon cpu', 'client cpu', 'msgs/s per round'],
      rows,
      notes: [
        `msgs/s = median of ${ROUNDS} interleaved rounds of ${DURATION_MS / 1000} s (after ${WARMUP_MS / 1000} s warm-up each); latencies pooled over the rounds.`,
        'Raw rows: latency per put / per batch; "batch" = db.batch(array, {sync:true}), "chained" = db.batch().put()...write({sync:true}).',
        'Publish rows: closed loop, each in-flight slot sends its next publish when',
        'the previous one is acknowledged (= synced); latency = publish to acknowledgement.',
        '"library" = connect() from src/index.ts, what users get; "raw NDJSON" = test/bench/wire.ts, no checks.',
        'minimal server = test/bench/minimal-server.mjs: NDJSON over a Unix socket, one synced put per publish, no checks (the floor for 1 in flight).',
        'cpu = share of one core; the load generator runs in the benchmark process and shares the 2 cores with the daemon.',
      ],
    });

    ctx.report(await peers(ctx, r('library256')));

    const proc = await processTimes(ctx, daemon);
    const base = proc["node -e ''"]!;
    const minimal = proc['minimal publish script']!;
    ctx.report({
      title: 'Whole-process wall time against a running daemon',
      columns: ['command', 'mean ms', 'median ms', 'min ms', 'stddev', 'median vs node -e', 'median vs minimal'],
      rows: Object.values(proc).map((t) => [
        t.name,
        fmtMs(t.ms.mean, 1),
        fmtMs(t.ms.median, 1),
        fmtMs(t.ms.min, 1),
        fmtMs(t.ms.stddev, 1),
        fmtRatio(t.ms.median / base.ms.median),
        fmtRatio(t.ms.median / minimal.ms.median),
      ]),
      notes: [
        `${Object.values(proc)[0]!.tool} -N, ${PROCESS_RUNS} runs per command in ${PROCESS_ROUNDS} rounds (every command timed in each round);`,
        'minimal = test/bench/minimal-publish.mjs: connect, hello, the same publish request, print the id.',
      ],
    });
    await daemon.stop();

    log(`daemon start on an empty store, ${EMPTY_STARTS} times`);
    const starts = await emptyStarts(ctx);
    const empty = starts.discue;
    const emptyMs = summarize(empty.map((s) => s.socketMs));
    const scale = await atScale(ctx);
    const million = FILL_MESSAGES.toLocaleString('en-US');
    const fresh = scale.rates.fresh!;
    const big = scale.rates.big!;
    const bigEmpty = scale.rates.bigStoreEmptyQueue!;
    ctx.report({
      title: `Holding ${million} messages`,
      columns: ['measure', 'value'],
      rows: [
        [`fill (${FILL_IN_FLIGHT} x ${FILL_BATCH}-message publishes in flight)`, `${fmtRate(scale.filled.rate)} msgs/s, ${scale.filled.seconds.toFixed(1)} s`],
        ['publish, 256 in flight: fresh store, empty queue', `${fmtRate(fresh.rate)} msgs/s  (p50 ${fmtMs(fresh.latencyMs.p50)} / p99 ${fmtMs(fresh.latencyMs.p99)} ms)`],
        [`publish, 256 in flight: queue holding ${million}+`, `${fmtRate(big.rate)} msgs/s  (p50 ${fmtMs(big.latencyMs.p50)} / p99 ${fmtMs(big.latencyMs.p99)} ms)`],
        ['publish, 256 in flight: same store, new empty queue', `${fmtRate(bigEmpty.rate)} msgs/s  (p50 ${fmtMs(bigEmpty.latencyMs.p50)} / p99 ${fmtMs(bigEmpty.latencyMs.p99)} ms)`],
        ['daemon RSS, idle, empty store', fmtBytes(idle.rssBytes)],
        [`daemon RSS after storing ${million} (peak)`, `${fmtBytes(scale.memory.afterFill.rssBytes)} (${fmtBytes(scale.memory.afterFill.peakBytes)})`],
        [`daemon RSS after restart with ${million}`, fmtBytes(scale.memory.afterRestart.rssBytes)],
        ['daemon RSS after the publish rounds (peak)', `${fmtBytes(scale.memory.afterLoad.rssBytes)} (${fmtBytes(scale.memory.afterLoad.peakBytes)})`],
        ['start, empty store: spawn -> hello answered (first start of the run)', `${fmtMs(firstStart.socketMs, 0)} ms (daemon's own startupMs ${String(firstStart.loggedStartupMs)})`],
        [
          'start, empty store: spawn -> hello answered',
          `${fmtMs(emptyMs.median, 0)} ms median of ${EMPTY_STARTS} (${empty.map((s) => fmtMs(s.socketMs, 0)).join(', ')}; own startupMs ${empty.map((s) => String(s.loggedStartupMs)).join(', ')}; since its exec ${empty.map((s) => String(s.loggedBootMs)).join(', ')})`,
        ],
        ['  (floor) two Node start-ups + a socket: spawn -> hello answered', `${fmtMs(summarize(starts.floor).median, 0)} ms median of ${EMPTY_STARTS} (${starts.floor.map((ms) => fmtMs(ms, 0)).join(', ')})`],
        ['  (floor) the same + classic-level opening an empty store', `${fmtMs(summarize(starts.floorLevel).median, 0)} ms median of ${EMPTY_STARTS} (${starts.floorLevel.map((ms) => fmtMs(ms, 0)).join(', ')})`],
        [`start with ${million}: spawn -> hello answered`, `${fmtMs(scale.startSocketMs.median, 0)} ms median of ${START_REPEATS} (${scale.starts.map((s) => fmtMs(s.socketMs, 0)).join(', ')})`],
        [`  daemon's own startupMs / \`daemon start\` exits`, `${scale.starts.map((s) => String(s.loggedStartupMs)).join(', ')} ms / ${scale.starts.map((s) => fmtMs(s.cliExitMs, 0)).join(', ')} ms`],
        [`clean stop (SIGTERM) with ${million} stored`, `${fmtMs(scale.stopMs, 0)} ms`],
      ],
      notes: [
        `The three publish cases take turns, ${ROUNDS} rounds of ${DURATION_MS / 1000} s; each round's "empty queue" is a new queue; medians.`,
        'Start: from spawning `discue daemon start` (which spawns the detached daemon) until the socket answers a hello, polled every 2 ms.',
        "The daemon's log line gives startupMs (its Server created -> listening) and bootMs (its process exec -> listening: Node's own start-up, then module loading, then startupMs).",
        'Floors: test/bench/start-floor.mjs, a starter that spawns a detached server answering NDJSON, nothing else; run in turn with the discue starts.',
      ],
    });

    const lib1 = r('library1');
    const minimal1 = r('minimal1');
    const lib256 = r('library256');
    const rawSingle = r('rawSingle');
    const rawBatch = r('rawBatch');
    const rawChained = r('rawChained');
    const publishProc = proc['discue publish q --data x']!;
    const version = proc['discue --version']!;
    const listProc = proc['discue queue list']!;
    const ratioText = (a: ProcessTiming, b: ProcessTiming) =>
      `median ${fmtMs(a.ms.median, 1)} vs ${fmtMs(b.ms.median, 1)} ms = ${fmtRatio(a.ms.median / b.ms.median)} (mean ${fmtRatio(a.ms.mean / b.ms.mean)})`;
    const targets: Target[] = [
      guarded('1 in flight >= 85% of raw single synced puts', [lib1, rawSingle], () =>
        check(
          '1 in flight >= 85% of raw single synced puts',
          `${fmtRate(lib1.rate)}/s = ${fmtPct(lib1.rate / rawSingle.rate)} of ${fmtRate(rawSingle.rate)}/s`,
          lib1.rate / rawSingle.rate,
          0.85,
        ),
      ),
      guarded('1 in flight >= 0.95x minimal server', [lib1, minimal1], () =>
        check(
          '1 in flight >= 0.95x minimal server',
          `${fmtRate(lib1.rate)}/s = ${fmtRatio(lib1.rate / minimal1.rate)} of ${fmtRate(minimal1.rate)}/s`,
          lib1.rate / minimal1.rate,
          0.95,
        ),
      ),
      guarded('256 in flight >= 60% of raw synced-batch rate', [lib256, rawBatch], () =>
        check(
          '256 in flight >= 60% of raw synced-batch rate',
          `${fmtRate(lib256.rate)}/s = ${fmtPct(lib256.rate / rawBatch.rate)} of ${fmtRate(rawBatch.rate)}/s`,
          lib256.rate / rawBatch.rate,
          0.6,
        ),
      ),
      {
        target: '(context) 256 in flight vs raw chained-batch rate',
        measured: `${fmtPct(lib256.rate / rawChained.rate)} of ${fmtRate(rawChained.rate)}/s`,
        met: undefined,
        value: lib256.rate / rawChained.rate,
      },
      check('`discue publish` process <= 1.1x minimal script', ratioText(publishProc, minimal), publishProc.ms.median / minimal.ms.median, 1.1, true),
      check('`discue queue list` process <= 1.1x minimal script', ratioText(listProc, minimal), listProc.ms.median / minimal.ms.median, 1.1, true),
      check("`discue --version` <= 1.2x `node -e ''`", ratioText(version, base), version.ms.median / base.ms.median, 1.2, true),
      guarded(`<= 10% slowdown at ${million} stored (256 in flight)`, [big, fresh], () =>
        check(
          `<= 10% slowdown at ${million} stored (256 in flight)`,
          `${fmtRate(big.rate)}/s vs ${fmtRate(fresh.rate)}/s fresh: ${signedPct(big.rate / fresh.rate - 1)}`,
          big.rate / fresh.rate,
          0.9,
        ),
      ),
      check('daemon start, empty store <= 150 ms', `${fmtMs(emptyMs.median, 0)} ms (median of ${EMPTY_STARTS}); floor ${fmtMs(summarize(starts.floor).median, 0)} ms, with LevelDB ${fmtMs(summarize(starts.floorLevel).median, 0)} ms`, emptyMs.median, 150, true),
      check(
        `start with ${million} messages < 1 s`,
        `${fmtMs(scale.startSocketMs.median, 0)} ms (median of ${START_REPEATS})`,
        scale.startSocketMs.median,
        1000,
        true,
      ),
    ];
    return {
      targets,
      data: {
        settings: {
          rounds: ROUNDS,
          warmupMs: WARMUP_MS,
          durationMs: DURATION_MS,
          rawBatch: RAW_BATCH,
          fillMessages: FILL_MESSAGES,
          shapes: SHAPES,
          processRuns: PROCESS_RUNS,
          processRounds: PROCESS_ROUNDS,
        },
        rates,
        process: proc,
        startEmpty: firstStart,
        startsEmpty: empty,
        memoryIdleEmpty: idle,
        scale,
      },
    };
  },
};

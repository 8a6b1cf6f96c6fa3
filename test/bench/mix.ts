/**
 * The mix (issue 8): live publishing at a fixed rate to a queue with 12 HTTP
 * listeners and 2 command listeners, as in the soak that fell behind. Run
 * twice in one go, on fresh daemons that differ only in how commands are
 * spawned:
 *   - inline:  DISCUE_SPAWNER=inline, the daemon forks each command on its
 *              own thread, one per event-loop iteration (the code before the
 *              spawner, minus execa, which added ~2 ms per spawn on top);
 *   - process: the default, commands run by the spawner process.
 * Each run publishes for a warm-up first, then measures over the window: HTTP delivery lag (sink receive time minus the
 * envelope's publishedAt), HTTP and command deliveries/s against demand,
 * daemon (and spawner) CPU. Then the cost of one command delivery to the
 * event loop that delivers it, both ways, at the daemon's size
 * (spawn-cost.mjs).
 *
 * BENCH_MIX_RATE (msgs/s, default 300) and BENCH_MIX_SECONDS change the load;
 * BENCH_MIX_PROFILE=1 runs each daemon under --cpu-prof and prints where its
 * thread spent the window.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile, fork, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from '../../src/index.js';
import type { DiscueClient } from '../../src/index.js';
import { BIN, BenchDaemon, ROOT, cpuSeconds, discueEnv } from './daemon.js';
import type { Section, SectionContext, SectionResult, Table, Target } from './lib.js';
import { check, fmtBytes, fmtMs, fmtRate, log, scaled, sleep, summarize } from './lib.js';
import { answersHello } from './wire.js';

const RATE = Number(process.env.BENCH_MIX_RATE ?? 300);
const WINDOW_MS = Number(process.env.BENCH_MIX_SECONDS ?? scaled(40, 10)) * 1000;
const WARMUP_MS = scaled(10_000, 3_000);
const HTTP_LISTENERS = 12;
const COMMAND_LISTENERS = 2;
const PROFILE = process.env.BENCH_MIX_PROFILE === '1';
const SPAWN_COMMANDS = scaled(200, 50);
const MAX_PUBLISHES_IN_FLIGHT = 2_000;

/** `none`: the control, the same HTTP listeners without command listeners (what the machine allows now). */
type RunMode = 'none' | Mode;
type Mode = 'inline' | 'process';

// ---- the sink ---------------------------------------------------------------------

type SinkMessage = { type: 'listening'; port: number } | { type: 'taken'; count: number; lags: number[] };

class MixSink {
  private waiting: ((m: SinkMessage) => void) | undefined;
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on('message', (m: SinkMessage) => {
      if (m.type === 'taken') this.waiting?.(m);
    });
  }

  static async start(ctx: SectionContext): Promise<MixSink> {
    const child = fork(join(ROOT, 'test', 'bench', 'mix-server.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    ctx.cleanup.add(kill, kill);
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('message', (m: SinkMessage) => (m.type === 'listening' ? resolve(m.port) : undefined));
    });
    return new MixSink(child, `http://127.0.0.1:${port}/hook`);
  }

  /** Requests (and their lags) since the last take. */
  take(): Promise<{ count: number; lags: number[] }> {
    return new Promise((resolve) => {
      this.waiting = (m) => {
        this.waiting = undefined;
        if (m.type === 'taken') resolve(m);
      };
      this.child.send({ cmd: 'take' });
    });
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

// ---- one run of the mix ---------------------------------------------------------------

interface MixResult {
  mode: RunMode;
  daemonPid: number;
  seconds: number;
  published: number;
  httpDemandRate: number;
  httpRate: number;
  httpBehind: number;
  lagMs: ReturnType<typeof summarize>;
  lastSecondLagMaxMs: number;
  commandRate: number;
  daemonCpuPct: number;
  spawnerCpuPct: number | undefined;
  daemonPeakRss: number;
  perSecond: number[];
  profile?: ProfileLine[];
}

/** The daemon's direct child running spawner-process.js, if any. */
function spawnerOf(daemonPid: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === daemonPid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('spawner-process')) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

async function commandsDelivered(client: DiscueClient, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) for (const p of (await client.request('listener.get', { ref: id })).progress ?? []) n += p.delivered;
  return n;
}

async function runMix(ctx: SectionContext, sink: MixSink, mode: RunMode): Promise<MixResult> {
  const profileDir = join(ctx.root, `prof-${mode}`);
  const env: NodeJS.ProcessEnv = mode === 'none' ? {} : { DISCUE_SPAWNER: mode };
  const commandListeners = mode === 'none' ? 0 : COMMAND_LISTENERS;
  const daemon = new BenchDaemon(join(ctx.root, `d-mix-${mode}`), ctx.cleanup, env);
  if (PROFILE) await startProfiled(daemon, env, profileDir);
  else await daemon.start();
  const daemonPid = daemon.pid!;
  const client = await connect({ home: daemon.home, autoStart: false });
  try {
    await client.request('queue.create', { name: 'mix' });
    for (let i = 0; i < HTTP_LISTENERS; i++) await client.request('listener.add', { kind: 'http', queues: ['mix'], url: sink.url, from: 'new' });
    const commandIds: string[] = [];
    for (let i = 0; i < commandListeners; i++) {
      commandIds.push((await client.request('listener.add', { kind: 'exec', queues: ['mix'], command: 'cat', from: 'new' })).id);
    }
    // Warm-up: every listener running, the spawner (if any) forked, connections open.
    for (let i = 0; i < 10; i++) await client.publish('mix', { data: ctx.payloads[i]! });
    for (let got = 0; got < 10 * HTTP_LISTENERS; ) {
      got += (await sink.take()).count;
      await sleep(50);
    }
    const deadline = Date.now() + 30_000;
    while ((await commandsDelivered(client, commandIds)) < 10 * commandListeners && Date.now() < deadline) await sleep(50);
    await sink.take();

    let published = 0;
    let inFlight = 0;
    let failed: unknown;
    /** Publishes at RATE, open loop, for `ms`; `each` runs about once a second. */
    const publishFor = async (ms: number, each: () => Promise<void>) => {
      const t0 = performance.now();
      const base = published;
      let nextTick = t0 + 1000;
      while (performance.now() - t0 < ms) {
        const due = base + Math.floor(((performance.now() - t0) * RATE) / 1000) + 1;
        while (published < due && inFlight < MAX_PUBLISHES_IN_FLIGHT) {
          const data = ctx.payloads[published++ % ctx.payloads.length]!;
          inFlight++;
          void client.publish('mix', { data }).then(
            () => inFlight--,
            (err: unknown) => (failed = err),
          );
        }
        if (failed) throw failed;
        if (performance.now() >= nextTick) {
          nextTick += 1000;
          await each();
        }
        await sleep(1);
      }
    };
    // Steady state, as in a soak: the same load for a while before measuring (JIT, connections, buffers).
    log(`mix (${mode}): ${RATE} msgs/s, ${WARMUP_MS / 1000} s warm-up, then ${WINDOW_MS / 1000} s measured, ${HTTP_LISTENERS} HTTP + ${commandListeners} command listeners`);
    let warmDelivered = 0;
    await publishFor(WARMUP_MS, async () => {
      warmDelivered += (await sink.take()).count;
    });
    warmDelivered += (await sink.take()).count;
    const warmPublished = published;

    const spawner = mode === 'process' ? spawnerOf(daemonPid) : undefined;
    const commands0 = await commandsDelivered(client, commandIds);
    const cpu0 = daemon.cpuSeconds();
    const spawnerCpu0 = spawner === undefined ? 0 : cpuSeconds(spawner);
    const lags: number[] = [];
    const perSecond: number[] = [];
    let lastSecondLags: number[] = [];
    let peakRss = 0;
    const t0 = performance.now();
    await publishFor(WINDOW_MS, async () => {
      const taken = await sink.take();
      perSecond.push(taken.count);
      for (const l of taken.lags) lags.push(l);
      lastSecondLags = taken.lags;
      peakRss = Math.max(peakRss, daemon.memory().rssBytes);
    });
    const seconds = (performance.now() - t0) / 1000;
    const taken = await sink.take();
    for (const l of taken.lags) lags.push(l);
    const cpu = daemon.cpuSeconds() - cpu0;
    const spawnerCpu = spawner === undefined ? undefined : cpuSeconds(spawner) - spawnerCpu0;
    const commands = (await commandsDelivered(client, commandIds)) - commands0;
    const httpDelivered = lags.length;
    return {
      mode,
      daemonPid,
      seconds,
      published: published - warmPublished,
      httpDemandRate: ((published - warmPublished) * HTTP_LISTENERS) / seconds,
      httpRate: httpDelivered / seconds,
      httpBehind: published * HTTP_LISTENERS - warmDelivered - httpDelivered,
      lagMs: summarize(lags),
      lastSecondLagMaxMs: Math.max(0, ...lastSecondLags),
      commandRate: commands / seconds,
      daemonCpuPct: (cpu / seconds) * 100,
      spawnerCpuPct: spawnerCpu === undefined ? undefined : (spawnerCpu / seconds) * 100,
      daemonPeakRss: peakRss,
      perSecond,
    };
  } finally {
    await client.close();
    // SIGTERM: a clean exit, on which --cpu-prof writes the profile.
    await daemon.stop();
    if (PROFILE) log(`mix (${mode}): profile in ${profileDir}`);
  }
}

async function runMixProfiled(ctx: SectionContext, sink: MixSink, mode: RunMode): Promise<MixResult> {
  const result = await runMix(ctx, sink, mode);
  if (PROFILE) result.profile = readProfile(join(ctx.root, `prof-${mode}`), result.daemonPid);
  return result;
}

// ---- the daemon's CPU profile ------------------------------------------------------------

/**
 * Node refuses --cpu-prof in NODE_OPTIONS, and `daemon start` spawns the
 * daemon without flags: so the profiled daemon is run directly in the
 * foreground form (the process `daemon start` would have spawned), detached.
 */
async function startProfiled(daemon: BenchDaemon, env: NodeJS.ProcessEnv, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  mkdirSync(daemon.home, { recursive: true, mode: 0o700 });
  const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, BIN, 'daemon', 'start', '--foreground'], {
    env: { ...discueEnv(daemon.home), ...env },
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  daemon.pid = child.pid;
  const deadline = Date.now() + 60_000;
  while (!(await answersHello(daemon.socket))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`profiled daemon did not answer on ${daemon.socket}`);
    await sleep(10);
  }
}

interface ProfileLine {
  fn: string;
  ms: number;
  pct: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function of the daemon's profile (the file whose name carries its pid), top first. */
function readProfile(dir: string, pid: number): ProfileLine[] {
  const file = readdirSync(dir).find((f) => f.includes(`.${pid}.`) && f.endsWith('.cpuprofile'));
  if (!file) return [];
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]!)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? ` ${url.replace(/^.*\/(node_modules|dist|lib)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'}${where}`;
    const us = profile.timeDeltas[i + 1] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([fn, us]) => ({ fn, ms: us / 1000, pct: (us / total) * 100 }));
}

// ---- spawn cost ----------------------------------------------------------------------------

interface SpawnCost {
  mode: Mode;
  commands: number;
  rssBytes: number;
  activeMsPerCommand: number;
  cpuMsPerCommand: number;
  wallMsPerCommand: number;
  maxDelayMs: number;
  p99DelayMs: number;
}

async function spawnCost(mode: Mode, rssMb: number): Promise<SpawnCost> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'test', 'bench', 'spawn-cost.mjs'), String(SPAWN_COMMANDS), String(rssMb)], {
    env: { ...process.env, DISCUE_SPAWNER: mode },
    maxBuffer: 1 << 20,
  });
  return { mode, ...(JSON.parse(stdout.trim().split('\n').pop()!) as Omit<SpawnCost, 'mode'>) };
}

// ---- the section ----------------------------------------------------------------------------

export const mixSection: Section = {
  name: 'mix',
  async run(ctx: SectionContext): Promise<SectionResult> {
    const sink = await MixSink.start(ctx);
    const runs: MixResult[] = [];
    for (const mode of ['none', 'inline', 'process'] as const) {
      const run = await runMixProfiled(ctx, sink, mode);
      runs.push(run);
    }
    sink.stop();
    const row = (r: MixResult): string[] => [
      { none: 'control: no command listeners', inline: 'before: spawned on the daemon thread', process: 'after: spawner process' }[r.mode],
      fmtRate(r.httpDemandRate),
      fmtRate(r.httpRate),
      r.httpBehind.toLocaleString('en-US'),
      fmtMs(r.lagMs.p50, 0),
      fmtMs(r.lagMs.p99, 0),
      fmtMs(r.lagMs.max, 0),
      r.mode === 'none' ? '-' : fmtRate(r.commandRate),
      `${r.daemonCpuPct.toFixed(0)}%` + (r.spawnerCpuPct === undefined ? '' : ` (+${r.spawnerCpuPct.toFixed(0)}%)`),
      fmtBytes(r.daemonPeakRss),
    ];
    ctx.report({
      title: `Mix: ${RATE} msgs/s live, ${HTTP_LISTENERS} HTTP + ${COMMAND_LISTENERS} command listeners (\`cat\`), ${WINDOW_MS / 1000} s each, and the control without them`,
      columns: ['spawning', 'HTTP demand/s', 'HTTP deliv/s', 'HTTP behind at end', 'lag p50 ms', 'lag p99 ms', 'lag max ms', 'cmd deliv/s', 'daemon CPU (spawner)', 'daemon RSS'],
      rows: runs.map(row),
      notes: [
        `Each run: ${WARMUP_MS / 1000} s at the same rate first (not measured), then the window. lag = sink receive time - envelope publishedAt, over every HTTP delivery that arrived in the window; what had not arrived by its end is "behind at end".`,
        `lag max in the last second: ${runs.map((r) => `${r.mode} ${fmtMs(r.lastSecondLagMaxMs, 0)} ms`).join(', ')}.`,
        `HTTP deliveries per second: ${runs.map((r) => `${r.mode} [${r.perSecond.join(' ')}]`).join('; ')}.`,
        'CPU in % of one core over the window; "+" is the spawner process (its commands not counted). Fresh daemon per run, same sink process.',
        'The control shows what this machine delivers to the same HTTP listeners at this moment; on a busy machine the sink and the daemon wait for a core, and that, not the daemon, sets the pace.',
        '"before" is DISCUE_SPAWNER=inline: the old spawning path with plain child_process.spawn in place of execa (execa cost ~2 ms more per spawn).',
      ],
    });
    const rssMb = Math.max(...runs.map((r) => r.daemonPeakRss)) / (1024 * 1024);
    log(`spawn cost: ${SPAWN_COMMANDS} commands one at a time, in a process of ~${rssMb.toFixed(0)} MB, each way`);
    const costs: SpawnCost[] = [];
    for (const mode of ['inline', 'process'] as const) costs.push(await spawnCost(mode, rssMb));
    ctx.report({
      title: `Event-loop time per command delivery (\`cat\`, ${SPAWN_COMMANDS} one at a time, process grown to the daemon's peak RSS)`,
      columns: ['spawning', 'RSS', 'loop busy ms / command', 'CPU ms / command', 'longest block ms', 'p99 block ms', 'wall ms / command'],
      rows: costs.map((c) => [
        c.mode === 'inline' ? 'on the delivering thread (before)' : 'spawner process (after)',
        fmtBytes(c.rssBytes),
        fmtMs(c.activeMsPerCommand, 3),
        fmtMs(c.cpuMsPerCommand, 3),
        fmtMs(c.maxDelayMs, 2),
        fmtMs(c.p99DelayMs, 2),
        fmtMs(c.wallMsPerCommand, 2),
      ]),
      notes: [
        'busy = event loop utilisation (active time) over the run / commands: everything the thread did per command (spawn, pipes, IPC, JSON).',
        'CPU = process.cpuUsage() (user + system, all of the process\'s threads) / commands.',
        'block = monitorEventLoopDelay (1 ms resolution, a second pass, since its timer costs busy time of its own): the longest time the loop could not serve anything else.',
      ],
    });
    const profileTables: Table[] = runs
      .filter((r) => r.profile && r.profile.length > 0)
      .map((r) => ({
        title: `Daemon CPU profile during the mix (${r.mode}): self time, top functions`,
        columns: ['function', 'self ms', '% of samples'],
        rows: r.profile!.map((p) => [p.fn, p.ms.toFixed(0), `${p.pct.toFixed(1)}%`]),
      }));
    for (const t of profileTables) ctx.report(t);

    const after = runs.find((r) => r.mode === 'process')!;
    const before = runs.find((r) => r.mode === 'inline')!;
    const cost = costs.find((c) => c.mode === 'process')!;
    const targets: Target[] = [
      check(
        `mix: HTTP lag p99 < 1 s with ${COMMAND_LISTENERS} command listeners (spawner process)`,
        `${fmtMs(after.lagMs.p99, 0)} ms (before: ${fmtMs(before.lagMs.p99, 0)} ms)`,
        after.lagMs.p99,
        1000,
        true,
      ),
      check(
        'event-loop time per command delivery < 1 ms (spawner process)',
        `${fmtMs(cost.activeMsPerCommand, 3)} ms (before: ${fmtMs(costs.find((c) => c.mode === 'inline')!.activeMsPerCommand, 3)} ms)`,
        cost.activeMsPerCommand,
        1,
        true,
      ),
    ];
    return { targets, data: { settings: { rate: RATE, windowMs: WINDOW_MS, httpListeners: HTTP_LISTENERS, commandListeners: COMMAND_LISTENERS }, runs, costs } };
  },
};

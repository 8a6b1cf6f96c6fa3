/**
 * The delivery section's RSS case alone (100 HTTP listeners draining a
 * backlog), for finding where the memory goes: daemon variants run
 * interleaved (A B C A B C), each on a fresh daemon and store, with the RSS
 * split by kind of mapping (/proc/PID/smaps) and V8's own account (inspector)
 * before the drain, while it runs, and after a forced GC.
 *
 *   npm run build && tsx test/bench/rss.ts
 *   RSS_VARIANTS=base,arena2 RSS_ROUNDS=3 RSS_MS=20000 tsx test/bench/rss.ts
 *
 * RSS_VARIANTS: names from VARIANTS below (default: all); RSS_ROUNDS (2);
 * RSS_MS: sampling time per run (default 20 s; the curve is flat after ~10 s);
 * RSS_SNAPSHOT=1: heap snapshots after the forced GCs, and what the live JS
 * heap gained by kind of object;
 * RSS_GDB=1: malloc_trim(0) through gdb after the last GC (see mallocTrim);
 * BENCH_QUICK=1 shrinks listeners and backlog as in the full bench.
 * Runs are printed as they finish and written to .bench/rss.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './daemon.js';
import type { BenchDaemon, Memory, Smaps } from './daemon.js';
import { Sink, rssDrain } from './delivery.js';
import type { V8Memory } from './delivery.js';
import { Cleanup, fmtBytes, fmtRate, log, payloadPool, renderTable, sleep } from './lib.js';
import type { SectionContext } from './lib.js';

/**
 * Environment a variant gives the daemon. `base` is the product as it is:
 * a daemon started through `discue` gets MALLOC_TRIM_THRESHOLD_=131072
 * (client/spawn.ts daemonEnv), so `trim128k` is `base` now; before that
 * change, these runs compared it with glibc's dynamic thresholds.
 */
const VARIANTS: Record<string, NodeJS.ProcessEnv> = {
  base: {},
  arena2: { MALLOC_ARENA_MAX: '2' },
  semi4: { NODE_OPTIONS: '--max-semi-space-size=4' },
  semi1: { NODE_OPTIONS: '--max-semi-space-size=1' },
  'arena2+semi4': { MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--max-semi-space-size=4' },
  trim128k: { MALLOC_TRIM_THRESHOLD_: '131072' },
  trim1m: { MALLOC_TRIM_THRESHOLD_: '1048576' },
  semi8: { NODE_OPTIONS: '--max-semi-space-size=8' },
  uv2: { UV_THREADPOOL_SIZE: '2' },
  mmap64k: { MALLOC_MMAP_THRESHOLD_: '65536' },
  'mmap64k+arena2': { MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_ARENA_MAX: '2' },
};

const names = process.env.RSS_VARIANTS?.split(',').map((s) => s.trim()).filter(Boolean) ?? Object.keys(VARIANTS);
for (const name of names) if (!(name in VARIANTS)) throw new Error(`RSS_VARIANTS: unknown ${name}; known: ${Object.keys(VARIANTS).join(', ')}`);
const ROUNDS = Number(process.env.RSS_ROUNDS ?? 2);
const MS = Number(process.env.RSS_MS ?? 20_000);
const GDB = process.env.RSS_GDB === '1';
const SNAPSHOT = process.env.RSS_SNAPSHOT === '1';

/**
 * RSS_GDB=1: after the forced GC, gdb calls glibc's malloc_trim(0) in the
 * daemon: what RSS it gives back was free memory malloc kept (fragmentation
 * in its arenas), what stays is live. malloc_stats() goes to the daemon log.
 */
async function mallocTrim(daemon: BenchDaemon, phase: 'draining' | 'after GC'): Promise<Trimmed> {
  const trim = phase === 'after GC';
  const logged = readFileSync(daemon.logFile, 'utf8').length;
  const before = { ...daemon.memory(), smaps: daemon.smaps() };
  const gdb = spawnSync('gdb', ['-p', String(daemon.pid), '-batch', '-ex', 'call (void)malloc_stats()', ...(trim ? ['-ex', 'call (int)malloc_trim(0)'] : [])], { encoding: 'utf8', timeout: 60_000 });
  if (gdb.status !== 0) throw new Error(`gdb: ${gdb.stderr}`);
  await sleep(500);
  const after = { ...daemon.memory(), smaps: daemon.smaps() };
  // malloc_stats() writes to the daemon's stderr, its log: system bytes (held from the OS) and in use per arena.
  const lines = readFileSync(daemon.logFile, 'utf8').slice(logged).split('\n').map((l) => l.trim());
  const arenas: [number, number][] = [];
  let total: [number, number] = [NaN, NaN];
  for (let i = 0; i < lines.length; i++) {
    const system = /^system bytes\s+=\s+(\d+)/.exec(lines[i]!);
    const inUse = /^in use bytes\s+=\s+(\d+)/.exec(lines[i + 1] ?? '');
    if (!system || !inUse) continue;
    if (lines[i - 1]?.startsWith('Total')) total = [Number(system[1]), Number(inUse[1])];
    else arenas.push([Number(system[1]), Number(inUse[1])]);
  }
  return { phase, trimmed: trim, before, after, arenas, total };
}

interface Trimmed {
  phase: string;
  trimmed: boolean;
  before: Memory & { smaps: Smaps };
  after: Memory & { smaps: Smaps };
  /** [system, in use] bytes per arena, main first, then newest to oldest (glibc's list order). */
  arenas: [number, number][];
  total: [number, number];
}

const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);

function where(label: string, m: { rssBytes: number; anonBytes: number; fileBytes: number; smaps: Smaps } & V8Memory): string[] {
  const k = m.smaps.kinds;
  const spaces = Object.entries(m.spaces)
    .filter(([, b]) => b >= 512 * 1024)
    .map(([s, b]) => `${s.replace(/_space$/, '')} ${mib(b)}`)
    .join(', ');
  return [
    label,
    mib(m.rssBytes),
    mib(m.anonBytes),
    mib(m.heapUsedBytes),
    mib(m.heapTotalBytes),
    mib(m.externalBytes),
    mib(k['[heap]']!),
    `${mib(k['malloc arenas']!)} (${m.smaps.arenas})`,
    mib(k['other anon']!),
    mib(k['LevelDB tables']!),
    mib(k['other files']!),
    spaces,
  ];
}

function trimNote(t: Trimmed | undefined): string {
  if (t === undefined) return '';
  const k = (m: { smaps: Smaps }) => `[heap] ${mib(m.smaps.kinds['[heap]']!)}, arenas ${mib(m.smaps.kinds['malloc arenas']!)}`;
  const stats = `malloc ${t.phase}: held ${mib(t.total[0])}, in use ${mib(t.total[1])} MiB; per arena (held/in use): ${t.arenas.map(([s, u]) => `${mib(s)}/${mib(u)}`).join(' ')}`;
  return t.trimmed ? `${stats}\n   malloc_trim(0) by gdb: anon ${mib(t.before.anonBytes)} -> ${mib(t.after.anonBytes)} (${k(t.before)} -> ${k(t.after)})` : stats;
}

/** What the live JS heap gained over the drain, by kind of object (heap snapshots after the forced GCs). */
function heapGrowth(before: [string, number, number][], after: [string, number, number][]): string {
  const was = new Map(before.map(([k, b, n]) => [k, [b, n] as const]));
  const rows = after
    .map(([k, b, n]): [string, number, number] => [k, b - (was.get(k)?.[0] ?? 0), n - (was.get(k)?.[1] ?? 0)])
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15);
  return renderTable({
    title: 'live JS heap after the drain minus before it (heap snapshots after a forced GC), by kind',
    columns: ['kind', 'KiB', 'count'],
    rows: rows.map(([k, b, n]) => [k, (b / 1024).toFixed(0), String(n)]),
  });
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  process.once('SIGINT', () => void cleanup.run().then(() => process.exit(130)));
  process.on('exit', () => cleanup.runSync());
  const ctx: SectionContext = { root: cleanup.tempDir(), cleanup, payloads: payloadPool(200), report: () => undefined };
  const runs: { variant: string; round: number; result: Awaited<ReturnType<typeof rssDrain>> }[] = [];
  try {
    const sink = await Sink.start(ctx);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const variant of names) {
        log(`rss: round ${round}, variant ${variant} ${JSON.stringify(VARIANTS[variant])}`);
        const result = await rssDrain(ctx, sink, { env: VARIANTS[variant]!, maxMs: MS, snapshot: SNAPSHOT, ...(GDB ? { probe: mallocTrim } : {}) });
        runs.push({ variant, round, result });
        if (result.gcBefore.heap && result.gcAfter.heap) console.log(heapGrowth(result.gcBefore.heap, result.gcAfter.heap));
        console.log(
          renderTable({
            title: `${variant}, round ${round}: ${result.delivered.toLocaleString('en-US')} deliveries in ${result.seconds.toFixed(1)} s (${fmtRate(result.rate)}/s); RSS start ${fmtBytes(result.startBytes)}, peak ${fmtBytes(result.peakBytes)} (+${mib(result.peakBytes - result.startBytes)} MiB)`,
            columns: ['when', 'RSS', 'anon', 'JS used', 'JS committed', 'external', '[heap]', 'arenas (n)', 'other anon', 'ldb', 'files', 'V8 spaces (resident MiB)'],
            rows: [where('idle, after GC', result.gcBefore), where('draining (end)', result.draining), where('after, GC', result.gcAfter)],
            notes: [
              ...(GDB ? [trimNote(result.probed.draining as Trimmed | undefined), trimNote(result.probed.afterGc as Trimmed | undefined)] : []),
              `LevelDB tables mapped while draining ${mib(result.draining.smaps.tablesMappedBytes)} MiB, after ${mib(result.gcAfter.smaps.tablesMappedBytes)} MiB; file-backed while draining, largest: ${result.draining.smaps.files.slice(0, 4).map(([f, b]) => `${f.split('/').pop()} ${mib(b)}`).join(', ')}`,
            ],
          }) + '\n',
        );
      }
    }
    sink.stop();
  } finally {
    await cleanup.run();
  }
  const row = (r: (typeof runs)[number]) => {
    const x = r.result;
    return [
      r.variant,
      String(r.round),
      mib(x.startBytes),
      mib(x.peakBytes),
      mib(x.peakBytes - x.startBytes),
      mib(x.endBytes),
      mib(x.peakAnonBytes - x.startAnonBytes),
      `${mib(x.gcBefore.anonBytes)} -> ${mib(x.gcAfter.anonBytes)}`,
      mib(x.gcAfter.anonBytes - x.gcBefore.anonBytes),
      fmtRate(x.rate),
      x.cpuUsPerDelivery.toFixed(0),
      `${fmtRate(x.backlog / (x.publish.ms / 1000))} (${x.publish.cpuUsPerMessage.toFixed(1)})`,
    ];
  };
  console.log(
    renderTable({
      title: `RSS while ${runs[0]?.result.listeners ?? '?'} HTTP listeners drain a backlog, ${MS / 1000} s per run, interleaved (MiB)`,
      columns: ['variant', 'round', 'start', 'peak', 'growth', 'end', 'anon growth', 'anon after GC', 'GC growth', 'deliveries/s', 'daemon CPU µs/delivery', 'backlog publish msgs/s (CPU µs/msg)'],
      rows: runs.map(row),
    }),
  );
  const out = join(ROOT, '.bench');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'rss.json'), JSON.stringify({ variants: Object.fromEntries(names.map((n) => [n, VARIANTS[n]])), ms: MS, runs }, null, 2) + '\n');
}

await main();

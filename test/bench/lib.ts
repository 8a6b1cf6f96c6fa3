/**
 * Shared pieces of the benchmark suite: statistics, table printing, target
 * checks, temp directories and the clean-up that runs even when a section
 * throws (daemons killed, directories removed).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// ---- statistics -----------------------------------------------------------

export interface Summary {
  count: number;
  mean: number;
  median: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  stddev: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values).sort();
  const count = sorted.length;
  if (count === 0) {
    return { count, mean: NaN, median: NaN, p50: NaN, p99: NaN, min: NaN, max: NaN, stddev: NaN };
  }
  let sum = 0;
  for (const v of sorted) sum += v;
  const mean = sum / count;
  let sq = 0;
  for (const v of sorted) sq += (v - mean) ** 2;
  const median = count % 2 === 1 ? sorted[(count - 1) / 2]! : (sorted[count / 2 - 1]! + sorted[count / 2]!) / 2;
  return {
    count,
    mean,
    median,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0]!,
    max: sorted[count - 1]!,
    stddev: Math.sqrt(sq / count),
  };
}

/** Growable array of latencies (ms) without per-sample allocation. */
export class Samples {
  private data = new Float64Array(1 << 16);
  length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

export function median(values: number[]): number {
  return summarize(values).median;
}

/** One timed run: its rate and every latency sample (ms). */
export interface Measured {
  rate: number;
  messages: number;
  seconds: number;
  latencies: Float64Array;
  /** CPU used while it ran, as a fraction of one core. */
  cpu?: { client: number; daemon?: number };
}

/** Several rounds of one case, summarized: the median round's rate, pooled latencies. */
export interface Aggregate {
  /** Median of the rounds' rates. */
  rate: number;
  rounds: number[];
  messages: number;
  latencyMs: Summary;
  cpu?: { client: number; daemon?: number };
  /** Why the case stopped: a round threw or ran past its bound. Its rate is NaN then. */
  failed?: string;
}

export function aggregate(runs: Measured[]): Aggregate {
  const pooled = new Samples();
  for (const run of runs) for (const v of run.latencies) pooled.push(v);
  const cpus = runs.map((r) => r.cpu).filter((c): c is NonNullable<Measured['cpu']> => c !== undefined);
  const out: Aggregate = {
    rate: median(runs.map((r) => r.rate)),
    rounds: runs.map((r) => Math.round(r.rate)),
    messages: runs.reduce((s, r) => s + r.messages, 0),
    latencyMs: summarize(pooled.values()),
  };
  if (cpus.length > 0) {
    const daemon = cpus.map((c) => c.daemon).filter((d): d is number => d !== undefined);
    out.cpu = { client: median(cpus.map((c) => c.client)) };
    if (daemon.length > 0) out.cpu.daemon = median(daemon);
  }
  return out;
}

/**
 * Runs every case once per round, in a rotated order, so that a slow spell
 * of the machine (this is a shared 2-core VM: fsync and CPU time vary a lot
 * from second to second) hits every case alike, and reports medians.
 */
export async function inRounds(
  rounds: number,
  cases: { key: string; label: string; run: (round: number) => Promise<Measured> }[],
  boundMs = CASE_BOUND_MS,
): Promise<Record<string, Aggregate>> {
  const runs = new Map<string, Measured[]>(cases.map((c) => [c.key, []]));
  // A case that failed once is out: it is reported as failed, the others go on.
  const failed = new Map<string, string>();
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + round) % cases.length]!;
      if (failed.has(c.key)) continue;
      log(`round ${round + 1}/${rounds}: ${c.label}`);
      try {
        runs.get(c.key)!.push(await bounded(c.label, boundMs, c.run(round)));
      } catch (err) {
        failed.set(c.key, (err as Error).message);
        log(`FAILED: ${c.label}: ${(err as Error).message}`);
      }
    }
  }
  return Object.fromEntries(
    [...runs].map(([key, list]) => {
      const reason = failed.get(key);
      return [key, reason === undefined ? aggregate(list) : { ...aggregate([]), failed: reason }];
    }),
  );
}

/** What one timed case may take before it counts as failed (a hung sink, a daemon that stopped answering). */
export const CASE_BOUND_MS = 120_000;

/** The promise's value, or a rejection once `ms` have passed (the work itself is left to the run's clean-up). */
export function bounded<T>(label: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

// ---- formatting -----------------------------------------------------------

export function fmtRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '-';
  return Math.round(perSecond).toLocaleString('en-US');
}

export function fmtMs(ms: number, digits = 2): string {
  if (!Number.isFinite(ms)) return '-';
  return ms.toFixed(digits);
}

export function fmtBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '-';
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export function fmtRatio(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '-';
}

export function fmtPct(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : '-';
}

export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  /** Lines printed under the table: how it was measured. */
  notes?: string[];
}

/** Renders a table with aligned columns; all-numeric columns are right-aligned. */
export function renderTable(table: Table): string {
  const widths = table.columns.map((c, i) => Math.max(c.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const numeric = (text: string) => /^[-+]?[\d,.]+(\s?(x|%|ms|s|MiB))?$|^-$/.test(text);
  const right = table.columns.map((_, i) => i > 0 && table.rows.every((r) => numeric(r[i] ?? '-')));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (right[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [`== ${table.title}`, line(table.columns), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of table.rows) out.push(line(row));
  for (const note of table.notes ?? []) out.push(`   ${note}`);
  return out.join('\n');
}

// ---- targets --------------------------------------------------------------

export interface Target {
  /** What the issue asks for, in words. */
  target: string;
  /** What was measured, in words. */
  measured: string;
  met: boolean | undefined;
  /** The numbers behind it, for the JSON. */
  value?: number;
  limit?: number;
  /** The case it depends on failed: why. */
  failed?: string;
}

/** A target whose measurement failed: shown as FAILED, with the reason. */
export function failedTarget(target: string, reason: string): Target {
  return { target, measured: `failed: ${reason}`, met: false, failed: reason };
}

/** `make()`, unless one of the aggregates it reads failed. */
export function guarded(target: string, inputs: Aggregate[], make: () => Target): Target {
  const failed = inputs.find((a) => a.failed !== undefined);
  return failed ? failedTarget(target, failed.failed!) : make();
}

/** `value` must be at least `limit` (or at most, with `atMost`). */
export function check(
  target: string,
  measured: string,
  value: number,
  limit: number,
  atMost = false,
): Target {
  const ok = Number.isFinite(value) && Number.isFinite(limit) ? (atMost ? value <= limit : value >= limit) : undefined;
  return { target, measured, met: ok, value, limit };
}

export function targetTable(targets: Target[]): Table {
  return {
    title: 'Targets',
    columns: ['target', 'measured', 'met?'],
    rows: targets.map((t) => [t.target, t.measured, t.failed !== undefined ? 'FAILED' : t.met === undefined ? 'n/a' : t.met ? 'yes' : 'NO']),
  };
}

// ---- payloads -------------------------------------------------------------

/**
 * Incompressible message bodies: LevelDB compresses its tables with snappy,
 * so a repeated 'xxxx' body would flatter both discue and the raw baseline.
 */
export function payloadPool(size: number, count = 4096): string[] {
  const pool: string[] = [];
  for (let i = 0; i < count; i++) pool.push(randomBytes(Math.ceil((size * 3) / 4)).toString('base64').slice(0, size));
  return pool;
}

// ---- environment ----------------------------------------------------------

export const QUICK = process.env.BENCH_QUICK === '1';

/** Full-run value, or the smaller one under BENCH_QUICK=1. */
export function scaled<T>(full: T, quick: T): T {
  return QUICK ? quick : full;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

// ---- clean-up -------------------------------------------------------------

type Disposer = () => void | Promise<void>;

interface Entry {
  dispose: Disposer;
  /** Synchronous last resort when the process is dying (uncaught error, exit). */
  emergency?: () => void;
}

/**
 * Everything a section creates that must not outlive the run. Disposers run
 * last-in first-out on success, failure and Ctrl-C; if the process dies
 * anyway, their synchronous emergency versions run on 'exit'.
 */
export class Cleanup {
  private readonly entries: Entry[] = [];
  private running: Promise<void> | undefined;

  add(dispose: Disposer, emergency?: () => void): void {
    this.entries.push(emergency ? { dispose, emergency } : { dispose });
  }

  /** A fresh directory under os.tmpdir(), removed at the end. Short, for socket paths. */
  tempDir(prefix = 'discue-bench-'): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const remove = () => rmSync(dir, { recursive: true, force: true });
    this.add(remove, remove);
    return dir;
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.entries.length > 0) {
        const entry = this.entries.pop()!;
        try {
          await entry.dispose();
        } catch (err) {
          log(`clean-up step failed: ${(err as Error).message}`);
        }
      }
    })();
    return this.running;
  }

  /** Synchronous clean-up for a dying process: emergency versions only. */
  runSync(): void {
    while (this.entries.length > 0) {
      const entry = this.entries.pop()!;
      try {
        entry.emergency?.();
      } catch {
        // Nothing more can be done while exiting.
      }
    }
  }
}

// ---- sections -------------------------------------------------------------

/** What every section gets from the runner. */
export interface SectionContext {
  /** A temp directory on the disk being measured; removed at the end. */
  root: string;
  cleanup: Cleanup;
  /** 200-byte incompressible message bodies. */
  payloads: string[];
  /** Prints a table as soon as it is measured; the runner keeps it for results.json. */
  report(table: Table): void;
}

export interface SectionResult {
  targets: Target[];
  /** Everything measured, for results.json. */
  data: Record<string, unknown>;
}

/**
 * One part of the suite (core broker, later delivery). The runner runs
 * them in order, prints their tables and targets, and writes their data
 * under `sections.<name>` in .bench/results.json.
 */
export interface Section {
  name: string;
  run(ctx: SectionContext): Promise<SectionResult>;
}

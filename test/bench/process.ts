/**
 * Whole-process wall time of short commands: hyperfine (-N, no shell in
 * between) when it is installed, else a plain spawn loop. The runs are
 * split into rounds that each time every command, so a slow spell of the
 * machine does not land on one command only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup, Summary } from './lib.js';
import { summarize } from './lib.js';

export interface Command {
  name: string;
  argv: string[];
}

export interface ProcessTiming {
  name: string;
  command: string;
  runs: number;
  /** Wall time per run, ms. */
  ms: Summary;
  tool: 'hyperfine' | 'spawn-loop';
}

function hyperfineAvailable(): boolean {
  return spawnSync('hyperfine', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Shell-words quoting for hyperfine's -N command splitting. */
function quote(arg: string): string {
  return arg === '' ? "''" : /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export interface TimeOptions {
  /** Runs per command in total. */
  runs: number;
  rounds: number;
  /** Warm-up runs per command, in the first round. */
  warmup: number;
  env: NodeJS.ProcessEnv;
  scratch: string;
  /** Children are killed with their whole process group if the run is interrupted. */
  cleanup: Cleanup;
}

/**
 * Spawns in a process group of its own and registers a clean-up that kills
 * the group: an orphaned `discue publish` would otherwise auto-start a new
 * daemon in a home the clean-up just removed.
 */
function spawnTracked(file: string, args: string[], options: TimeOptions, stdio: 'ignore' | 'pipe') {
  const child = spawn(file, args, { env: options.env, stdio: ['ignore', 'ignore', stdio], detached: true });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  };
  options.cleanup.add(kill, kill);
  return child;
}

export async function timeCommands(commands: Command[], options: TimeOptions): Promise<ProcessTiming[]> {
  const useHyperfine = hyperfineAvailable();
  const times = commands.map(() => [] as number[]);
  const perRound = Math.ceil(options.runs / options.rounds);
  for (let round = 0; round < options.rounds; round++) {
    const warmup = round === 0 ? options.warmup : 1;
    const got = useHyperfine
      ? await viaHyperfine(commands, { ...options, runs: perRound, warmup })
      : await viaSpawnLoop(commands, { ...options, runs: perRound, warmup });
    got.forEach((t, i) => times[i]!.push(...t));
  }
  return commands.map((c, i) => ({
    name: c.name,
    command: c.argv.map(quote).join(' '),
    runs: times[i]!.length,
    ms: summarize(times[i]!),
    tool: useHyperfine ? ('hyperfine' as const) : ('spawn-loop' as const),
  }));
}

/** Wall times in ms, per command. */
async function viaHyperfine(commands: Command[], options: TimeOptions): Promise<number[][]> {
  const exportFile = join(options.scratch, 'hyperfine.json');
  rmSync(exportFile, { force: true });
  const args = ['-N', '--style', 'none', '--warmup', String(options.warmup), '--runs', String(options.runs)];
  args.push('--export-json', exportFile);
  for (const c of commands) args.push('-n', c.name, c.argv.map(quote).join(' '));
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawnTracked('hyperfine', args, options, 'pipe');
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stderr }));
  });
  if (result.code !== 0 || !existsSync(exportFile)) throw new Error(`hyperfine failed (${String(result.code)}): ${result.stderr}`);
  const data = JSON.parse(readFileSync(exportFile, 'utf8')) as { results: { command: string; times: number[] }[] };
  return data.results.map((r) => r.times.map((s) => s * 1000));
}

/** Wall times in ms, per command; the commands take turns run by run. */
async function viaSpawnLoop(commands: Command[], options: TimeOptions): Promise<number[][]> {
  const once = (command: Command) =>
    new Promise<number>((resolve, reject) => {
      const t = performance.now();
      const child = spawnTracked(command.argv[0]!, command.argv.slice(1), options, 'ignore');
      child.once('error', reject);
      child.once('exit', (code) => {
        if (code === 0) resolve(performance.now() - t);
        else reject(new Error(`${command.name} exited with ${String(code)}`));
      });
    });
  const times = commands.map(() => [] as number[]);
  for (let i = 0; i < options.warmup + options.runs; i++) {
    for (let c = 0; c < commands.length; c++) {
      const ms = await once(commands[c]!);
      if (i >= options.warmup) times[c]!.push(ms);
    }
  }
  return times;
}

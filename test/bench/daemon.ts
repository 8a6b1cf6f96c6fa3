/**
 * A daemon under benchmark: started the way a user starts it
 * (`discue daemon start`, which spawns a detached daemon), timed until its
 * socket answers a hello, measured through /proc, and always stopped at the
 * end of the run, even when a section fails.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cleanup } from './lib.js';
import { sleep } from './lib.js';
import { answersHello } from './wire.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'discue.cjs');

/** Environment for a discue process serving `home` (no stray DISCUE_SOCKET, no colour). */
export function discueEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DISCUE_HOME: home, NO_COLOR: '1' };
  delete env.DISCUE_SOCKET;
  return env;
}

export interface StartTiming {
  /** Spawning `discue daemon start` until the socket answers a hello. */
  socketMs: number;
  /** Spawning `discue daemon start` until that CLI process exits. */
  cliExitMs: number;
  /** What the daemon itself logged as `startupMs` (its Server created -> listening). */
  loggedStartupMs: number | undefined;
  /** What it logged as `bootMs` (its process exec -> listening). */
  loggedBootMs: number | undefined;
}

export interface Memory {
  rssBytes: number;
  /** Peak RSS (VmHWM). */
  peakBytes: number;
  /**
   * RSS split: anonymous (JS heap, malloc) and file-backed. File-backed RSS
   * is the node binary's pages (~43 MiB) and, during a drain, LevelDB's
   * mmapped .ldb tables (pages the kernel can drop, bounded by the store's
   * size), not memory the daemon holds.
   */
  anonBytes: number;
  fileBytes: number;
}

export class BenchDaemon {
  readonly socket: string;
  readonly logFile: string;
  pid: number | undefined;
  /** Set while `discue daemon start` runs, so an interrupted start is still cleaned up. */
  private starting: Promise<StartTiming> | undefined;

  constructor(
    readonly home: string,
    cleanup: Cleanup,
    /** Extra environment for the daemon (the mix section's DISCUE_SPAWNER, NODE_OPTIONS). */
    private readonly env: NodeJS.ProcessEnv = {},
  ) {
    this.socket = join(home, 'run', 'discue.sock');
    this.logFile = join(home, 'daemon.log');
    cleanup.add(
      () => this.stop(),
      () => {
        const pid = this.pid ?? this.pidFromFile();
        if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
      },
    );
  }

  /** Runs `discue daemon start` and times it; the daemon keeps running detached. */
  start(): Promise<StartTiming> {
    this.starting = this.doStart();
    return this.starting.finally(() => (this.starting = undefined));
  }

  private async doStart(): Promise<StartTiming> {
    const t0 = performance.now();
    const child = spawn(process.execPath, [BIN, 'daemon', 'start'], {
      env: { ...discueEnv(this.home), ...this.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let cliExitMs = NaN;
    let exitCode: number | null = null;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code) => {
        cliExitMs = performance.now() - t0;
        exitCode = code;
        resolve();
      });
    });
    let socketMs = NaN;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (await answersHello(this.socket)) {
        socketMs = performance.now() - t0;
        break;
      }
      if (Date.now() > deadline) throw new Error(`daemon did not answer on ${this.socket} within 60 s\n${stderr}`);
      await sleep(2);
    }
    await exited;
    if (exitCode !== 0) throw new Error(`discue daemon start exited with ${String(exitCode)}: ${stderr}`);
    this.pid = Number.parseInt(readFileSync(join(this.home, 'run', 'daemon.pid'), 'utf8'), 10);
    return { socketMs, cliExitMs, loggedStartupMs: this.lastLogged('startupMs'), loggedBootMs: this.lastLogged('bootMs') };
  }

  /** SIGTERM (a clean shutdown), then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 60_000): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    const pid = this.pid ?? this.pidFromFile();
    if (pid === undefined) return;
    this.pid = undefined;
    if (!alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (alive(pid)) {
      if (Date.now() > deadline) {
        process.kill(pid, 'SIGKILL');
        break;
      }
      await sleep(10);
    }
  }

  memory(): Memory {
    if (this.pid === undefined) throw new Error('daemon not running');
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rssBytes: kb('VmRSS'), peakBytes: kb('VmHWM'), anonBytes: kb('RssAnon'), fileBytes: kb('RssFile') };
  }

  /**
   * Where the RSS is, from /proc/PID/smaps: summed by kind of mapping.
   * "malloc arenas" are anonymous mappings that start on a 64 MiB boundary:
   * glibc's per-thread arenas (HEAP_MAX_SIZE on 64-bit) are reserved that
   * way; the main arena is [heap]. The rest of the anonymous memory is V8's
   * heap (compare its committed size), thread stacks and other mmaps.
   */
  smaps(): Smaps {
    if (this.pid === undefined) throw new Error('daemon not running');
    return parseSmaps(readFileSync(`/proc/${this.pid}/smaps`, 'utf8'));
  }

  /** The pid a daemon of this home wrote, if any (a start the run did not see finish). */
  private pidFromFile(): number | undefined {
    try {
      const pid = Number.parseInt(readFileSync(join(this.home, 'run', 'daemon.pid'), 'utf8'), 10);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** CPU seconds the daemon has used so far. */
  cpuSeconds(): number {
    if (this.pid === undefined) throw new Error('daemon not running');
    return cpuSeconds(this.pid);
  }

  /** A field (startupMs, bootMs) of the last "daemon started" line in the daemon log. */
  private lastLogged(field: string): number | undefined {
    if (!existsSync(this.logFile)) return undefined;
    const lines = readFileSync(this.logFile, 'utf8').split('\n').filter((l) => l.includes('daemon started'));
    const match = new RegExp(` ${field}=(\\d+)`).exec(lines[lines.length - 1] ?? '');
    return match ? Number(match[1]) : undefined;
  }
}

export interface Smaps {
  /** Bytes of RSS per kind: '[heap]', 'malloc arenas', 'other anon', 'LevelDB tables', 'other files'. */
  kinds: Record<string, number>;
  /** RSS of each file-backed mapping's file, largest first. */
  files: [string, number][];
  /** How many anonymous mappings start on a 64 MiB boundary (malloc arenas). */
  arenas: number;
  /** Size of the LevelDB tables mapped (resident or not): what their RSS can grow to. */
  tablesMappedBytes: number;
}

const ARENA_ALIGN = 64n * 1024n * 1024n;

export function parseSmaps(text: string): Smaps {
  const kinds: Record<string, number> = { '[heap]': 0, 'malloc arenas': 0, 'other anon': 0, 'LevelDB tables': 0, 'other files': 0 };
  const files = new Map<string, number>();
  let arenas = 0;
  let tablesMappedBytes = 0;
  let kind = '';
  let name = '';
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      name = head[2]!;
      const arena = name === '' && BigInt('0x' + head[1]!) % ARENA_ALIGN === 0n;
      if (arena) arenas++;
      kind = name === '[heap]' ? '[heap]' : arena ? 'malloc arenas' : name === '' || name.startsWith('[') ? 'other anon' : /\.(ldb|sst)$/.test(name) ? 'LevelDB tables' : 'other files';
      continue;
    }
    const size = /^Size:\s+(\d+) kB/.exec(line);
    if (size && kind === 'LevelDB tables') tablesMappedBytes += Number(size[1]) * 1024;
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      const bytes = Number(rss[1]) * 1024;
      kinds[kind] = (kinds[kind] ?? 0) + bytes;
      if (kind === 'LevelDB tables' || kind === 'other files') files.set(name, (files.get(name) ?? 0) + bytes);
    }
  }
  return { kinds, files: [...files].sort((a, b) => b[1] - a[1]), arenas, tablesMappedBytes };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at index 2.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/**
 * A floor server (test/bench/NAME.mjs: the minimal server, the NATS relay)
 * in its own process, as the daemon is; resolves once it prints its first
 * line (it is listening). Killed at the end of the run.
 */
export async function startFloorServer(cleanup: Cleanup, script: string, args: string[]): Promise<void> {
  const child = spawn(process.execPath, [join(ROOT, 'test', 'bench', script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  cleanup.add(kill, kill);
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`${script} exited with ${String(code)}`)));
  });
}

/**
 * A sandbox per test: its own HOME and DISCUE_HOME in a fresh temp dir, the
 * real binary run with process.execPath, and every daemon it started killed
 * and the directory removed afterwards (as in changesets' e2e-utils).
 * `useSandbox()` is the fixture: it makes one per test and disposes it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'vitest';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'discue.cjs');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  cwd?: string;
}

export class Sandbox {
  readonly dir: string;
  readonly home: string;
  readonly env: Record<string, string>;
  private readonly children = new Set<ChildProcess>();
  private readonly cleanups: (() => unknown)[] = [];

  constructor(prefix = 'discue-test-') {
    // Short paths: Unix socket paths are limited to ~100 bytes.
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.home = join(this.dir, 'h');
    this.env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: join(this.dir, 'user'),
      DISCUE_HOME: this.home,
      NO_COLOR: '1',
    };
  }

  get socket(): string {
    return join(this.home, 'run', 'discue.sock');
  }

  get logFile(): string {
    return join(this.home, 'daemon.log');
  }

  /** Runs `discue ...args` to completion. */
  run(args: string[], options: RunOptions = {}): Promise<RunResult> {
    const child = this.spawn(args, options);
    // A command that hangs names itself and shows the daemon's last words: the timeout alone says neither.
    return collect(child, options).catch((err: Error) => {
      throw new Error(`discue ${args.join(' ')}: ${err.message}\ndaemon log (tail):\n${this.log().split('\n').slice(-30).join('\n')}`);
    });
  }

  /** Starts `discue ...args` and returns the live process (for listen, logs -f, kill tests). */
  spawn(args: string[], options: RunOptions = {}): ChildProcess {
    const spawnOptions: SpawnOptions = {
      cwd: options.cwd ?? this.dir,
      env: { ...this.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    };
    const child = spawn(process.execPath, [BIN, ...args], spawnOptions);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** The daemon's pid, from its pid file (undefined if none). */
  daemonPid(): number | undefined {
    try {
      return Number.parseInt(readFileSync(join(this.home, 'run', 'daemon.pid'), 'utf8'), 10);
    } catch {
      return undefined;
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Runs `cleanup` when the sandbox is disposed, before its processes are killed (last registered, first run). */
  onDispose(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  /** Runs the registered cleanups, kills every daemon and child this sandbox started, then removes its files. */
  async dispose(): Promise<void> {
    // A failing cleanup must not leave daemons behind: each is awaited, none throws past here.
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch {
        // the test already failed or the resource is gone
      }
    }
    for (const child of this.children) child.kill('SIGKILL');
    const pid = this.daemonPid();
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Daemons started by pid-file-less paths (a failed start) are found by
    // their home, as are daemons of other homes a test made inside this sandbox.
    killDaemonsOf(this.home, this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The sandbox fixture: a fresh sandbox before each test of the enclosing
 * describe (or file), disposed after it whatever the test did. The returned
 * object stands for the current test's sandbox; touching it outside a test
 * is a mistake and throws. `afterEach` hooks a file adds after calling this
 * run before the dispose (vitest runs after-hooks in reverse order).
 */
export function useSandbox(prefix?: string): Sandbox {
  let current: Sandbox | undefined;
  beforeEach(() => {
    current = new Sandbox(prefix);
  });
  afterEach(async () => {
    const sb = current;
    current = undefined;
    await sb?.dispose();
  });
  return new Proxy({} as Sandbox, {
    get(_target, key) {
      if (!current) throw new Error(`useSandbox: the sandbox exists only inside a test (read ${String(key)})`);
      const value: unknown = Reflect.get(current, key, current);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(current) : value;
    },
  });
}

function killDaemonsOf(home: string, dir: string): void {
  try {
    for (const entry of readdirProc()) {
      try {
        const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
        if (environ.includes(`DISCUE_HOME=${home}\0`) || environ.includes(`DISCUE_HOME=${dir}/`)) {
          process.kill(Number(entry), 'SIGKILL');
        }
      } catch {
        // process gone or not ours
      }
    }
  } catch {
    // no /proc
  }
}

function readdirProc(): string[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e));
}

export function collect(child: ChildProcess, options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`command timed out after ${options.timeoutMs ?? 30_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Polls `check` until it returns a truthy value, and returns that value, or throws when the time runs out. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 20_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Runs one command for one delivery attempt with plain child_process.spawn:
 * its own process group (so a timeout kills the whole tree), the message
 * data on stdin, a bounded tail of its output, and an outcome decided by the
 * command's own process, never by its pipes.
 *
 * Used by the spawner process (daemon deliveries, see spawner.ts) and
 * directly by the foreground `listen --exec`. It depends on nothing but
 * Node, so the spawner process stays small: every fork it makes copies its
 * memory map, and a small map is a fast fork.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';

/** Output kept per attempt, from the end; the rest is read and dropped. */
export const OUTPUT_TAIL_BYTES = 4096;
/**
 * After the command's process exits, output it wrote may still sit in the
 * pipes: read for this long, then close them. A background child that
 * inherited the pipes (`sleep 60 &`, `setsid …`) holds them open for as long
 * as it lives; waiting for the pipes to close would hold the delivery, and
 * every later one of the listener, for that long.
 */
export const OUTPUT_GRACE_MS = 200;
/** After the group was killed, the outcome is reported within this time even if the leader never exits (uninterruptible sleep). */
const KILL_WAIT_MS = 2000;

export interface CommandSpec {
  file: string;
  args: string[];
  shell: boolean;
  cwd?: string;
  /** Added to the environment of the process that runs it. */
  env: Record<string, string>;
  /** Written to stdin, then stdin is closed. */
  input: string;
  timeoutMs: number;
}

export interface CommandOutcome {
  exitCode?: number;
  signal?: string;
  /** Why the process group was killed (a timeout, a stop); the exit code does not count then. */
  killedBy?: string;
  /** It could not be started at all (no such file, not executable …). */
  error?: string;
  /** The last OUTPUT_TAIL_BYTES of stdout and stderr, in the order they came. */
  output: string;
}

export interface RunningCommand {
  /** The command's pid, which is also its process group id; undefined if it could not be started. */
  readonly pid: number | undefined;
  readonly done: Promise<CommandOutcome>;
  /** Kills the command's whole process group; `why` becomes the outcome's `killedBy`. */
  kill(why: string): void;
}

export interface RunOptions {
  /** Every chunk of output as it comes (the foreground `listen --exec` shows it). */
  onOutput?(stream: 'stdout' | 'stderr', chunk: Buffer): void;
}

export function runCommand(spec: CommandSpec, options: RunOptions = {}): RunningCommand {
  let child: ChildProcess;
  try {
    child = spawn(spec.file, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      shell: spec.shell,
      // Its own process group: killing -pid reaches every process it started that stayed in the group.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    // spawn throws, instead of emitting 'error', for some failures (a cwd that is a file:
    // ENOTDIR; E2BIG; a NUL byte in an argument). Thrown in the spawner process, it would
    // kill the spawner and, with it, every other listener's running command.
    const outcome: CommandOutcome = { output: '', error: `cannot start ${spec.file}: ${(err as Error).message}` };
    return { pid: undefined, done: Promise.resolve(outcome), kill: () => undefined };
  }
  const collected = new TailBuffer(OUTPUT_TAIL_BYTES);
  let killedBy: string | undefined;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let startError: Error | undefined;
  let finishTimer: NodeJS.Timeout | undefined;
  let finishAt = Infinity;
  let resolveDone!: (outcome: CommandOutcome) => void;
  const done = new Promise<CommandOutcome>((resolve) => (resolveDone = resolve));
  let finished = false;

  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group is gone (the leader and everyone in it exited).
    }
  };

  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    clearTimeout(finishTimer);
    // Whatever still holds the pipes (an escaped background child) gets EPIPE from now on; we stop reading.
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.stdin?.destroy();
    // The leader may be gone already; take the rest of its group with it.
    if (killedBy) killGroup();
    const outcome: CommandOutcome = { output: collected.text() };
    if (startError && !exit) outcome.error = `cannot start ${spec.file}: ${startReason(startError, spec.cwd)}`;
    if (killedBy) outcome.killedBy = killedBy;
    if (exit?.code !== null && exit?.code !== undefined) outcome.exitCode = exit.code;
    if (exit?.signal) outcome.signal = exit.signal;
    resolveDone(outcome);
  };
  /** Finishes after `ms` at the latest (an earlier deadline stands). */
  const finishWithin = (ms: number) => {
    if (finished || Date.now() + ms >= finishAt) return;
    finishAt = Date.now() + ms;
    clearTimeout(finishTimer);
    finishTimer = setTimeout(finish, ms);
  };

  const kill = (why: string) => {
    if (finished || killedBy) return;
    killedBy = why;
    killGroup();
    finishWithin(KILL_WAIT_MS);
  };
  const timer = setTimeout(() => kill(`timed out after ${spec.timeoutMs} ms`), spec.timeoutMs);

  child.stdout!.on('data', (chunk: Buffer) => {
    collected.push(chunk);
    options.onOutput?.('stdout', chunk);
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    collected.push(chunk);
    options.onOutput?.('stderr', chunk);
  });
  // A command that exits without reading its stdin closes the pipe under our write: EPIPE is not a failure.
  child.stdin!.on('error', () => undefined);
  child.stdout!.on('error', () => undefined);
  child.stderr!.on('error', () => undefined);
  child.on('error', (err) => {
    // Also emitted when a kill fails; only a failed start ends the attempt here.
    if (child.pid !== undefined) return;
    startError = err;
    finish();
  });
  child.on('exit', (code, signal) => {
    exit = { code, signal };
    // The attempt is the command's own process: its exit decides, and the timeout no longer applies.
    clearTimeout(timer);
    finishWithin(OUTPUT_GRACE_MS);
  });
  // Every holder of the pipes is gone: all output is in.
  child.on('close', () => {
    if (exit) finish();
  });
  if (child.pid !== undefined) child.stdin!.end(spec.input);

  return { pid: child.pid, done, kill };
}

/**
 * Why spawn failed. A working directory that was removed after the listener
 * was added fails exactly like a missing program ("spawn /bin/cat ENOENT"):
 * the attempt's error named the program, which exists, and not the directory.
 */
function startReason(err: Error, cwd: string | undefined): string {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT' && cwd !== undefined && !existsSync(cwd)) {
    return `its working directory ${cwd} does not exist (removed after the listener was added?)`;
  }
  return err.message;
}

/** The last `max` bytes written to it. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.max) this.size -= this.chunks.shift()!.length;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    const text = all.subarray(Math.max(0, all.length - this.max)).toString('utf8');
    // A cut in the middle of a UTF-8 sequence shows as U+FFFD at the start: drop it.
    return all.length > this.max ? text.replace(/^\uFFFD+/, '') : text;
  }
}

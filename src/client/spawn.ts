/**
 * Starting the daemon on demand. Many commands may race to start it (ten
 * CI steps at once); a start lock makes one of them spawn it and the others
 * wait for its socket. Even if two spawned daemons raced past the lock, only
 * one could take LevelDB's exclusive lock; the other exits.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { link, lstat, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiscueError } from '../protocol/errors.js';
import type { BrokerPaths } from '../protocol/paths.js';
import { withLogTail } from './logtail.js';

/** Exit code of a daemon that found another one holding the database (EX_TEMPFAIL). */
export const EXIT_ALREADY_RUNNING = 75;
/**
 * Set on a daemon this module spawns, so only such a daemon answers "lost the
 * race" with EXIT_ALREADY_RUNNING; a person running `daemon start
 * --foreground` by hand gets a documented exit code instead.
 */
export const AUTOSTART_ENV = 'DISCUE_AUTOSTARTED';
/**
 * The glibc malloc setting a daemon started here gets when its environment
 * does not set it (nor GLIBC_TUNABLES' glibc.malloc.trim_threshold): the
 * trim threshold at glibc's own default, 128 KiB. Any explicit value turns
 * off glibc's dynamic thresholds: once the daemon frees one large mmapped
 * block (3.4 MiB seen, after a backlog published in batches of 1,000),
 * glibc raises its mmap threshold to that size and its trim threshold to
 * twice it for the life of the process, so blocks up to that size come from
 * the arenas of the threads that run LevelDB and each arena keeps that much
 * free, never given back. With 100 HTTP listeners draining a 100,000-message backlog, malloc
 * held 62 MiB after a forced GC with 7 MiB of it in use; with this, the
 * daemon's anonymous RSS after that GC was lower in each of 12 interleaved
 * runs (by 16 MiB on average) and 6 MiB lower idle, at no cost in
 * deliveries/s that the runs could show (test/bench/rss.ts). Other C
 * libraries ignore it. `daemon start --foreground` cannot give it to itself
 * (glibc reads it before any JS runs): the README tells services to set it.
 */
export const MALLOC_TRIM_ENV = 'MALLOC_TRIM_THRESHOLD_';
const MALLOC_TRIM_BYTES = String(128 * 1024);
/**
 * Set beside MALLOC_TRIM_ENV when it is ours: the daemon drops both at start
 * (glibc has read it by then), so the commands it runs get the user's
 * environment unchanged.
 */
export const MALLOC_DEFAULTED_ENV = 'DISCUE_MALLOC_DEFAULTED';

/** The environment for a daemon started from `env`: glibc's trim threshold fixed unless the user set it. */
export function daemonEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env[MALLOC_TRIM_ENV] !== undefined || env.GLIBC_TUNABLES?.includes('glibc.malloc.trim_threshold')) return env;
  return { ...env, [MALLOC_TRIM_ENV]: MALLOC_TRIM_BYTES, [MALLOC_DEFAULTED_ENV]: '1' };
}
const BIN = fileURLToPath(new URL('../../bin/discue.cjs', import.meta.url));
/**
 * A start lock that names a dead pid is taken over at once; one whose holder
 * lives but is older than this is from a starter that hangs.
 */
const STALE_LOCK_MS = 30_000;
/**
 * A lock is never empty while its holder lives (it appears by link() with
 * the pid in it; without hard links it is empty for the microseconds between
 * create and write). An empty one older than this was left by a starter that
 * failed to write it: an older discue on a full disk.
 */
const EMPTY_LOCK_MS = 2_000;
/**
 * How often a starter looks for the new daemon's socket. A connect attempt
 * costs microseconds; a coarse poll added half its interval to every
 * auto-start on average.
 */
const SOCKET_POLL_MS = 5;

export interface StartOptions {
  timeoutMs?: number;
  /** The `store` setting for the daemon, when the command line gave one (else it reads DISCUE_STORE and the config). */
  store?: string;
  env?: NodeJS.ProcessEnv;
  /** More options for `daemon start --foreground` (--http ADDR). */
  args?: string[];
}

export interface StartResult {
  started: boolean;
}

/**
 * The longest path the system takes (PATH_MAX less its NUL), and room for
 * the deepest file discue makes in a home (a repair's dated copy of data/ and
 * a MANIFEST in it; a start lock named after pid and attempt). A home with
 * less room could be created, but not its start lock or database files: the
 * command ended as INTERNAL with an ENAMETOOLONG stack trace.
 */
const PATH_LIMIT = process.platform === 'linux' ? 4095 : 1023;
const DEEPEST_FILE_IN_HOME = 64;

export async function ensureHome(paths: BrokerPaths): Promise<void> {
  const length = Buffer.byteLength(paths.home);
  if (length + DEEPEST_FILE_IN_HOME > PATH_LIMIT) {
    throw new DiscueError(
      'HOME_NOT_WRITABLE',
      `DISCUE_HOME is ${length} bytes long; with the files discue keeps in it that passes the system's path limit of ${PATH_LIMIT} bytes: point DISCUE_HOME at a path of at most ${PATH_LIMIT - DEEPEST_FILE_IN_HOME} bytes`,
    );
  }
  try {
    await mkdir(paths.home, { recursive: true, mode: 0o700 });
    await mkdir(paths.runDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DiscueError(
      'HOME_NOT_WRITABLE',
      `cannot create DISCUE_HOME ${paths.home}: ${(err as Error).message}; point DISCUE_HOME at a directory you can write`,
      { cause: err },
    );
  }
  // A socket outside the home (--socket, DISCUE_SOCKET) needs its directory
  // too. Checked here, so a bad path is reported as such, not as a daemon
  // that failed to start with an error about DISCUE_HOME.
  const socketDir = dirname(paths.socket);
  if (socketDir !== paths.runDir) {
    try {
      await mkdir(socketDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      const reason =
        (err as NodeJS.ErrnoException).code === 'EEXIST' ? `${socketDir} is not a directory` : (err as Error).message;
      throw new DiscueError(
        'DAEMON_UNREACHABLE',
        `cannot use the socket path ${paths.socket}: ${reason}; point --socket or DISCUE_SOCKET at a path in a directory you can write`,
        { cause: err },
      );
    }
  }
}

/** True if something accepts connections on the socket. */
export function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Refuses a socket path that holds something other than a socket. The daemon
 * removes a stale socket before it binds; a regular file there (a mistyped
 * --socket) must never be taken for one and deleted.
 */
export async function assertSocketOrNothing(socket: string): Promise<void> {
  const info = await lstat(socket).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (info !== undefined && !info.isSocket()) {
    throw new DiscueError(
      'NOT_A_DISCUE_SOCKET',
      `${socket} exists and is not a socket; discue will not replace it. Point --socket or DISCUE_SOCKET somewhere else`,
    );
  }
}

export async function startDaemon(paths: BrokerPaths, options: StartOptions = {}): Promise<StartResult> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  await ensureHome(paths);
  await assertSocketOrNothing(paths.socket);
  for (;;) {
    if (await socketAccepts(paths.socket)) return { started: false };
    if (await tryLock(paths.startLock)) break;
    if (Date.now() > deadline) {
      throw new DiscueError(
        'DAEMON_START_FAILED',
        await withLogTail(`timed out waiting for another command to start the daemon (lock ${paths.startLock})`, paths.logFile),
      );
    }
    await sleep(40);
  }
  try {
    // Re-check under the lock: the previous holder may have just started it.
    if (await socketAccepts(paths.socket)) return { started: false };
    await spawnAndWait(paths, options, deadline);
    return { started: true };
  } finally {
    await unlink(paths.startLock).catch(() => undefined);
  }
}

let lockAttempts = 0;

async function tryLock(path: string): Promise<boolean> {
  // The pid is written to a file of our own first and the lock appears by
  // link(), atomically and already naming its owner. Creating the lock and
  // then writing the pid left an empty lock when the write failed (a full
  // disk), which no one could tell from a live one for 30 s.
  // Unique per attempt, not just per process: several library clients of one
  // process reconnecting at once would share `start.lock.PID`, and one's unlink
  // made another's link() fail with a raw ENOENT.
  const own = `${path}.${process.pid}.${++lockAttempts}`;
  try {
    await writeFile(own, `${process.pid}\n`, { mode: 0o600 });
    await link(own, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new DiscueError(
        'STORAGE_FULL',
        `cannot start the daemon: no space left for its start lock in ${dirname(path)}; free some space there and try again`,
        { cause: err },
      );
    }
    // A file system without hard links: create the lock directly.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') return createLock(path);
    if (code !== 'EEXIST') throw err;
  } finally {
    await unlink(own).catch(() => undefined);
  }
  // Someone holds it. If that starter is gone (killed mid-start), break the lock.
  const [pidText, info] = await Promise.all([
    readFile(path, 'utf8').catch(() => ''),
    stat(path).catch(() => undefined),
  ]);
  const pid = Number.parseInt(pidText, 10);
  const holderAlive = Number.isInteger(pid) && pid > 0 && isAlive(pid);
  const old = info !== undefined && Date.now() - info.mtimeMs > (pidText === '' ? EMPTY_LOCK_MS : STALE_LOCK_MS);
  if ((pidText !== '' && !holderAlive) || old) await unlink(path).catch(() => undefined);
  return false;
}

async function createLock(path: string): Promise<boolean> {
  try {
    await writeFile(path, `${process.pid}\n`, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    await unlink(path).catch(() => undefined);
    throw err;
  }
}

async function spawnAndWait(paths: BrokerPaths, options: StartOptions, deadline: number): Promise<void> {
  const args = [BIN, 'daemon', 'start', '--foreground'];
  if (options.store) args.push('--store', options.store);
  if (options.args) args.push(...options.args);
  // Loaded here, not at the top: every command imports this module, few start a daemon.
  const { spawn } = await import('node:child_process');
  const log = openSync(paths.logFile, 'a', 0o600);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  try {
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...daemonEnv(options.env ?? process.env), DISCUE_HOME: paths.home, DISCUE_SOCKET: paths.socket, [AUTOSTART_ENV]: '1' },
    });
    child.once('exit', (code, signal) => (exited = { code, signal }));
    child.once('error', () => (exited = { code: null, signal: null }));
    child.unref();
  } finally {
    closeSync(log);
  }
  for (;;) {
    if (await socketAccepts(paths.socket)) return;
    if (exited) {
      // It lost the database lock to a daemon started another way: wait for that one.
      if (exited.code === EXIT_ALREADY_RUNNING) {
        exited = undefined;
        await sleep(SOCKET_POLL_MS);
        continue;
      }
      const how = exited.signal ? `signal ${exited.signal}` : `code ${String(exited.code)}`;
      throw new DiscueError('DAEMON_START_FAILED', await withLogTail(`the daemon exited during start-up (${how})`, paths.logFile));
    }
    if (Date.now() > deadline) {
      throw new DiscueError(
        'DAEMON_START_FAILED',
        await withLogTail(`the daemon did not open ${paths.socket} in time`, paths.logFile),
      );
    }
    await sleep(SOCKET_POLL_MS);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * A daemon that exited stays a zombie until its parent reaps it. An
 * auto-started daemon's parent is init, and in a container init may reap late
 * or never (no --init): `daemon stop` would then wait for a process that has
 * long finished. Linux only; elsewhere nothing is known and nothing changes.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

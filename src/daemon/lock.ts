/**
 * One daemon per home, whatever backend keeps the data. LevelDB's lock only
 * covers one data directory, and a clustered backend has no local lock at
 * all; but the socket, the pid file and the log belong to the home, and two
 * daemons on one home would take them from each other.
 *
 * The lock is `run/daemon.lock`, naming its holder: the pid, and on Linux
 * the process's start time, so a pid reused by another process after a
 * kill -9 does not keep the home locked. It appears by link() from a file
 * already written, so nobody ever reads a half-written lock. A lock whose
 * holder is dead (or a zombie) is stale and is broken.
 */
import { readFileSync } from 'node:fs';
import { link, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { DiscueError } from '../protocol/errors.js';

/** How long taking the lock may go on while other starters take and break it. */
const ACQUIRE_MS = 5_000;
/**
 * A lock without a pid is one being created directly (no hard links) and not
 * written yet, for a moment; older than this, its writer died first.
 */
const UNWRITTEN_MS = 2_000;

/** Takes the home lock, or throws ALREADY_RUNNING naming the live holder (details.pid). Resolves to its release. */
export async function acquireHomeLock(path: string): Promise<() => Promise<void>> {
  const mine = `${process.pid}\n${startTime(process.pid) ?? ''}\n`;
  const deadline = Date.now() + ACQUIRE_MS;
  while (Date.now() < deadline) {
    if (await tryLink(path, mine)) return () => release(path, mine);
    const held = await readFile(path, 'utf8').catch(() => undefined);
    if (held === undefined) continue;
    const pid = Number.parseInt(held, 10);
    if (!(Number.isInteger(pid) && pid > 0)) {
      const info = await stat(path).catch(() => undefined);
      if (info !== undefined && Date.now() - info.mtimeMs < UNWRITTEN_MS) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
    } else if (holderAlive(pid, held)) {
      throw new DiscueError('ALREADY_RUNNING', `another daemon (pid ${pid}) runs for this home; its lock is ${path}`, { details: { pid } });
    }
    await breakStale(path, held);
  }
  throw new DiscueError('ALREADY_RUNNING', `could not take the daemon lock ${path}: other daemons kept starting for this home`);
}

async function tryLink(path: string, content: string): Promise<boolean> {
  const own = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(own, content, { mode: 0o600 });
    await link(own, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new DiscueError('STORAGE_FULL', `no space left for the daemon lock ${path}; free some space there and start again`, { cause: err });
    }
    // A file system without hard links: create the lock directly (written
    // right after, so a reader may briefly see it empty: see UNWRITTEN_MS).
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') return createDirectly(path, content);
    throw err;
  } finally {
    await unlink(own).catch(() => undefined);
  }
}

async function createDirectly(path: string, content: string): Promise<boolean> {
  try {
    await writeFile(path, content, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Removes a stale lock. Two starters may both find the same stale lock; the
 * first breaks it and takes the lock, and the second must not then delete
 * that fresh one. So breaking is itself done under a lock, `.break` beside
 * it: its holder reads the lock again and removes it only if it is still the
 * stale one that was read. Nobody else can remove the lock meanwhile (its
 * holder is dead and breakers wait), so nobody can put a fresh one in its
 * place between that read and the removal. (Moving the lock aside and
 * putting back what was not stale, as before, lost a fresh lock when a third
 * starter took the place in between: two daemons then held the home.)
 */
export async function breakStale(path: string, stale: string): Promise<void> {
  const breaker = `${path}.break`;
  const mine = `${process.pid}\n${startTime(process.pid) ?? ''}\n`;
  if (!(await tryLink(breaker, mine))) {
    // Another starter is breaking it. A breaker whose holder died goes; the
    // caller then looks at the lock again either way.
    const held = await readFile(breaker, 'utf8').catch(() => undefined);
    const pid = held === undefined ? Number.NaN : Number.parseInt(held, 10);
    if (held !== undefined && Number.isInteger(pid) && pid > 0 && !holderAlive(pid, held)) await removeIfStill(breaker, held);
    else await new Promise((resolve) => setTimeout(resolve, 10));
    return;
  }
  try {
    await removeIfStill(path, stale);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

/** Removes the file if it still says `content` (a read then an unlink: callers make sure nobody replaces it in between). */
async function removeIfStill(path: string, content: string): Promise<void> {
  const held = await readFile(path, 'utf8').catch(() => undefined);
  if (held === content) await unlink(path).catch(() => undefined);
}

/** Removes the lock if it is still ours. */
async function release(path: string, mine: string): Promise<void> {
  const held = await readFile(path, 'utf8').catch(() => undefined);
  if (held === mine) await unlink(path).catch(() => undefined);
}

function holderAlive(pid: number, held: string): boolean {
  const started = held.split('\n')[1];
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = procStat(pid);
  if (now === undefined) return true;
  // A killed daemon whose parent has not reaped it yet serves nothing.
  if (now.state === 'Z') return false;
  return started === undefined || started === '' || started === now.startTime;
}

function startTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/** State and start time (clock ticks since boot) from /proc, where there is one (Linux). */
function procStat(pid: number): { state: string; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const start = fields[19];
  return state === undefined || start === undefined ? undefined : { state, startTime: start };
}

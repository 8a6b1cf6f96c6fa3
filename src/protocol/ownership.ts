/**
 * Who may stand between a client and its daemon, and who may read the data.
 *
 * The socket rule (as tmux and ssh-agent apply it): a client talks only to a
 * socket that is its own, in a directory nobody else can write, and a daemon
 * binds only in such a directory. Without it, another user who creates the
 * per-user fallback directory in $TMPDIR first (or a socket in it) would be
 * handed everything the victim publishes, and the victim would see exit 0.
 *
 * - The socket's directory must belong to the current user (or to root, who
 *   can do anything anyway) and must not be writable by group or others.
 *   One exception: a sticky world-writable directory such as /tmp, which a
 *   user may point DISCUE_SOCKET into. There nobody else can remove or
 *   rename our socket, so what protects is the socket file's own owner.
 * - The socket file must belong to the current user. The client checks it
 *   after connecting and before it sends a byte, so a socket swapped in
 *   between the check and the connect is caught too.
 *
 * The data rule: a data directory is 0700 and the current user's, or the
 * daemon refuses it (LevelDB's files hold whsec_ secrets and every message).
 */
import { lstatSync, stat } from 'node:fs';
import type { Stats } from 'node:fs';
import { dirname } from 'node:path';
import { DiscueError } from './errors.js';

function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

function mode(stats: Stats): string {
  return (stats.mode & 0o7777).toString(8).padStart(4, '0');
}

/** fs.stat, not fs/promises: every client checks its socket directory, and loading fs/promises costs a millisecond of start-up. */
function statAsync(path: string): Promise<Stats> {
  return new Promise((resolve, reject) => stat(path, (err, stats) => (err ? reject(err) : resolve(stats))));
}

async function statOrNothing(path: string): Promise<Stats | undefined> {
  try {
    return await statAsync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Nothing there yet (or a path that cannot exist): nothing to trust or
    // distrust; whoever creates it next reports what is wrong with it.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Refuses a socket directory another user could control. A missing directory
 * passes: the daemon creates it 0700 and checks again before it binds.
 */
export async function assertSocketDirSafe(socket: string): Promise<void> {
  const uid = currentUid();
  if (uid === undefined) return;
  const dir = dirname(socket);
  // Followed: DISCUE_SOCKET may lie under a symlinked directory (macOS /tmp).
  // A symlink planted by someone else points at their directory and fails
  // the owner check below.
  const info = await statOrNothing(dir);
  if (info === undefined) return;
  const advice = `remove it if it is not yours, or set DISCUE_SOCKET (or --socket) to a path in a directory only you can write`;
  if (info.uid !== uid && info.uid !== 0) {
    throw new DiscueError(
      'SOCKET_UNSAFE',
      `refusing to use the socket directory ${dir}: it belongs to uid ${info.uid} (mode ${mode(info)}), not to you (uid ${uid}), so that user could read what you publish; ${advice}`,
      { details: { path: dir, owner: info.uid, mode: mode(info) } },
    );
  }
  const sticky = (info.mode & 0o1000) !== 0;
  if ((info.mode & 0o022) !== 0 && !sticky) {
    throw new DiscueError(
      'SOCKET_UNSAFE',
      `refusing to use the socket directory ${dir}: it is writable by group or others (mode ${mode(info)}), so another user could replace the socket; run \`chmod 700 ${dir}\`, or ${advice}`,
      { details: { path: dir, owner: info.uid, mode: mode(info) } },
    );
  }
}

/**
 * Refuses a socket file that belongs to another user. A missing socket
 * passes. Synchronous on purpose: the client runs it between 'connect' and
 * attaching its handlers, and an await there would let a peer that closes at
 * once go unnoticed (the 'close' event would fire before anyone listened).
 */
export function assertSocketOwned(socket: string): void {
  const uid = currentUid();
  if (uid === undefined) return;
  let info: Stats;
  try {
    info = lstatSync(socket);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw err;
  }
  if (info.uid === uid) return;
  throw new DiscueError(
    'SOCKET_UNSAFE',
    `refusing to talk to ${socket}: the socket belongs to uid ${info.uid} (mode ${mode(info)}), not to you (uid ${uid}); another user's program answers there, and nothing was sent to it. Remove it if you can, or set DISCUE_SOCKET (or --socket) to a path in a directory only you can write`,
    { details: { path: socket, owner: info.uid, mode: mode(info) } },
  );
}

/**
 * Refuses an existing data directory that is not private to the current
 * user. Loosened bits are not tightened silently: files made while they
 * were open may already have been read, and the user should know.
 */
export async function assertPrivateDir(dir: string): Promise<void> {
  const uid = currentUid();
  if (uid === undefined) return;
  const info = await statOrNothing(dir);
  if (info === undefined || !info.isDirectory()) return;
  if (info.uid !== uid) {
    throw new DiscueError(
      'DATA_DIR_UNSAFE',
      `refusing to use the data directory ${dir}: it belongs to uid ${info.uid} (mode ${mode(info)}), not to you (uid ${uid}), and would hold your messages and webhook secrets; use a directory of your own`,
      { details: { path: dir, owner: info.uid, mode: mode(info) } },
    );
  }
  if ((info.mode & 0o077) !== 0) {
    throw new DiscueError(
      'DATA_DIR_UNSAFE',
      `refusing to use the data directory ${dir}: its mode is ${mode(info)}, so other users could read your messages and webhook secrets; run \`chmod 700 ${dir}\` and start again`,
      { details: { path: dir, owner: info.uid, mode: mode(info) } },
    );
  }
}

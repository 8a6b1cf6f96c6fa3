/**
 * Where one broker keeps its state. Everything lives under DISCUE_HOME, so a
 * test, a CI job or a second broker only has to point that one variable
 * somewhere else. Client and daemon must agree on this layout.
 */
import { homedir, tmpdir, userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { DiscueError } from './errors.js';

export interface BrokerPaths {
  home: string;
  dataDir: string;
  runDir: string;
  socket: string;
  logFile: string;
  pidFile: string;
  /** One daemon per home: held by the daemon while it runs, and by `daemon repair` (daemon/lock.ts). */
  daemonLock: string;
  startLock: string;
}

export interface PathOptions {
  home?: string | undefined;
  socket?: string | undefined;
  dataDir?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/** Unix socket paths are limited to 108 bytes on Linux (104 on macOS). */
const MAX_SOCKET_PATH = 100;

export function resolvePaths(options: PathOptions = {}): BrokerPaths {
  const env = options.env ?? process.env;
  const home = resolve(options.home ?? nonEmpty(env.DISCUE_HOME) ?? join(userHome(), '.discue'));
  const runDir = join(home, 'run');
  let socket = options.socket ?? nonEmpty(env.DISCUE_SOCKET);
  if (socket === undefined) {
    socket = join(runDir, 'discue.sock');
    // A deep DISCUE_HOME would make the socket path too long to bind; fall
    // back to a per-user directory in tmp, named after the home it serves.
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
      const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
      // node:crypto only on this rare path: every command resolves paths at start-up.
      const { createHash } = process.getBuiltinModule('node:crypto');
      const digest = createHash('sha256').update(home).digest('hex').slice(0, 16);
      socket = join(systemTmp(), `discue-${uid}`, `${digest}.sock`);
    }
  }
  return {
    home,
    dataDir: resolve(options.dataDir ?? join(home, 'data')),
    runDir,
    socket: resolve(socket),
    logFile: join(home, 'daemon.log'),
    pidFile: join(runDir, 'daemon.pid'),
    daemonLock: join(runDir, 'daemon.lock'),
    startLock: join(runDir, 'start.lock'),
  };
}

/**
 * The longest path a Unix socket can bind or connect to: sun_path holds 108
 * bytes on Linux and 104 on macOS, with the terminating NUL. Node does not
 * refuse a longer one; it silently truncates it, so client and daemon would
 * meet on a file nobody asked for.
 */
export const SOCKET_PATH_LIMIT = process.platform === 'linux' ? 107 : 103;

/** Refuses a socket path the kernel would truncate. */
export function assertSocketPath(socket: string): void {
  const length = Buffer.byteLength(socket);
  if (length > SOCKET_PATH_LIMIT) {
    throw new DiscueError(
      'SOCKET_PATH_TOO_LONG',
      `the socket path ${socket} is ${length} bytes; a Unix socket path may have at most ${SOCKET_PATH_LIMIT}. Use a shorter --socket or DISCUE_SOCKET (without either, a deep DISCUE_HOME gets a socket in ${systemTmp()})`,
    );
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The user's home directory. os.homedir() is $HOME as it is: set but empty
 * (`HOME=` in a cron line or a service unit) or relative, it put the broker's
 * state and config in ./.discue of whatever directory a command ran in, one
 * broker per directory. Such a HOME is passed over for the account's home.
 */
export function userHome(): string {
  const home = homedir();
  if (isAbsolute(home)) return home;
  try {
    return userInfo().homedir;
  } catch {
    // no account entry (a container's arbitrary uid): nothing better to go by
    return home;
  }
}

/**
 * The temp directory for a deep home's socket. os.tmpdir() is $TMPDIR as it
 * is: a relative one put the socket under whatever directory a command ran
 * in, so a command run elsewhere looked for another socket, started a second
 * daemon that the home's lock refused, and failed after the start timeout.
 */
function systemTmp(): string {
  const tmp = tmpdir();
  return isAbsolute(tmp) ? tmp : '/tmp';
}

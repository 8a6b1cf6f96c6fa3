/**
 * The daemon: owns the database, listens on the Unix socket, serves
 * requests, and shuts down cleanly on SIGTERM/SIGINT or a shutdown request.
 *
 * Exactly one daemon runs per home: its lock (run/daemon.lock, lock.ts) is
 * taken first, and only the holder may open the backend and touch the socket
 * and pid file. That is what makes it safe to remove a stale socket left by a
 * killed daemon. (LevelDB's own lock still guards each data directory.)
 */
import { mkdir, chmod, unlink, writeFile, rm, access, constants, lstat } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { DiscueError } from '../protocol/errors.js';
import { PROTOCOL_VERSION } from '../protocol/frames.js';
import type { DaemonStatus } from '../protocol/wire.js';
import { assertPrivateDir, assertSocketDirSafe, assertSocketOwned } from '../protocol/ownership.js';
import { resolvePaths } from '../protocol/paths.js';
import type { BrokerPaths } from '../protocol/paths.js';
import { redact, storeText } from '../protocol/store.js';
import type { StoreLocation } from '../protocol/store.js';
import { DEFAULT_DEDUPE, assertStoreSupported, createBackend } from '../backend/index.js';
import type { DedupeOptions, Store } from '../backend/types.js';
import { VERSION } from '../version.js';
import { Connection } from './connection.js';
import type { HandlerContext } from './handlers/index.js';
import { createLogger } from '../observe/log.js';
import type { Logger } from '../observe/log.js';
import { SchemaRegistry } from './schemas.js';
import { DeliveryEngine } from '../delivery/engine.js';
import { acquireHomeLock } from './lock.js';
import { hostIdOf } from './host.js';
import { TokenStore } from './tokens.js';
import type { HttpApi, HttpOptions } from '../http/server.js';

export interface DaemonOptions {
  home?: string;
  socket?: string;
  /** Where the data lives (the `store` setting); default: LevelDB in $DISCUE_HOME/data, or in dataDir. */
  store?: StoreLocation;
  dataDir?: string;
  logger?: Logger;
  /** Idempotency key window and bound (the CLI reads them from the environment); the backend's defaults otherwise. */
  dedupe?: Partial<DedupeOptions>;
  /** Serve the HTTP API too (src/http/, loaded only then). */
  http?: HttpOptions;
  /** Install SIGTERM/SIGINT handlers and exit the process on shutdown (default true). */
  ownProcess?: boolean;
}

/** How often messages past their queue's retention are removed. */
const RETENTION_INTERVAL_MS = 30_000;

export class Daemon {
  readonly paths: BrokerPaths;
  readonly storeLocation: StoreLocation;
  private readonly log: Logger;
  private store: Store | undefined;
  private engine: DeliveryEngine | undefined;
  private server: Server | undefined;
  private http: HttpApi | undefined;
  private readonly connections = new Set<Connection>();
  private readonly startedAt = Date.now();
  private retentionTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private releaseLock: (() => Promise<void>) | undefined;
  private hostId = '';

  constructor(private readonly options: DaemonOptions = {}) {
    const dataDir = options.store?.kind === 'leveldb' ? options.store.location : options.dataDir;
    this.paths = resolvePaths({ home: options.home, socket: options.socket, dataDir });
    this.storeLocation = options.store ?? { kind: 'leveldb', location: this.paths.dataDir };
    this.log = options.logger ?? createLogger();
  }

  async start(): Promise<void> {
    const { paths, log } = this;
    // First, before any directory, lock or socket is touched: a store this build cannot run.
    assertStoreSupported(this.storeLocation);
    // Before anything is created: LevelDB makes its files with the process
    // umask, and they hold every message and the whsec_ secrets. Command
    // listeners inherit it too.
    process.umask(0o077);
    await prepareDirectories(paths);
    // The daemon's working directory was wherever the command that started it
    // ran (a CI job's workspace, a temp dir). Once that was removed, every
    // process.cwd() threw: a listener added without a cwd (library, HTTP API)
    // failed as INTERNAL "uv_cwd". It runs in its home, which it owns, as a
    // daemon should; this also stops it pinning a directory someone removes
    // or unmounts.
    if (this.options.ownProcess !== false) process.chdir(paths.home);
    if (this.storeLocation.kind === 'leveldb') await assertPrivateDir(paths.dataDir);
    // Before the database opens and deliveries resume: never serve where
    // another user could read or replace the socket, nor take over a socket
    // path another user holds (see protocol/ownership.ts).
    await assertSocketDirSafe(paths.socket);
    assertSocketOwned(paths.socket);
    const releaseLock = await acquireHomeLock(paths.daemonLock);
    let store: Store;
    try {
      this.hostId = await hostIdOf(paths.home);
      store = await createBackend({ store: this.storeLocation, dedupe: { ...DEFAULT_DEDUPE, ...this.options.dedupe }, log });
      await store.open();
    } catch (err) {
      await releaseLock();
      throw err;
    }
    this.releaseLock = releaseLock;
    this.store = store;
    this.engine = new DeliveryEngine(store, log, this.hostId);
    // Everything that can fail happens before or right around listen(): a
    // daemon that failed to start must never be left serving a closed database.
    try {
      await writeFile(paths.pidFile, `${process.pid}\n`, { mode: 0o600 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOSPC' && err.code !== 'EDQUOT') throw err;
        throw new DiscueError('STORAGE_FULL', `no space left in ${paths.runDir} for the pid file; free some space there and start again`, {
          cause: err,
        });
      });
      // A backend that ages messages out by itself (supports.retention) is left to it.
      const removed = store.supports.retention ? 0 : await store.enforceRetention();
      if (removed > 0) log.info('retention removed old messages', { count: removed });
      // Every listener resumes where it stopped: pending deliveries go out
      // again. Started before the socket opens, so no request can race it.
      await this.engine.start();
      const ctx = await this.handlerContext();
      // Before the socket: a command that started this daemon takes an answering
      // socket for a started daemon, so the HTTP API must not fail after it.
      if (this.options.http) {
        const { HttpApi } = await import('../http/server.js');
        this.http = await HttpApi.start(this.options.http, ctx, log);
      }
      await this.listen(ctx);
    } catch (err) {
      await this.http?.close().catch(() => undefined);
      const server = this.server;
      await new Promise<void>((resolve) => (server?.listening ? server.close(() => resolve()) : resolve()));
      await this.engine.stop().catch(() => undefined);
      await store.close();
      await releaseLock();
      throw err;
    }
    if (!store.supports.retention) {
      this.retentionTimer = setInterval(() => {
        store.enforceRetention().then(
          (n) => n > 0 && log.info('retention removed old messages', { count: n }),
          (err: unknown) => log.error('retention failed', { error: err as Error }),
        );
      }, RETENTION_INTERVAL_MS);
      this.retentionTimer.unref();
    }
    const stats = store.stats();
    log.info('daemon started', {
      pid: process.pid,
      version: VERSION,
      socket: paths.socket,
      store: storeText(this.storeLocation),
      queues: stats.queues,
      messages: stats.messages,
      startupMs: Date.now() - this.startedAt,
      // From the process's exec: Node's own start-up and module loading come
      // before startupMs, and were most of a start (issue 14). Not for a
      // daemon hosted in another program's process.
      ...(this.options.ownProcess !== false ? { bootMs: Math.round(performance.now()) } : {}),
    });
    for (const warning of stats.warnings) log.warn(`storage: ${warning}`);
    if (this.options.ownProcess !== false) {
      const onSignal = (signal: NodeJS.Signals) => this.stopAndExit(`signal ${signal}`);
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      // SIGHUP (the terminal of a foreground daemon closed, or a `kill -HUP`
      // meant as "reload") ended the process by its default action: no line in
      // the log, the pid file and socket left behind, in-flight writes cut.
      // Nothing is reloaded: it stops cleanly like SIGTERM, and says so.
      process.once('SIGHUP', onSignal);
    }
  }

  /** Stops accepting, finishes in-flight writes, closes the database. */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('daemon stopping', { reason });
      clearInterval(this.retentionTimer);
      const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
      // Requests already accepted finish and get their replies; new ones are
      // refused; streams end. In-flight deliveries are aborted and stay
      // unacknowledged: they go out again after a restart.
      for (const conn of this.connections) conn.drain();
      const httpClosed = this.http?.close();
      await this.engine?.stop();
      const deadline = Date.now() + 10_000;
      while (([...this.connections].some((c) => c.busy) || this.http?.busy) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await this.store?.close();
      for (const conn of this.connections) {
        // Not busy: every request of this connection still unanswered was refused or never
        // read, so its client may send it to the next daemon (the library does).
        const details = conn.busy ? undefined : { performed: false };
        conn.end(new DiscueError('SHUTTING_DOWN', 'the daemon is shutting down', { details }));
      }
      await closed;
      await httpClosed;
      await rm(this.paths.pidFile, { force: true });
      await this.releaseLock?.();
      this.log.info('daemon stopped');
    })();
    return this.stopping;
  }

  /**
   * Stops, then ends the process when the daemon owns it: once stopped, a
   * command listener's child, an HTTP keep-alive socket or a timer must not
   * keep a daemon that serves nothing alive. The one place the daemon exits.
   */
  private stopAndExit(reason: string): void {
    void this.stop(reason).then(() => {
      if (this.options.ownProcess !== false) process.exit(0);
    });
  }

  status(): DaemonStatus {
    const stats = this.store!.stats();
    const status: DaemonStatus = {
      pid: process.pid,
      version: VERSION,
      protocol: PROTOCOL_VERSION,
      home: this.paths.home,
      dataDir: this.paths.dataDir,
      // Credentials in the servers' URLs stay in the daemon.
      store: { ...this.storeLocation, location: redact(this.storeLocation.location) },
      socket: this.paths.socket,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeMs: Date.now() - this.startedAt,
      queues: stats.queues,
      messages: stats.messages,
      rssBytes: process.memoryUsage.rss(),
      connections: this.connections.size,
    };
    if (stats.warnings.length > 0) status.warnings = stats.warnings;
    if (stats.cluster !== undefined) {
      status.cluster = stats.cluster;
      status.hostId = this.hostId;
    }
    if (this.http) status.http = this.http.url;
    return status;
  }

  private async openTokens(): Promise<TokenStore> {
    const tokens = await TokenStore.open(join(this.paths.home, 'tokens.json'));
    if (tokens.damaged !== undefined) this.log.error(`tokens: ${tokens.damaged}`);
    if (tokens.ignoredCount > 0) this.log.warn('tokens: entries of tokens.json that are not whole tokens are ignored', { count: tokens.ignoredCount });
    return tokens;
  }

  private async handlerContext(): Promise<HandlerContext> {
    return {
      store: this.store!,
      engine: this.engine!,
      schemas: new SchemaRegistry(),
      tokens: await this.openTokens(),
      status: () => this.status(),
      shutdown: (reason) => this.stopAndExit(reason),
    };
  }

  private async listen(ctx: HandlerContext): Promise<void> {
    const { socket } = this.paths;
    // We hold the home lock, so no daemon of this home is alive. A socket
    // file here is stale, unless DISCUE_SOCKET points several homes at one
    // path and another broker answers on it: never steal a live socket.
    if (await socketAnswers(socket)) {
      throw new DiscueError('ALREADY_RUNNING', `another process is listening on ${socket}`);
    }
    const existing = await lstat(socket).catch(() => undefined);
    if (existing && !existing.isSocket()) {
      throw new DiscueError('NOT_A_DISCUE_SOCKET', `${socket} exists and is not a socket; refusing to replace it`);
    }
    await unlink(socket).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    // Half-open: a client that shuts down its sending side after its last request
    // (nc -N, a script) still gets every reply; the connection ends after the last one.
    const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
      if (this.stopping) {
        socket.destroy();
        return;
      }
      const conn = new Connection(socket, ctx, this.log, (c) => this.connections.delete(c));
      this.connections.add(conn);
    });
    this.server = server;
    // The socket is created 0600 (umask) so no other user can connect in the
    // moment between bind and chmod.
    const previousUmask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socket, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(previousUmask);
    }
    await chmod(socket, 0o600);
    server.on('error', (err) => this.log.error('server error', { error: err }));
  }
}

async function prepareDirectories(paths: BrokerPaths): Promise<void> {
  try {
    await mkdir(paths.home, { recursive: true, mode: 0o700 });
    await mkdir(paths.runDir, { recursive: true, mode: 0o700 });
    await chmod(paths.runDir, 0o700);
    const socketDir = dirname(paths.socket);
    // Created 0700 (umask 077). An existing one, the per-user fallback in
    // $TMPDIR included, is never loosened or tightened here: listen() refuses
    // it if another user could control it (see protocol/ownership.ts).
    if (socketDir !== paths.runDir) await mkdir(socketDir, { recursive: true, mode: 0o700 });
    await access(paths.home, constants.W_OK);
    // Files of an older daemon may predate the umask.
    for (const file of [paths.logFile, paths.pidFile]) {
      await chmod(file, 0o600).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  } catch (err) {
    throw new DiscueError(
      'HOME_NOT_WRITABLE',
      `cannot write to DISCUE_HOME ${paths.home}: ${(err as Error).message}; point DISCUE_HOME at a directory you own`,
      { cause: err },
    );
  }
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export async function runDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  const daemon = new Daemon(options);
  await daemon.start();
  return daemon;
}

/**
 * The socket client: what the CLI uses, and the package's library entry
 * (`import { connect } from 'discue'`), so a Node service can publish
 * without spawning a process.
 *
 * No request waits forever: each has a deadline, and a request that streams
 * or waits long is kept honest by pings while the daemon is silent. A client
 * whose connection dropped (the daemon was restarted or killed) opens a new
 * one on its next request, starting the daemon as the CLI does.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { DiscueError, isDiscueError } from '../protocol/errors.js';
import type { ErrorCode } from '../protocol/errors.js';
import { LineDecoder, MAX_FRAME_BYTES, MAX_REPLY_BYTES, PROTOCOL_VERSION, encodeFrame, parseReply } from '../protocol/frames.js';
import type { ReplyFrame } from '../protocol/frames.js';
import { formatDuration, parseDuration } from './duration.js';
import { MAX_BATCH } from '../protocol/validate.js';
import type { MessageInput, PublishResult } from '../protocol/wire.js';
import type { ParamsOf, RequestType, ResultOf } from '../protocol/requests.js';
import { assertSocketDirSafe, assertSocketOwned } from '../protocol/ownership.js';
import { assertSocketPath, resolvePaths } from '../protocol/paths.js';
import type { BrokerPaths } from '../protocol/paths.js';
import { VERSION } from '../version.js';
import { withLogTail } from './logtail.js';
import { isAlive, startDaemon } from './spawn.js';

export interface ConnectOptions {
  /** Broker state directory (default: DISCUE_HOME, then ~/.discue). */
  home?: string;
  /** Socket path (default: DISCUE_SOCKET, then inside home). */
  socket?: string;
  /** Start the daemon if it is not running, also when reconnecting (default true). */
  autoStart?: boolean;
  /** How long to wait for the daemon's handshake (default 10 s, or requestTimeoutMs if that is shorter). */
  handshakeTimeoutMs?: number;
  /**
   * How long a request may wait for its answer, reconnecting included
   * (default: DISCUE_REQUEST_TIMEOUT, then 30 s). A publish with `wait` gets
   * its wait timeout on top; a stream lives as long as the daemon answers.
   */
  requestTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Called with the daemon's pid after this connect started it (the CLI tells a person at a terminal). */
  onDaemonStarted?: (pid: number) => void;
}

/** Emitted when a connection drops other than by close(); the next request reconnects. */
export interface DisconnectedEvent {
  /** The daemon of the connection that dropped. */
  pid: number;
  error: DiscueError;
}

/** Emitted before each attempt to reconnect: why, and how long the client waited before this attempt. */
export interface ReconnectingEvent {
  attempt: number;
  delayMs: number;
  error: DiscueError;
}

/** Emitted once a new connection has completed its handshake. */
export interface ReconnectedEvent {
  attempt: number;
  /** The daemon answering now. */
  pid: number;
  /** The daemon of the connection that dropped. */
  previousPid: number;
}

export interface ClientEvents {
  disconnected: [DisconnectedEvent];
  reconnecting: [ReconnectingEvent];
  reconnected: [ReconnectedEvent];
}

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** The daemon's own default for `publish` with `wait` and no `waitTimeoutMs`. */
const DEFAULT_WAIT_TIMEOUT_MS = 30_000;
/** Reconnect backoff: the first retry after 50 ms, doubling up to 2 s; the whole bounded by the request's deadline. */
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 2_000;
/** Longest silence of the daemon, while a stream or a wait is open, before the client pings it. */
const MAX_PING_INTERVAL_MS = 10_000;
/**
 * Failures a new attempt may cure: nothing listens yet (a restart in
 * progress, autoStart off and someone else starts it), or the daemon closed
 * the connection because it is shutting down.
 */
const RETRYABLE = new Set<ErrorCode>(['DAEMON_UNREACHABLE', 'DAEMON_DIED', 'SHUTTING_DOWN']);
/** What a first connect tries again: only a daemon that went away in the middle of the handshake. */
const CONNECT_RETRYABLE = new Set<ErrorCode>(['DAEMON_DIED', 'SHUTTING_DOWN']);
/** How long a first connect keeps trying after such a failure: a restart or a lost start race settles well within it. */
const CONNECT_RETRY_MS = 3_000;

/**
 * Characters of data, names and keys that publishes made in one tick may add
 * up to and still go out in one publish.many frame. Even escaped six-fold by
 * JSON that is far below MAX_FRAME_BYTES; a larger publish goes alone.
 */
const COALESCE_CHARS = 256 * 1024;
/** What the daemon's hello lists when it serves publish.many. */
const PUBLISH_MANY = 'publish.many';

/** Replies saying the daemon refused the request unperformed because it is stopping (see sendRefused). */
const REFUSED = new WeakSet<DiscueError>();

interface Settings {
  paths: BrokerPaths;
  autoStart: boolean;
  requestTimeoutMs: number;
  handshakeTimeoutMs: number;
  env: NodeJS.ProcessEnv | undefined;
  onDaemonStarted: ((pid: number) => void) | undefined;
}

/**
 * Request ids, unique in the process: a request that waited for a reconnect
 * goes out on a connection other than the one it was numbered for.
 */
let lastId = 0;
function nextId(): number {
  return ++lastId;
}

/** A publish waiting for the end of the tick, to go out with the others made in it. */
interface Coalesced {
  params: ParamsOf<'publish'>;
  resolve: (result: PublishResult) => void;
  reject: (err: unknown) => void;
}

export class DiscueClient extends EventEmitter<ClientEvents> {
  private closing = false;
  private reconnecting: Promise<Link> | undefined;
  /** Publishes made in this tick (see publish), with their messages and characters counted. */
  private coalescing: Coalesced[] | undefined;
  private coalescedMessages = 0;
  private coalescedChars = 0;
  readonly paths: BrokerPaths;

  private constructor(
    private link: Link,
    private readonly settings: Settings,
  ) {
    super();
    this.paths = settings.paths;
    this.watchLink(link);
  }

  private watchLink(link: Link): void {
    link.onDown = (error) => this.emit('disconnected', { pid: link.daemon.pid, error });
  }

  /** Who answered the handshake of the current connection. */
  get daemon(): DaemonIdentity {
    return this.link.daemon;
  }

  /** Opens a connection to the broker, starting its daemon if needed. */
  static async connect(options: ConnectOptions = {}): Promise<DiscueClient> {
    const paths = resolvePaths({ home: options.home, socket: options.socket, env: options.env });
    assertSocketPath(paths.socket);
    const requestTimeoutMs = options.requestTimeoutMs ?? requestTimeoutFromEnv(options.env ?? process.env);
    if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
      throw new TypeError(`requestTimeoutMs must be a positive number of milliseconds, got ${String(requestTimeoutMs)}`);
    }
    const settings: Settings = {
      paths,
      autoStart: options.autoStart !== false,
      requestTimeoutMs,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? Math.min(DEFAULT_HANDSHAKE_TIMEOUT_MS, requestTimeoutMs),
      env: options.env,
      onDaemonStarted: options.onDaemonStarted,
    };
    const deadline = Date.now() + Math.max(requestTimeoutMs, 20_000);
    // Retries of a handshake cut short stop early: a socket that always does that is broken, not restarting.
    const retryUntil = Math.min(deadline, Date.now() + CONNECT_RETRY_MS);
    for (let attempt = 1; ; attempt++) {
      try {
        return new DiscueClient(await openLink(settings, deadline), settings);
      } catch (err) {
        // A daemon that closed the connection during the handshake was dying or
        // stopping (a restart, a kill, or another starter's daemon losing the
        // database lock): the next try finds or starts the one that stays.
        // Nothing else is retried here: "not running" with autoStart off must
        // fail at once.
        const delayMs = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (attempt - 1));
        if (!isDiscueError(err) || !CONNECT_RETRYABLE.has(err.code) || Date.now() + delayMs >= retryUntil) throw err;
        await sleep(delayMs);
      }
    }
  }

  /** Sends one request and resolves with its result, or rejects with a DiscueError. */
  request<T extends RequestType>(type: T, params: ParamsOf<T>): Promise<ResultOf<T>> {
    return this.send(type, params).done as Promise<ResultOf<T>>;
  }

  /**
   * Sends a request whose reply is a stream: `onEvent` gets each event, the
   * promise settles with the final reply. A stream does not survive its
   * connection: if the daemon dies it ends with DAEMON_DIED, if it stops
   * answering pings with DAEMON_TIMEOUT.
   */
  stream(type: string, params: unknown, onEvent: (event: unknown) => void): { id: number; done: Promise<unknown> } {
    return this.send(type, params, onEvent);
  }

  /**
   * Publishes one message or a batch; resolves once they are durable.
   *
   * Publishes made in the same tick (a service answering many requests at
   * once) go out together in one publish.many frame when the daemon serves
   * it: each is still stored, answered and failed on its own, but the frame,
   * its reply and the daemon's per-request work are paid once. A lone
   * publish goes as it always did, a tick later at most.
   */
  publish(queue: string, messages: MessageInput | MessageInput[]): Promise<PublishResult> {
    const params = { queue, messages: Array.isArray(messages) ? messages : [messages] };
    const chars = charsOf(params.messages);
    // An empty publish goes alone (the daemon says why): each coalesced one adds
    // a message at least, so a frame never holds more publishes than MAX_BATCH,
    // which would refuse all of them.
    if (chars === undefined || chars > COALESCE_CHARS || params.messages.length === 0 || params.messages.length > MAX_BATCH || this.closing || !this.link.daemon.features?.includes(PUBLISH_MANY)) {
      return this.request('publish', params);
    }
    if (this.coalescedMessages + params.messages.length > MAX_BATCH || this.coalescedChars + chars > COALESCE_CHARS) this.flushPublishes();
    return new Promise<PublishResult>((resolve, reject) => {
      if (this.coalescing === undefined) {
        const group: Coalesced[] = [];
        this.coalescing = group;
        // nextTick, not a microtask: it runs once the promise jobs queued now
        // have run too, so publishers resumed by one reply all make the frame.
        process.nextTick(() => {
          if (this.coalescing === group) this.flushPublishes();
        });
      }
      this.coalescing.push({ params, resolve, reject });
      this.coalescedMessages += params.messages.length;
      this.coalescedChars += chars;
    });
  }

  /** Sends the publishes made so far in this tick. */
  private flushPublishes(): void {
    const group = this.coalescing;
    if (group === undefined) return;
    this.coalescing = undefined;
    this.coalescedMessages = 0;
    this.coalescedChars = 0;
    const alone = (one: Coalesced) => this.request('publish', one.params).then(one.resolve, one.reject);
    if (group.length === 1) {
      alone(group[0]!);
      return;
    }
    this.request('publish.many', { publishes: group.map((one) => one.params) }).then(
      ({ results }) => {
        for (let i = 0; i < group.length; i++) {
          const outcome = results[i];
          if (outcome === undefined) group[i]!.reject(new DiscueError('INTERNAL', `the daemon answered ${results.length} of ${group.length} publishes`));
          else if (outcome.ok) group[i]!.resolve(outcome.result);
          else group[i]!.reject(DiscueError.fromWire(outcome.error));
        }
      },
      (err: unknown) => {
        // A daemon older than this client (after a reconnect): each goes alone.
        if (isDiscueError(err) && err.code === 'UNKNOWN_REQUEST') for (const one of group) alone(one);
        else for (const one of group) one.reject(err);
      },
    );
  }

  /**
   * Writes a raw frame for requests outside the typed map (acks of streams).
   * Dropped when the connection is gone: the stream it belonged to has ended.
   */
  notify(type: string, params: unknown): void {
    const id = nextId();
    if (this.link.usable) this.link.write(encodeFrame({ id, type, params }));
  }

  async close(): Promise<void> {
    // Publishes made just before close() were made before it: they go out.
    this.flushPublishes();
    this.closing = true;
    await this.link.close();
  }

  private send(type: string, params: unknown, onEvent?: (event: unknown) => void): { id: number; done: Promise<unknown> } {
    // Publishes made before this request go out before it: requests on a connection are served in the order made.
    this.flushPublishes();
    const id = nextId();
    const startedAt = Date.now();
    const frame = encodeFrame({ id, type, params });
    if (frame.length > MAX_FRAME_BYTES / 3 && Buffer.byteLength(frame) > MAX_FRAME_BYTES) {
      return { id, done: Promise.reject(new DiscueError('FRAME_TOO_LARGE', `request is larger than ${MAX_FRAME_BYTES} bytes`)) };
    }
    const { requestTimeoutMs } = this.settings;
    const wait = type === 'publish' && isWait(params) ? (params.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS) : undefined;
    // A stream has no end to wait for; a wait gets its own timeout on top of the usual deadline.
    const budgetMs = onEvent ? undefined : requestTimeoutMs + (wait ?? 0);
    const call: Call = { id, frame, onEvent, long: onEvent !== undefined || wait !== undefined, budgetMs, startedAt };
    if (this.closing) return { id, done: Promise.reject(closedError()) };
    const done = this.link.usable ? this.link.send(call) : this.relink().then((link) => link.send(call));
    return { id, done: onEvent ? done : done.catch((err: unknown) => this.sendRefused(err, call)) };
  }

  /**
   * A request the daemon refused because it is stopping (`daemon restart`) was
   * not performed: it goes to the next daemon, within its budget, instead of
   * failing the application with SHUTTING_DOWN. Only such refusals: a request
   * cut off by the connection closing may have been done.
   */
  private async sendRefused(err: unknown, call: Call): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      if (!(err instanceof DiscueError) || !REFUSED.has(err) || this.closing) throw err;
      const delayMs = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (attempt - 1));
      if (call.budgetMs !== undefined && Date.now() + delayMs >= call.startedAt + call.budgetMs) throw err;
      await sleep(delayMs);
      try {
        return await (this.link.usable ? this.link.send(call) : this.relink().then((link) => link.send(call)));
      } catch (next) {
        err = next;
      }
    }
  }

  /** One reconnection at a time: every request waiting for a connection shares it. */
  private relink(): Promise<Link> {
    this.reconnecting ??= this.reconnect().finally(() => (this.reconnecting = undefined));
    return this.reconnecting;
  }

  private async reconnect(): Promise<Link> {
    const deadline = Date.now() + this.settings.requestTimeoutMs;
    const previousPid = this.link.daemon.pid;
    let error = this.link.failure ?? closedError();
    for (let attempt = 1; ; attempt++) {
      const delayMs = attempt === 1 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (attempt - 2));
      // Bounded by the deadline: better the last reason now than a try that cannot finish in time.
      if (Date.now() + delayMs >= deadline) throw error;
      this.emit('reconnecting', { attempt, delayMs, error });
      if (delayMs > 0) await sleep(delayMs);
      if (this.closing) throw closedError();
      let link: Link;
      try {
        link = await openLink(this.settings, deadline);
      } catch (err) {
        if (!isDiscueError(err) || !RETRYABLE.has(err.code)) throw err;
        error = err;
        continue;
      }
      // close() was called while this connection was being opened.
      if (this.closing) {
        await link.close();
        throw closedError();
      }
      this.link = link;
      this.watchLink(link);
      this.emit('reconnected', { attempt, pid: link.daemon.pid, previousPid });
      return link;
    }
  }
}

interface DaemonIdentity {
  pid: number;
  version: string;
  protocol: number;
  /** Requests served beyond protocol 1's first set (absent: an older daemon). */
  features?: string[];
}

/** Characters of data, names and keys in `messages`; undefined if they are not shaped like messages (the daemon says why, alone). */
function charsOf(messages: unknown[]): number | undefined {
  let chars = 0;
  for (const m of messages) {
    if (typeof m !== 'object' || m === null) return undefined;
    const { data, name, key } = m as Record<string, unknown>;
    if (typeof data !== 'string') return undefined;
    chars += data.length + (typeof name === 'string' ? name.length : 0) + (typeof key === 'string' ? key.length : 0);
  }
  return chars;
}

/** One request on the wire. */
interface Call {
  id: number;
  frame: string;
  onEvent: ((event: unknown) => void) | undefined;
  /** A stream, or a wait: the daemon is pinged while it is silent. */
  long: boolean;
  /** From `startedAt`, reconnecting included; none for a stream. */
  budgetMs: number | undefined;
  startedAt: number;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  onEvent?: ((event: unknown) => void) | undefined;
  long: boolean;
  /** Link.heard when it went out: unchanged at its deadline means the daemon said nothing since. */
  heardAtSend: number;
  budgetMs: number | undefined;
  /** How long it was given on this connection: less than its budget after a reconnect. */
  waitMs: number;
  timer?: NodeJS.Timeout;
}

/** One connection to the daemon, from handshake to close. */
class Link {
  private readonly decoder = new LineDecoder(MAX_REPLY_BYTES);
  private readonly pending = new Map<number, Pending>();
  private readonly pingIntervalMs: number;
  private closing = false;
  /** Set once the socket closed: no new request goes on this connection. */
  private closed = false;
  /** Why this connection is over; set once. */
  failure: DiscueError | undefined;
  /** When the daemon last sent anything on this connection, and how many chunks it sent (a clock cannot order events within its millisecond). */
  private lastHeard = Date.now();
  private heard = 0;
  private watch: NodeJS.Timeout | undefined;
  private pingId = 0;
  daemon: DaemonIdentity = { pid: 0, version: '', protocol: 0 };
  /** Called once if the connection goes down after its handshake, other than by close(). */
  onDown: ((error: DiscueError) => void) | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly settings: Settings,
  ) {
    this.pingIntervalMs = Math.min(MAX_PING_INTERVAL_MS, settings.requestTimeoutMs / 2);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    // The daemon is gone once it ended its side: from then on, new requests wait for a new connection.
    socket.on('end', () => (this.closed = true));
    socket.on('close', () => void this.onClose());
  }

  get usable(): boolean {
    return this.failure === undefined && !this.closed && !this.closing;
  }

  async handshake(timeoutMs: number): Promise<void> {
    const id = nextId();
    try {
      const hello: unknown = await this.send({
        id,
        frame: encodeFrame({ id, type: 'hello', params: { protocol: PROTOCOL_VERSION, version: VERSION } }),
        onEvent: undefined,
        long: false,
        budgetMs: timeoutMs,
        startedAt: Date.now(),
      }).catch(async (err: unknown) => {
        if (isDiscueError(err) && err.code === 'DAEMON_TIMEOUT') throw await this.notAnswering(timeoutMs);
        throw err;
      });
      // Something that merely echoes JSON back would otherwise pass, and the
      // next request would wait forever for an answer.
      if (!isHelloResult(hello)) {
        throw new DiscueError(
          'NOT_A_DISCUE_SOCKET',
          `${this.settings.paths.socket} answered the handshake, but not as a discue daemon does; is DISCUE_SOCKET or --socket pointing at another program?`,
        );
      }
      this.daemon = hello;
    } catch (err) {
      this.closing = true;
      this.socket.destroy();
      throw err;
    }
  }

  /**
   * No answer to the hello. A stopped daemon (kill -STOP, a debugger) still
   * accepts connections: the kernel queues them. Its pid file tells it apart
   * from a foreign program that accepts and says nothing.
   */
  private async notAnswering(timeoutMs: number): Promise<DiscueError> {
    const { paths } = this.settings;
    const pid = Number.parseInt(await readFile(paths.pidFile, 'utf8').catch(() => ''), 10);
    if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) {
      return new DiscueError(
        'DAEMON_TIMEOUT',
        `the daemon (pid ${pid}) is not answering: it accepted the connection on ${paths.socket} but sent no handshake within ${formatDuration(timeoutMs)}. If it is stopped, \`kill -CONT ${pid}\` resumes it; if it hangs, \`kill ${pid}\` ends it`,
        { details: { pid } },
      );
    }
    return new DiscueError(
      'NOT_A_DISCUE_SOCKET',
      `${paths.socket} accepted the connection but did not answer the discue handshake within ${formatDuration(timeoutMs)}`,
    );
  }

  /** Sends a request; its deadline runs from `call.startedAt`. */
  send(call: Call): Promise<unknown> {
    if (!this.usable) return Promise.reject(this.failure ?? closedError());
    return new Promise((resolve, reject) => {
      const sentAt = Date.now();
      const waitMs = call.budgetMs === undefined ? Infinity : Math.max(0, call.startedAt + call.budgetMs - sentAt);
      const pending: Pending = {
        resolve,
        reject,
        onEvent: call.onEvent,
        long: call.long,
        heardAtSend: this.heard,
        budgetMs: call.budgetMs,
        waitMs,
      };
      if (waitMs !== Infinity) pending.timer = setTimeout(() => this.expire(call.id), waitMs).unref();
      this.pending.set(call.id, pending);
      if (call.long) this.startWatch();
      this.write(call.frame);
    });
  }

  write(frame: string): void {
    this.socket.write(frame);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.stopWatch();
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      // The daemon ends its side once it answered what was in flight. A stopped
      // or stuck one (kill -STOP, a debugger) never does, and close() waited
      // forever: a service's shutdown hung on it. Given up after a request's
      // timeout without a word from the daemon; what is still in flight then
      // (a stream has no deadline of its own) fails with DAEMON_TIMEOUT.
      let heard = this.heard;
      const giveUp = (): void => {
        if (this.heard !== heard && this.pending.size > 0) {
          heard = this.heard;
          timer = setTimeout(giveUp, this.settings.requestTimeoutMs);
          return;
        }
        const budget = formatDuration(this.settings.requestTimeoutMs);
        this.fail(
          new DiscueError('DAEMON_TIMEOUT', `the daemon (pid ${this.daemon.pid}) did not end the connection within ${budget} of close() (socket ${this.settings.paths.socket})`, {
            details: { pid: this.daemon.pid },
          }),
        );
      };
      let timer = setTimeout(giveUp, this.settings.requestTimeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end();
    });
  }

  /**
   * A request ran out of time. If the daemon sent nothing at all since it
   * went out, and that was for at least a ping interval, the daemon is not
   * answering (stopped, or stuck on its only thread): the whole connection
   * is given up, so a stream's unacknowledged messages go back to the daemon,
   * and the next request opens a new one. A request left only a moment of its
   * budget after a slow reconnect fails alone: a fresh connection's short
   * silence proves nothing.
   */
  private expire(id: number): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    const budget = formatDuration(pending.budgetMs ?? 0);
    const pid = this.daemon.pid;
    const silent = this.heard === pending.heardAtSend;
    if (silent && pending.waitMs >= this.pingIntervalMs) {
      this.fail(
        new DiscueError('DAEMON_TIMEOUT', `the daemon (pid ${pid}) did not answer within ${budget} (socket ${this.settings.paths.socket})`, {
          details: { pid },
        }),
      );
      return;
    }
    this.settle(id, pending);
    const why = silent ? ' (most of that time went to reconnecting)' : ', though it answers others';
    pending.reject(
      new DiscueError('DAEMON_TIMEOUT', `the daemon (pid ${pid}) did not answer this request within ${budget}${why}`, { details: { pid } }),
    );
  }

  /**
   * While a stream or a wait is open, a silent daemon is asked for its
   * status; the ping's own deadline then tells a quiet daemon from a stopped one.
   */
  private startWatch(): void {
    if (this.watch) return;
    this.watch = setInterval(() => {
      if (![...this.pending.values()].some((p) => p.long)) {
        this.stopWatch();
        return;
      }
      if (this.pending.has(this.pingId) || Date.now() - this.lastHeard < this.pingIntervalMs) return;
      // Any answer, even an error (a daemon shutting down), proves the daemon alive.
      this.pingId = nextId();
      this.send({
        id: this.pingId,
        frame: encodeFrame({ id: this.pingId, type: 'daemon.status', params: {} }),
        onEvent: undefined,
        long: false,
        budgetMs: this.settings.requestTimeoutMs,
        startedAt: Date.now(),
      }).catch(() => undefined);
    }, this.pingIntervalMs).unref();
  }

  private stopWatch(): void {
    clearInterval(this.watch);
    this.watch = undefined;
  }

  private down(err: DiscueError): void {
    if (this.failure) return;
    this.failure = err;
    if (!this.closing && this.daemon.pid !== 0) this.onDown?.(err);
  }

  private settle(id: number, pending: Pending): void {
    clearTimeout(pending.timer);
    this.pending.delete(id);
  }

  private onData(chunk: Buffer): void {
    this.lastHeard = Date.now();
    this.heard++;
    let lines: string[];
    try {
      lines = this.decoder.push(chunk);
    } catch (err) {
      this.fail(
        new DiscueError(
          'FRAME_TOO_LARGE',
          `a reply from ${this.settings.paths.socket} is larger than ${MAX_REPLY_BYTES} bytes; ask for less (e.g. a smaller --limit)`,
          { cause: err },
        ),
      );
      return;
    }
    for (const line of lines) {
      if (line.length === 0) continue;
      let frame: ReplyFrame;
      try {
        frame = parseReply(line);
      } catch (err) {
        const cause = err as DiscueError;
        this.fail(new DiscueError(cause.code, `${cause.message} (socket ${this.settings.paths.socket}); is it a discue daemon?`, { cause }));
        return;
      }
      this.onFrame(frame);
    }
  }

  private onFrame(frame: ReplyFrame): void {
    if (frame.id === 0 && 'ok' in frame && !frame.ok) {
      // A connection-level error (shutting down, frame refused): fails everything.
      const err = DiscueError.fromWire(frame.error);
      // The daemon says none of the requests still waiting here was performed: they may go to the next daemon.
      if (err.code === 'SHUTTING_DOWN' && (err.details as { performed?: unknown } | undefined)?.performed === false) REFUSED.add(err);
      this.fail(err);
      return;
    }
    const pending = this.pending.get(frame.id);
    if (!pending) return;
    if ('event' in frame) {
      pending.onEvent?.(frame.event);
      return;
    }
    this.settle(frame.id, pending);
    if (frame.ok) {
      pending.resolve(frame.result);
      return;
    }
    const err = DiscueError.fromWire(frame.error);
    if (err.code === 'SHUTTING_DOWN') {
      // Refused before it ran; and the daemon takes no more requests: the next go to a new connection.
      REFUSED.add(err);
      this.closed = true;
    }
    pending.reject(err);
  }

  private fail(err: DiscueError): void {
    this.down(err);
    this.stopWatch();
    for (const [id, pending] of this.pending) {
      this.settle(id, pending);
      pending.reject(err);
    }
    this.socket.destroy();
  }

  private async onClose(): Promise<void> {
    this.closed = true;
    this.stopWatch();
    if (this.failure) return;
    if (this.closing || this.pending.size === 0) {
      this.down(closedError());
      return;
    }
    const { paths } = this.settings;
    const what =
      this.daemon.pid === 0
        ? `${paths.socket} closed the connection during the handshake: the daemon died or is stopping, or the socket belongs to another program`
        : `the daemon (pid ${this.daemon.pid}) closed the connection before answering (socket ${paths.socket})`;
    const message = await withLogTail(what, paths.logFile);
    this.fail(new DiscueError('DAEMON_DIED', message));
  }
}

/**
 * Connects and shakes hands, starting the daemon if allowed. Each step is
 * bounded by `deadline`, so a reconnect cannot outlast the request waiting on it.
 */
async function openLink(settings: Settings, deadline: number): Promise<Link> {
  const { paths } = settings;
  // Before connecting or starting anything: a directory another user controls may hold their socket.
  await assertSocketDirSafe(paths.socket);
  let socket: Socket;
  let started = false;
  try {
    socket = await openSocket(paths.socket);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new DiscueError(
        'SOCKET_PERMISSION',
        `permission denied on ${paths.socket}: the daemon belongs to another user; set DISCUE_HOME or --socket to your own`,
        { cause: err },
      );
    }
    // ENOTDIR: a path component of the socket is a file (a DISCUE_HOME that
    // cannot exist); the start below reports that as HOME_NOT_WRITABLE.
    if (code !== 'ENOENT' && code !== 'ECONNREFUSED' && code !== 'ENOTDIR') {
      throw new DiscueError('DAEMON_UNREACHABLE', `cannot connect to ${paths.socket}: ${(err as Error).message}`, { cause: err });
    }
    if (!settings.autoStart) {
      throw new DiscueError(
        'DAEMON_UNREACHABLE',
        `the daemon is not running (no answer on ${paths.socket}); start it with \`discue daemon start\``,
        { cause: err },
      );
    }
    started = (await startDaemon(paths, { env: settings.env, timeoutMs: Math.max(1, deadline - Date.now()) })).started;
    socket = await openSocket(paths.socket).catch(async (cause: unknown) => {
      throw new DiscueError('DAEMON_UNREACHABLE', await withLogTail(`started the daemon but cannot connect to ${paths.socket}`, paths.logFile), {
        cause,
      });
    });
  }
  // After connecting, before a byte is sent: the socket we reached must be our own.
  try {
    assertSocketOwned(paths.socket);
  } catch (err) {
    socket.destroy();
    throw err;
  }
  const link = new Link(socket, settings);
  await link.handshake(Math.max(1, Math.min(settings.handshakeTimeoutMs, deadline - Date.now())));
  // The pid from the handshake: when another command won the start race, that is whose daemon answered.
  if (started) settings.onDaemonStarted?.(link.daemon.pid);
  return link;
}

function requestTimeoutFromEnv(env: NodeJS.ProcessEnv): number {
  const text = env.DISCUE_REQUEST_TIMEOUT;
  if (text === undefined || text === '') return DEFAULT_REQUEST_TIMEOUT_MS;
  return parseDuration(text, 'DISCUE_REQUEST_TIMEOUT');
}

function isWait(params: unknown): params is { wait: true; waitTimeoutMs?: number } {
  if (typeof params !== 'object' || params === null) return false;
  const { wait, waitTimeoutMs } = params as Record<string, unknown>;
  return wait === true && (waitTimeoutMs === undefined || (typeof waitTimeoutMs === 'number' && Number.isFinite(waitTimeoutMs)));
}

function closedError(): DiscueError {
  return new DiscueError('DAEMON_UNREACHABLE', 'the connection to the daemon is closed');
}

function isHelloResult(value: unknown): value is DaemonIdentity {
  if (typeof value !== 'object' || value === null) return false;
  const { pid, version, protocol, features } = value as Record<string, unknown>;
  if (features !== undefined && !(Array.isArray(features) && features.every((f) => typeof f === 'string'))) return false;
  return protocol === PROTOCOL_VERSION && typeof version === 'string' && typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0;
}

function openSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Opens a connection to the broker, starting its daemon if needed. */
export function connect(options: ConnectOptions = {}): Promise<DiscueClient> {
  return DiscueClient.connect(options);
}

/**
 * One client connection: splits the byte stream into frames, checks the
 * handshake, dispatches requests (pipelined, replies tagged with the request
 * id) and writes replies. A client that sends garbage, an oversized line or
 * breaks the protocol gets an error frame and is disconnected; nothing it
 * sent before a complete frame is acted on, and no other client notices.
 *
 * Memory is bounded whatever a client does: frames wait undispatched (and the
 * socket is paused) while this connection's unsent replies, or the whole
 * daemon's, are over a bound; the partial frames of all connections together
 * are capped; and a client that stops reading is dropped.
 */
import type { Socket } from 'node:net';
import { DiscueError } from '../protocol/errors.js';
import { InvalidUtf8Line, LineDecoder, PROTOCOL_VERSION, encodeFrame, parseRequest } from '../protocol/frames.js';
import type { ReplyFrame, RequestFrame } from '../protocol/frames.js';
import { VERSION } from '../version.js';
import type { Stream } from '../delivery/streams.js';
import type { HandlerContext, RequestContext } from './handlers/index.js';
import { handlers } from './handlers/index.js';
import type { Logger } from '../observe/log.js';
import { MAX_PARAMS_DEPTH, nestsDeeperThan } from './params.js';

/** What the hello tells clients this daemon serves beyond protocol 1's first requests (see RequestMap hello). */
const FEATURES = ['publish.many'];
/** Requests one connection may have in flight before the daemon stops reading from it. */
const MAX_IN_FLIGHT = 4096;
/** Unsent reply bytes of one connection above which its next frames wait. */
const CONNECTION_UNSENT_LIMIT = 8 * 1024 * 1024;
/** Unsent reply bytes of all connections above which the next frames of connections with unsent replies wait. */
const DAEMON_UNSENT_LIMIT = 128 * 1024 * 1024;
/**
 * Bytes of unfinished frames across all connections. A frame may be 16 MiB:
 * this lets a few large publishes arrive at once, and refuses the rest with BUSY.
 */
const PARTIAL_FRAMES_LIMIT = 64 * 1024 * 1024;
/**
 * Requests whose reply can be megabytes (a page of messages is up to 8 MiB):
 * one at a time per connection, or a client pipelining hundreds of them would
 * have all their replies built before the first one is written.
 */
const LARGE_REPLY_TYPES = new Set(['messages.list', 'messages.page']);
/**
 * A connection with unsent replies (or half a frame) that makes no progress
 * for this long is dropped. DISCUE_STALL_TIMEOUT_MS overrides it (read once at
 * daemon start): a test and ops knob, not a user setting.
 */
const STALL_TIMEOUT_MS = stallTimeout(process.env.DISCUE_STALL_TIMEOUT_MS);

function stallTimeout(text: string | undefined): number {
  const value = text === undefined ? NaN : Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : 60_000;
}

/** What all connections of this daemon hold together. */
const flow = {
  unsent: 0,
  partial: 0,
  /** Connections waiting for the daemon-wide unsent bytes to fall below the limit. */
  waiting: new Set<Connection>(),
};

export class Connection {
  private readonly decoder = new LineDecoder();
  private greeted = false;
  private inFlight = 0;
  private largeInFlight = 0;
  private corked = false;
  private closed = false;
  private released = false;
  /** The client shut down its sending side. */
  private readEnded = false;
  private draining = false;
  /** Complete frames read but not yet dispatched (the socket is paused while any wait). */
  private waiting: (string | InvalidUtf8Line)[] = [];
  private waitingFrom = 0;
  /** The first waiting frame, parsed, when it waits for a large reply before it to be written. */
  private head: RequestFrame | undefined;
  private readingPaused = false;
  /** This connection's share of flow.unsent and flow.partial. */
  private unsentCounted = 0;
  private partialCounted = 0;
  /** Last time the client took reply bytes or sent request bytes; see STALL_TIMEOUT_MS. */
  private lastWriteProgress = Date.now();
  private lastReadProgress = Date.now();
  private watchdog: NodeJS.Timeout | undefined;
  private readonly streams = new Map<number, Stream>();
  private closeCallbacks: (() => void)[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly ctx: HandlerContext,
    private readonly log: Logger,
    readonly onClose: (conn: Connection) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onFlushed());
    // A client that vanished mid-write (ECONNRESET, EPIPE) is no event for the log: 'close'
    // follows and cleans up. The handler must exist, or the error would end the daemon.
    socket.on('error', () => undefined);
    // The client sent its last request (the server is half-open, see server.ts): its
    // streams end, and the connection ends once every request has its reply. Without
    // half-open, Node ended our side at once and the replies of requests still in
    // flight (publishes that were stored) were dropped.
    socket.on('end', () => {
      this.readEnded = true;
      this.runCloseCallbacks();
      this.endIfAnswered();
    });
    socket.on('close', () => {
      this.closed = true;
      this.release();
      this.runCloseCallbacks();
      this.onClose(this);
    });
  }

  /** Refuses new requests from now on; those in flight still get their replies. */
  drain(): void {
    this.draining = true;
    // Streams end now; their requests then finish like any other.
    this.runCloseCallbacks();
  }

  private runCloseCallbacks(): void {
    const callbacks = this.closeCallbacks;
    this.closeCallbacks = [];
    for (const callback of callbacks) callback();
  }

  get busy(): boolean {
    return this.inFlight > 0;
  }

  /** Stops the connection, telling the client why. */
  end(error?: DiscueError): void {
    if (this.closed) return;
    if (error) this.send({ id: 0, ok: false, error: error.toWire() });
    this.closed = true;
    this.waiting = [];
    this.head = undefined;
    this.socket.end();
    // Do not wait forever for a client that never reads.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Gives back this connection's share of the daemon-wide budgets. */
  private release(): void {
    if (this.released) return;
    this.released = true;
    flow.unsent -= this.unsentCounted;
    flow.partial -= this.partialCounted;
    this.unsentCounted = 0;
    this.partialCounted = 0;
    flow.waiting.delete(this);
    clearTimeout(this.watchdog);
    wakeWaiting();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastReadProgress = Date.now();
    let lines: (string | InvalidUtf8Line)[];
    try {
      lines = this.decoder.pushStrict(chunk);
    } catch (err) {
      this.log.warn('client sent an oversized frame; disconnected');
      this.end(err as DiscueError);
      return;
    }
    const partial = this.decoder.buffered;
    if (partial > this.partialCounted && flow.partial + (partial - this.partialCounted) > PARTIAL_FRAMES_LIMIT) {
      // Refused rather than paused: paused senders of half frames would wait on
      // each other forever, each holding its half.
      this.log.warn('partial frames of all clients over the limit; disconnected a client', { bytes: flow.partial });
      this.end(
        new DiscueError(
          'BUSY',
          `the daemon is receiving ${PARTIAL_FRAMES_LIMIT / 1024 / 1024} MiB of other large requests; send smaller requests or retry later`,
        ),
      );
      this.release();
      return;
    }
    flow.partial += partial - this.partialCounted;
    this.partialCounted = partial;
    if (partial > 0) this.armWatchdog();
    for (const line of lines) {
      if (typeof line === 'string' && line.length === 0) continue;
      this.waiting.push(line);
    }
    this.pump();
  }

  /** Called when the daemon-wide unsent bytes fell below the limit. */
  resumeDispatch(): void {
    this.pump();
  }

  /** Dispatches waiting frames for as long as the bounds allow; pauses reading while any wait. */
  private pump(): void {
    while (!this.closed && this.waitingFrom < this.waiting.length) {
      if (this.inFlight >= MAX_IN_FLIGHT || this.socket.writableLength > CONNECTION_UNSENT_LIMIT) break;
      // Over the daemon-wide bound, only connections that have replies of
      // their own still unsent wait: a client that reads (a new CLI command)
      // is served while the ones that do not hold the memory.
      if (flow.unsent > DAEMON_UNSENT_LIMIT && this.socket.writableLength > 0) {
        flow.waiting.add(this);
        break;
      }
      if (this.head === undefined) {
        const line = this.waiting[this.waitingFrom]!;
        if (line instanceof InvalidUtf8Line) {
          this.waitingFrom++;
          this.refuseInvalidUtf8(line);
          continue;
        }
        try {
          this.head = parseRequest(line);
        } catch (err) {
          this.log.warn('client sent a malformed frame; disconnected', { error: (err as Error).message });
          this.end(err as DiscueError);
          return;
        }
      }
      if (this.greeted && this.largeInFlight > 0 && LARGE_REPLY_TYPES.has(this.head.type)) break;
      const frame = this.head;
      this.head = undefined;
      this.waitingFrom++;
      this.dispatchSafely(frame);
    }
    if (this.waitingFrom >= this.waiting.length) {
      this.waiting = [];
      this.waitingFrom = 0;
    }
    this.setReading(this.waiting.length === 0);
    this.endIfAnswered();
  }

  private endIfAnswered(): void {
    if (!this.readEnded || this.closed || this.inFlight > 0 || this.waiting.length > 0) return;
    this.closed = true;
    this.socket.end();
  }

  private setReading(read: boolean): void {
    if (this.closed || read === !this.readingPaused) return;
    this.readingPaused = !read;
    if (read) this.socket.resume();
    else this.socket.pause();
  }

  /**
   * A frame that is not UTF-8 is refused, not stored with U+FFFD in place of
   * what was sent. Framing is intact, so the connection goes on; the id is
   * read from the lenient decoding only to address the reply.
   */
  private refuseInvalidUtf8(line: InvalidUtf8Line): void {
    let id = 0;
    try {
      id = parseRequest(line.lenient).id;
    } catch {
      // Not a request even when decoded leniently: the generic error id.
    }
    const error = new DiscueError('BAD_FRAME', 'frame is not valid UTF-8; discue stores text exactly as sent, so send UTF-8');
    if (id === 0 || !this.greeted) {
      this.end(error);
      return;
    }
    this.reply(id, error);
  }

  /** The last line of defence: a bug in dispatch costs this request an INTERNAL reply, never the daemon. */
  private dispatchSafely(frame: RequestFrame): void {
    try {
      this.dispatch(frame);
    } catch (err) {
      this.reply(frame.id, err instanceof Error ? err : new Error(String(err)));
    }
  }

  private dispatch(frame: RequestFrame): void {
    if (!this.greeted) {
      this.hello(frame);
      return;
    }
    if (frame.type === 'listen.ack') {
      this.ack(frame);
      return;
    }
    if (this.draining) {
      this.reply(frame.id, new DiscueError('SHUTTING_DOWN', 'the daemon is shutting down'));
      return;
    }
    const handler = Object.hasOwn(handlers, frame.type) ? handlers[frame.type as keyof typeof handlers] : undefined;
    if (handler === undefined) {
      this.reply(frame.id, new DiscueError('UNKNOWN_REQUEST', `unknown request type "${frame.type}"`));
      return;
    }
    if (nestsDeeperThan(frame.params, MAX_PARAMS_DEPTH)) {
      this.reply(frame.id, new DiscueError('INVALID_ARGUMENT', `request params nest deeper than ${MAX_PARAMS_DEPTH} levels`));
      return;
    }
    const large = LARGE_REPLY_TYPES.has(frame.type);
    this.inFlight++;
    if (large) this.largeInFlight++;
    const req: RequestContext = {
      id: frame.id,
      emit: (event) => this.send({ id: frame.id, event }),
      onClose: (callback) => {
        if (this.closed || this.draining) callback();
        else this.closeCallbacks.push(callback);
      },
      streams: this.streams,
    };
    handler(frame.params, this.ctx, req).then(
      (result) => this.done(frame.id, large, result),
      (err: unknown) => this.done(frame.id, large, err instanceof Error ? err : new Error(String(err)), true),
    );
  }

  /**
   * Acks are fire-and-forget: no reply, so a stream's consumer never waits on
   * them. One that is not even shaped like an ack gets an error reply; an ack
   * for a stream that has just ended is dropped quietly (that race is normal).
   */
  private ack(frame: RequestFrame): void {
    const params = frame.params;
    const fields = typeof params === 'object' && params !== null && !Array.isArray(params) ? (params as Record<string, unknown>) : undefined;
    if (fields === undefined || !isCounter(fields.stream) || !isCounter(fields.tag)) {
      this.reply(
        frame.id,
        new DiscueError('INVALID_ARGUMENT', 'listen.ack params must be {"stream": N, "tag": N} with whole numbers from 0'),
      );
      return;
    }
    this.streams.get(fields.stream)?.ack(fields.tag);
  }

  private done(id: number, large: boolean, value: unknown, failed = false): void {
    this.inFlight--;
    if (large) this.largeInFlight--;
    if (failed) this.reply(id, value as Error);
    else this.send({ id, ok: true, result: value });
    // After the reply is queued, so the unsent bound sees it before the next large request goes.
    this.pump();
  }

  private hello(frame: RequestFrame): void {
    if (frame.type !== 'hello') {
      this.end(new DiscueError('BAD_FRAME', 'the first frame must be a hello handshake'));
      return;
    }
    const params = frame.params;
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      this.send({
        id: frame.id,
        ok: false,
        error: new DiscueError('BAD_FRAME', 'hello params must be an object {"protocol": N, "version": "..."}').toWire(),
      });
      this.end();
      return;
    }
    const { protocol, version } = params as Record<string, unknown>;
    if (protocol !== PROTOCOL_VERSION) {
      this.send({
        id: frame.id,
        ok: false,
        error: new DiscueError(
          'PROTOCOL_MISMATCH',
          `this daemon (discue ${VERSION}, pid ${process.pid}) speaks protocol ${PROTOCOL_VERSION}, the client ${describe(
            protocol,
          )} (discue ${describe(version)}); run \`discue daemon restart\` so the daemon matches the CLI`,
          { details: { daemonProtocol: PROTOCOL_VERSION, daemonVersion: VERSION, pid: process.pid } },
        ).toWire(),
      });
      this.end();
      return;
    }
    this.greeted = true;
    this.send({ id: frame.id, ok: true, result: { protocol: PROTOCOL_VERSION, version: VERSION, pid: process.pid, features: FEATURES } });
  }

  private reply(id: number, err: Error): void {
    if (err instanceof DiscueError) {
      this.send({ id, ok: false, error: err.toWire() });
      return;
    }
    this.log.error('request failed', { error: err.stack ?? err.message });
    this.send({ id, ok: false, error: { code: 'INTERNAL', message: `internal error: ${err.message}` } });
  }

  /**
   * Replies finishing in the same tick (one group-committed batch) leave in
   * one write: cork on the first, uncork on the next tick.
   */
  send(frame: ReplyFrame): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    // Idle until now: the stall clock starts with this reply, not at the last one.
    if (this.socket.writableLength === 0) this.lastWriteProgress = Date.now();
    let text: string;
    try {
      text = encodeFrame(frame);
    } catch (err) {
      // A result that cannot be encoded (a bug) fails its request, not the connection.
      this.log.error('reply could not be encoded', { error: (err as Error).message });
      text = encodeFrame({ id: frame.id, ok: false, error: { code: 'INTERNAL', message: `internal error: ${(err as Error).message}` } });
    }
    this.socket.write(text, (err) => {
      if (err) return;
      this.lastWriteProgress = Date.now();
      this.onFlushed();
    });
    this.countUnsent();
    this.armWatchdog();
  }

  /** Some replies reached the kernel: account for them and dispatch what waited on them. */
  private onFlushed(): void {
    this.countUnsent();
    if (this.waiting.length > 0) this.pump();
  }

  private countUnsent(): void {
    if (this.released) return;
    const unsent = this.socket.writableLength;
    const before = flow.unsent;
    flow.unsent += unsent - this.unsentCounted;
    this.unsentCounted = unsent;
    if (before > DAEMON_UNSENT_LIMIT && flow.unsent <= DAEMON_UNSENT_LIMIT) wakeWaiting();
  }

  /**
   * Drops a client that stopped reading its replies, or stopped halfway
   * through a frame, for STALL_TIMEOUT_MS: otherwise it would hold its unsent
   * replies or its half frame (and its share of the daemon-wide bounds) forever.
   */
  private armWatchdog(): void {
    if (this.watchdog !== undefined || this.released) return;
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      if (this.released) return;
      const now = Date.now();
      const writeStalled = this.socket.writableLength > 0 && now - this.lastWriteProgress >= STALL_TIMEOUT_MS;
      const readStalled = this.decoder.buffered > 0 && now - this.lastReadProgress >= STALL_TIMEOUT_MS;
      if (writeStalled || readStalled) {
        this.log.warn(
          writeStalled
            ? 'client did not read its replies; disconnected'
            : 'client stopped in the middle of a frame; disconnected',
          { unsentBytes: this.socket.writableLength, partialBytes: this.decoder.buffered, stallMs: STALL_TIMEOUT_MS },
        );
        this.closed = true;
        this.socket.destroy();
        return;
      }
      if (this.socket.writableLength > 0 || this.decoder.buffered > 0) this.armWatchdog();
    }, STALL_TIMEOUT_MS / 4);
    this.watchdog.unref();
  }
}

/** Lets connections that waited for the daemon-wide unsent bytes go on. */
function wakeWaiting(): void {
  if (flow.waiting.size === 0 || flow.unsent > DAEMON_UNSENT_LIMIT) return;
  const waiting = [...flow.waiting];
  flow.waiting.clear();
  // Next tick: a wake-up from inside one connection's write callback must not
  // run another connection's handlers re-entrantly.
  process.nextTick(() => {
    for (const conn of waiting) conn.resumeDispatch();
  });
}

function isCounter(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** A short, safe rendering of what a client claimed to be (it may be anything). */
function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return value === null ? 'null' : `a ${Array.isArray(value) ? 'list' : typeof value}`;
}

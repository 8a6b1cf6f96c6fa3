/**
 * The socket client: what the CLI uses, and the package's library entry
 * (`import { connect } from 'discue'`), so a Node service can publish
 * without spawning a process.
 */
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { DiscueError } from '../protocol/errors.js';
import { LineDecoder, MAX_FRAME_BYTES, MAX_REPLY_BYTES, PROTOCOL_VERSION, encodeFrame, parseReply } from '../protocol/frames.js';
import type { ReplyFrame } from '../protocol/frames.js';
import type { MessageInput, ParamsOf, PublishResult, RequestType, ResultOf } from '../protocol/messages.js';
import { assertSocketPath, resolvePaths } from '../protocol/paths.js';
import type { BrokerPaths } from '../protocol/paths.js';
import { VERSION } from '../version.js';
import { withLogTail } from './logtail.js';
import { startDaemon } from './spawn.js';

export interface ConnectOptions {
  /** Broker state directory (default: DISCUE_HOME, then ~/.discue). */
  home?: string;
  /** Socket path (default: DISCUE_SOCKET, then inside home). */
  socket?: string;
  /** Start the daemon if it is not running (default true). */
  autoStart?: boolean;
  /** How long to wait for the daemon's handshake (default 10 s). */
  handshakeTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Called with the daemon's pid after this connect started it (the CLI tells a person at a terminal). */
  onDaemonStarted?: (pid: number) => void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  onEvent?: (event: unknown) => void;
}

export class DiscueClient {
  private readonly decoder = new LineDecoder(MAX_REPLY_BYTES);
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing = false;
  private failure: DiscueError | undefined;
  /** Who answered the handshake. */
  daemon: { pid: number; version: string; protocol: number } = { pid: 0, version: '', protocol: 0 };

  private constructor(
    private readonly socket: Socket,
    readonly paths: BrokerPaths,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => void this.onClose());
  }

  /** Opens a connection to the broker, starting its daemon if needed. */
  static async connect(options: ConnectOptions = {}): Promise<DiscueClient> {
    const paths = resolvePaths({ home: options.home, socket: options.socket, env: options.env });
    assertSocketPath(paths.socket);
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
      if (options.autoStart === false) {
        throw new DiscueError(
          'DAEMON_UNREACHABLE',
          `the daemon is not running (no answer on ${paths.socket}); start it with \`discue daemon start\``,
          { cause: err },
        );
      }
      started = (await startDaemon(paths, { env: options.env })).started;
      socket = await openSocket(paths.socket).catch(async (cause: unknown) => {
        throw new DiscueError('DAEMON_UNREACHABLE', await withLogTail(`started the daemon but cannot connect to ${paths.socket}`, paths.logFile), {
          cause,
        });
      });
    }
    const client = new DiscueClient(socket, paths);
    await client.handshake(options.handshakeTimeoutMs ?? 10_000);
    // The pid from the handshake: when another command won the start race, that is whose daemon answered.
    if (started) options.onDaemonStarted?.(client.daemon.pid);
    return client;
  }

  private async handshake(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new DiscueError(
              'NOT_A_DISCUE_SOCKET',
              `${this.paths.socket} accepted the connection but did not answer the discue handshake within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      const hello: unknown = await Promise.race([
        this.request('hello', { protocol: PROTOCOL_VERSION, version: VERSION }),
        timeout,
      ]);
      // Something that merely echoes JSON back would otherwise pass, and the
      // next request would wait forever for an answer.
      if (!isHelloResult(hello)) {
        throw new DiscueError(
          'NOT_A_DISCUE_SOCKET',
          `${this.paths.socket} answered the handshake, but not as a discue daemon does; is DISCUE_SOCKET or --socket pointing at another program?`,
        );
      }
      this.daemon = hello;
    } catch (err) {
      this.socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends one request and resolves with its result, or rejects with a DiscueError. */
  request<T extends RequestType>(type: T, params: ParamsOf<T>): Promise<ResultOf<T>> {
    return this.send(type, params) as Promise<ResultOf<T>>;
  }

  /**
   * Sends a request whose reply is a stream: `onEvent` gets each event, the
   * promise settles with the final reply.
   */
  stream(type: string, params: unknown, onEvent: (event: unknown) => void): { id: number; done: Promise<unknown> } {
    const id = this.nextId;
    return { id, done: this.send(type, params, onEvent) };
  }

  /** Publishes one message or a batch; resolves once they are durable. */
  publish(queue: string, messages: MessageInput | MessageInput[]): Promise<PublishResult> {
    return this.request('publish', { queue, messages: Array.isArray(messages) ? messages : [messages] });
  }

  /** Writes a raw frame for requests outside the typed map (acks of streams). */
  notify(type: string, params: unknown): void {
    this.write(encodeFrame({ id: this.nextId++, type, params }));
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  private send(type: string, params: unknown, onEvent?: (event: unknown) => void): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const frame = encodeFrame({ id, type, params });
    if (frame.length > MAX_FRAME_BYTES / 3 && Buffer.byteLength(frame) > MAX_FRAME_BYTES) {
      return Promise.reject(new DiscueError('FRAME_TOO_LARGE', `request is larger than ${MAX_FRAME_BYTES} bytes`));
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, onEvent ? { resolve, reject, onEvent } : { resolve, reject });
      this.write(frame);
    });
  }

  private write(frame: string): void {
    this.socket.write(frame);
  }

  private onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.decoder.push(chunk);
    } catch (err) {
      this.fail(
        new DiscueError('FRAME_TOO_LARGE', `a reply from ${this.paths.socket} is larger than ${MAX_REPLY_BYTES} bytes; ask for less (e.g. a smaller --limit)`, {
          cause: err,
        }),
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
        this.fail(
          new DiscueError(cause.code, `${cause.message} (socket ${this.paths.socket}); is it a discue daemon?`, { cause }),
        );
        return;
      }
      this.onFrame(frame);
    }
  }

  private onFrame(frame: ReplyFrame): void {
    if (frame.id === 0 && 'ok' in frame && !frame.ok) {
      // A connection-level error (shutting down, frame refused): fails everything.
      this.fail(DiscueError.fromWire(frame.error));
      return;
    }
    const pending = this.pending.get(frame.id);
    if (!pending) return;
    if ('event' in frame) {
      pending.onEvent?.(frame.event);
      return;
    }
    this.pending.delete(frame.id);
    if (frame.ok) pending.resolve(frame.result);
    else pending.reject(DiscueError.fromWire(frame.error));
  }

  private fail(err: DiscueError): void {
    this.failure ??= err;
    for (const pending of this.pending.values()) pending.reject(err);
    this.pending.clear();
    this.socket.destroy();
  }

  private async onClose(): Promise<void> {
    if (this.failure) return;
    if (this.closing || this.pending.size === 0) {
      this.failure = new DiscueError('DAEMON_UNREACHABLE', 'the connection to the daemon is closed');
      return;
    }
    const what =
      this.daemon.pid === 0
        ? `${this.paths.socket} closed the connection during the handshake: the daemon died or is stopping, or the socket belongs to another program`
        : `the daemon (pid ${this.daemon.pid}) closed the connection before answering (socket ${this.paths.socket})`;
    const message = await withLogTail(what, this.paths.logFile);
    this.fail(new DiscueError('DAEMON_DIED', message));
  }
}

function isHelloResult(value: unknown): value is { pid: number; version: string; protocol: number } {
  if (typeof value !== 'object' || value === null) return false;
  const { pid, version, protocol } = value as Record<string, unknown>;
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

/** Opens a connection to the broker, starting its daemon if needed. */
export function connect(options: ConnectOptions = {}): Promise<DiscueClient> {
  return DiscueClient.connect(options);
}

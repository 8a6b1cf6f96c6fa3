/**
 * One client connection: splits the byte stream into frames, checks the
 * handshake, dispatches requests (pipelined, replies tagged with the request
 * id) and writes replies. A client that sends garbage, an oversized line or
 * breaks the protocol gets an error frame and is disconnected; nothing it
 * sent before a complete frame is acted on, and no other client notices.
 */
import type { Socket } from 'node:net';
import { DiscueError } from '../protocol/errors.js';
import { LineDecoder, PROTOCOL_VERSION, encodeFrame, parseRequest } from '../protocol/frames.js';
import type { ReplyFrame, RequestFrame } from '../protocol/frames.js';
import { VERSION } from '../version.js';
import type { Subscription } from '../delivery/engine.js';
import type { HandlerContext, RequestContext } from './handlers.js';
import { handlers } from './handlers.js';
import { asParams } from './params.js';
import type { Logger } from './log.js';

/** Requests one connection may have in flight before the daemon stops reading from it. */
const MAX_IN_FLIGHT = 4096;

export class Connection {
  private readonly decoder = new LineDecoder();
  private greeted = false;
  private inFlight = 0;
  private paused = false;
  private corked = false;
  private closed = false;
  private draining = false;
  private readonly subscriptions = new Map<number, Subscription>();
  private closeCallbacks: (() => void)[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly ctx: HandlerContext,
    private readonly log: Logger,
    readonly onClose: (conn: Connection) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug('connection error', { error: err.message }));
    socket.on('close', () => {
      this.closed = true;
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
    this.socket.end();
    // Do not wait forever for a client that never reads.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let lines: string[];
    try {
      lines = this.decoder.push(chunk);
    } catch (err) {
      this.log.warn('client sent an oversized frame; disconnected');
      this.end(err as DiscueError);
      return;
    }
    for (const line of lines) {
      if (this.closed) return;
      if (line.length === 0) continue;
      let frame: RequestFrame;
      try {
        frame = parseRequest(line);
      } catch (err) {
        this.log.warn('client sent a malformed frame; disconnected', { error: (err as Error).message });
        this.end(err as DiscueError);
        return;
      }
      this.dispatch(frame);
    }
  }

  private dispatch(frame: RequestFrame): void {
    if (!this.greeted) {
      this.hello(frame);
      return;
    }
    if (frame.type === 'listen.ack') {
      // Acks are fire-and-forget: no reply, so a stream's consumer never waits on them.
      const params = asParams(frame.params);
      const subscription = typeof params.stream === 'number' ? this.subscriptions.get(params.stream) : undefined;
      if (subscription && typeof params.tag === 'number') subscription.ack(params.tag);
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
    this.inFlight++;
    if (this.inFlight >= MAX_IN_FLIGHT && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    const req: RequestContext = {
      id: frame.id,
      emit: (event) => this.send({ id: frame.id, event }),
      onClose: (callback) => {
        if (this.closed || this.draining) callback();
        else this.closeCallbacks.push(callback);
      },
      subscriptions: this.subscriptions,
    };
    handler(frame.params, this.ctx, req).then(
      (result) => this.done(frame.id, result),
      (err: unknown) => this.done(frame.id, err instanceof Error ? err : new Error(String(err)), true),
    );
  }

  private done(id: number, value: unknown, failed = false): void {
    this.inFlight--;
    if (this.paused && this.inFlight < MAX_IN_FLIGHT / 2) {
      this.paused = false;
      this.socket.resume();
    }
    if (failed) this.reply(id, value as Error);
    else this.send({ id, ok: true, result: value });
  }

  private hello(frame: RequestFrame): void {
    if (frame.type !== 'hello') {
      this.end(new DiscueError('BAD_FRAME', 'the first frame must be a hello handshake'));
      return;
    }
    const params = asParams(frame.params);
    if (params.protocol !== PROTOCOL_VERSION) {
      this.send({
        id: frame.id,
        ok: false,
        error: new DiscueError(
          'PROTOCOL_MISMATCH',
          `this daemon (discue ${VERSION}, pid ${process.pid}) speaks protocol ${PROTOCOL_VERSION}, the client ${String(
            params.protocol,
          )} (discue ${String(params.version)}); run \`discue daemon restart\` so the daemon matches the CLI`,
          { details: { daemonProtocol: PROTOCOL_VERSION, daemonVersion: VERSION, pid: process.pid } },
        ).toWire(),
      });
      this.end();
      return;
    }
    this.greeted = true;
    this.send({ id: frame.id, ok: true, result: { protocol: PROTOCOL_VERSION, version: VERSION, pid: process.pid } });
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
    this.socket.write(encodeFrame(frame));
  }
}

/**
 * Framing: one JSON document per line (NDJSON) over a Unix socket.
 *
 * Every request carries a numeric `id` chosen by the client; every reply
 * carries the same id, so requests can be pipelined on one connection.
 * A request that streams (listen, logs) sends `event` frames and ends with an
 * ordinary `ok` reply.
 */
import { DiscueError } from './errors.js';
import type { WireError } from './errors.js';

/** Bumped whenever a frame or request changes incompatibly. */
export const PROTOCOL_VERSION = 1;

/**
 * Largest frame either side accepts. A single message is at most 256 KiB of
 * `data`, which JSON escaping can blow up six-fold; batches are split by the
 * client well below this.
 */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * Largest reply a client accepts. Replies are bigger than requests: a page of
 * 100 messages of 256 KiB is 25 MiB, and JSON escaping can make it six times
 * that. The daemon is the peer the client chose to trust, so this bound only
 * stops a runaway, not an attack.
 */
export const MAX_REPLY_BYTES = 256 * 1024 * 1024;

export interface RequestFrame {
  id: number;
  type: string;
  params?: unknown;
}

export type ReplyFrame =
  | { id: number; ok: true; result?: unknown }
  | { id: number; ok: false; error: WireError }
  | { id: number; event: unknown };

const NEWLINE = 0x0a;

/**
 * A line that is not valid UTF-8, from `LineDecoder.pushStrict`. `lenient` is
 * the line with U+FFFD substituted: good enough to find the frame's id for the
 * error reply, never good enough to act on.
 */
export class InvalidUtf8Line {
  constructor(readonly lenient: string) {}
}

/**
 * Splits a byte stream into lines, refusing to buffer more than `maxBytes`
 * without a newline: a client sending a 100 MB line is cut off at the limit
 * rather than after the daemon has buffered it all.
 */
export class LineDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** One per decoder: `fatal` makes decode() throw instead of substituting U+FFFD. */
  private readonly strictDecoder = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly maxBytes: number = MAX_FRAME_BYTES) {}

  /**
   * Returns the complete lines in `chunk` (without the newline). Invalid UTF-8
   * becomes U+FFFD: for replies from the daemon, which only sends what it
   * encoded itself.
   */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    this.split(chunk, (bytes, start, end) => lines.push(bytes.toString('utf8', start, end)));
    return lines;
  }

  /**
   * Like push, but a line that is not valid UTF-8 comes back as an
   * InvalidUtf8Line: what a client sends is stored as sent or refused, never
   * silently altered. Framing stays intact, so the lines after it are fine.
   */
  pushStrict(chunk: Buffer): (string | InvalidUtf8Line)[] {
    const lines: (string | InvalidUtf8Line)[] = [];
    this.split(chunk, (bytes, start, end) => {
      const line = bytes.subarray(start, end);
      try {
        lines.push(this.strictDecoder.decode(line));
      } catch {
        lines.push(new InvalidUtf8Line(line.toString('utf8')));
      }
    });
    return lines;
  }

  private split(chunk: Buffer, emit: (bytes: Buffer, start: number, end: number) => void): void {
    let start = 0;
    let nl = chunk.indexOf(NEWLINE, start);
    while (nl !== -1) {
      if (this.pendingBytes + (nl - start) > this.maxBytes) throw frameTooLarge(this.maxBytes);
      if (this.pendingBytes > 0) {
        this.pending.push(chunk.subarray(start, nl));
        const line = Buffer.concat(this.pending, this.pendingBytes + (nl - start));
        this.pending = [];
        this.pendingBytes = 0;
        emit(line, 0, line.length);
      } else {
        emit(chunk, start, nl);
      }
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.pendingBytes + rest.length > this.maxBytes) throw frameTooLarge(this.maxBytes);
      this.pending.push(rest);
      this.pendingBytes += rest.length;
    }
  }

  /** Bytes of an unfinished frame still buffered. */
  get buffered(): number {
    return this.pendingBytes;
  }
}

function frameTooLarge(max: number): DiscueError {
  return new DiscueError('FRAME_TOO_LARGE', `frame larger than ${max} bytes without a newline`);
}

export function encodeFrame(frame: RequestFrame | ReplyFrame): string {
  return JSON.stringify(frame) + '\n';
}

/** Parses and shape-checks one request line from a client. */
export function parseRequest(line: string): RequestFrame {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    throw new DiscueError('BAD_FRAME', 'frame is not valid JSON', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DiscueError('BAD_FRAME', 'frame must be a JSON object');
  }
  const { id, type, params } = value as Record<string, unknown>;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new DiscueError('BAD_FRAME', 'frame needs a non-negative integer "id"');
  }
  if (typeof type !== 'string' || type.length === 0) {
    throw new DiscueError('BAD_FRAME', 'frame needs a string "type"');
  }
  return { id, type, params };
}

/** Parses and shape-checks one reply line from the daemon. */
export function parseReply(line: string): ReplyFrame {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    throw new DiscueError('NOT_A_DISCUE_SOCKET', 'the socket answered with something that is not JSON', { cause });
  }
  if (!isReplyFrame(value)) {
    throw new DiscueError('NOT_A_DISCUE_SOCKET', 'the socket answered with a frame discue does not know');
  }
  return value;
}

/**
 * A reply is `{id, ok: true, result?}`, `{id, ok: false, error: {code, message}}`
 * or `{id, event}`. Anything else (an echo server sends our own request back)
 * is refused here rather than crashing whoever reads `error.code`.
 */
function isReplyFrame(value: unknown): value is ReplyFrame {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const frame = value as Record<string, unknown>;
  if (typeof frame.id !== 'number') return false;
  if (frame.ok === true) return true;
  if (frame.ok === false) {
    const error = frame.error as Record<string, unknown> | null | undefined;
    return typeof error === 'object' && error !== null && typeof error.code === 'string' && typeof error.message === 'string';
  }
  return frame.ok === undefined && 'event' in frame;
}

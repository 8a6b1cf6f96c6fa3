/**
 * The shapes that cross the socket, and the validation of user input that
 * both sides share. The daemon validates everything again: the CLI checks
 * early only to give a faster, friendlier error.
 */
import { DiscueError } from './errors.js';
import type { StoreLocation } from './store.js';

/** Default and maximum size of a message's `data`, in UTF-8 bytes. */
export const MAX_DATA_BYTES = 256 * 1024;
export const MAX_NAME_LENGTH = 256;
export const QUEUE_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
export const MAX_KEY_LENGTH = 256;
/**
 * Idempotency keys: printable ASCII (space to ~). Kept to ASCII so a key maps
 * unchanged onto a NATS header (Nats-Msg-Id) and sorts below 0x7f in storage.
 */
const KEY_RE = /^[\x20-\x7e]+$/;

/** What a publisher sends. */
export interface MessageInput {
  data: string;
  name?: string;
  /**
   * Idempotency key: a second publish with the same key to the same queue
   * within the dedupe window (default 10 minutes) stores nothing and is
   * answered with the first message's id. Not part of the envelope.
   */
  key?: string;
}

/** What is stored and delivered: the message envelope. */
export interface Envelope {
  id: string;
  queue: string;
  name?: string;
  data: string;
  publishedAt: string;
}

/** A count over rolling windows (statistics are kept since the daemon started). */
export interface CountWindow {
  lastMinute: number;
  lastHour: number;
  last24h: number;
  sinceStart: number;
}

export interface QueueStats {
  added: CountWindow;
  /** Listeners registered on the queue. */
  listeners: number;
}

export interface ListenerStats {
  succeeded: CountWindow;
  failed: CountWindow;
  dead: CountWindow;
  /** Stored messages not yet settled, over all the listener's queues (in flight included). */
  pending: number;
  /** Age in ms of the oldest message not yet settled, over all its queues; 0 when none. */
  lagMs?: number;
}

export interface RecentDelivery {
  at: string;
  listener: string;
  queue: string;
  messageId: string;
  state: DeliveryState;
  attempt: Attempt;
}

export interface StatsSnapshot {
  at: string;
  daemon: DaemonStatus;
  queues: QueueInfo[];
  listeners: ListenerInfo[];
  recent: RecentDelivery[];
}

export interface QueueInfo {
  stats?: QueueStats;
  name: string;
  createdAt: string;
  /** JSON Schema that `data`, parsed as JSON, must satisfy. */
  schema?: Record<string, unknown>;
  /** Messages older than this many milliseconds are removed. */
  retentionMs?: number;
  /** At most this many messages are kept; the oldest go first. */
  maxMessages?: number;
  /** Messages stored now. */
  messages: number;
  /** Bytes of `data` stored now. */
  bytes: number;
  firstId?: string;
  lastId?: string;
  lastPublishedAt?: string;
}

export interface DaemonStatus {
  pid: number;
  version: string;
  protocol: number;
  home: string;
  /** The LevelDB directory; for another backend, where a LevelDB store would be. Kept for older scripts: see store. */
  dataDir: string;
  /** Which backend keeps the data, and where. */
  store: StoreLocation;
  socket: string;
  startedAt: string;
  uptimeMs: number;
  queues: number;
  messages: number;
  rssBytes: number;
  connections: number;
  /** Storage problems the daemon knows of (disk full, damaged records, a torn log at start). */
  warnings?: string[];
}

export interface PublishResult {
  queue: string;
  ids: string[];
  publishedAt: string;
  /**
   * Positions (0-based) of messages whose key was already stored: nothing was
   * stored for them, and their id is the first message's. Absent if none.
   */
  duplicates?: number[];
  /** With `wait`: what each listener did with the batch. */
  deliveries?: WaitOutcome[];
}

export type ListenerKind = 'http' | 'exec' | 'stream';
export type ListenerState = 'active' | 'paused' | 'disabled';
export type DeliveryState = 'pending' | 'failed' | 'dead' | 'delivered';

/** A registered listener, as the daemon reports it. */
export interface ListenerInfo {
  id: string;
  name?: string;
  kind: ListenerKind;
  /** Queue names; empty with allQueues for a `listen` with no queue. */
  queues: string[];
  allQueues?: boolean;
  url?: string;
  headers?: Record<string, string>;
  /** Only in the reply to `listener add`, and to `listener show --secret`. */
  secret?: string;
  hasSecret?: boolean;
  /** The command as argv (exec listeners). */
  command?: string[];
  shell?: boolean;
  cwd?: string;
  timeoutMs: number;
  maxAttempts: number;
  retryDelayMs: number;
  concurrency: number;
  state: ListenerState;
  disabledReason?: string;
  createdAt: string;
  /** Live figures from the delivery engine. */
  progress?: ListenerProgress[];
  stats?: ListenerStats;
  connected?: boolean;
}

/** How deliveries to a listener are going right now. */
export interface ListenerHealth {
  /** The outcome of the last attempt (none yet since the daemon started: absent). */
  lastOutcome?: 'ok' | 'failed';
  /** Failed attempts since the last successful one. */
  consecutiveFailures: number;
  /** The error of the last failed attempt, while failures go on (a success clears it). */
  lastError?: string;
  /** When a failed delivery is tried again. */
  nextAttemptAt?: string;
}

export interface ListenerProgress extends ListenerHealth {
  queue: string;
  /** Last message id settled (delivered or dead) in order. */
  cursor?: string;
  inFlight: number;
  /** Messages delivered since the daemon started. */
  delivered: number;
  failedAttempts: number;
  dead: number;
  /** Stored messages after the cursor: not yet settled. */
  pending?: number;
  /** Age in ms of the oldest message after the cursor (now minus its publishedAt); 0 when none. */
  lagMs?: number;
  lastDeliveryAt?: string;
}

export interface Attempt {
  attempt: number;
  at: string;
  durationMs: number;
  ok: boolean;
  status?: number;
  exitCode?: number;
  signal?: string;
  error?: string;
  /** A short tail of the response body or the command's output. */
  output?: string;
}

export interface DeliveryInfo {
  id: string;
  listenerId: string;
  listenerName?: string;
  queue: string;
  messageId: string;
  state: DeliveryState;
  attempts: Attempt[];
  nextAttemptAt?: string;
  updatedAt: string;
}

export interface ListenerAddParams {
  kind: 'http' | 'exec';
  queues: string[];
  name?: string;
  url?: string;
  headers?: Record<string, string>;
  secret?: string;
  command?: string;
  shell?: boolean;
  cwd?: string;
  timeoutMs?: number;
  maxAttempts?: number;
  retryDelayMs?: number;
  concurrency?: number;
  from?: 'new' | 'all';
}

export interface ListenParams {
  /** Queues to listen to; empty means all queues, including ones created later. */
  queues: string[];
  /** Durable: the daemon keeps the position under this name. */
  name?: string;
  from?: 'new' | 'all';
  /** With from "new": start at messages stored from this time (ms), e.g. when the command started. */
  sinceMs?: number;
  /** Messages sent before waiting for acks. */
  prefetch?: number;
}

/** One message pushed to a `listen` stream; ack it with `listen.ack`. */
export interface StreamEvent {
  tag: number;
  message: Envelope;
}

export interface WaitOutcome {
  listener: string;
  name?: string;
  /** refused: the receiver answered 410 Gone and the listener was disabled; the message was not delivered. */
  state: 'delivered' | 'dead' | 'pending' | 'refused';
  /** Why a refused listener was disabled. */
  reason?: string;
  /** With pending: why it is taking long (the listener's failures so far). */
  health?: ListenerHealth;
}

/** Every request type, its params and its result: the typed client is built from this. */
export interface RequestMap {
  hello: { params: { protocol: number; version: string }; result: { protocol: number; version: string; pid: number } };
  'daemon.status': { params: Record<string, never>; result: DaemonStatus };
  stats: { params: { recent?: number }; result: StatsSnapshot };
  'daemon.shutdown': { params: Record<string, never>; result: { pid: number } };
  'queue.create': {
    params: { name: string; schema?: Record<string, unknown>; retentionMs?: number; maxMessages?: number };
    result: QueueInfo;
  };
  'queue.list': { params: Record<string, never>; result: QueueInfo[] };
  'queue.get': { params: { name: string }; result: QueueInfo };
  'queue.update': {
    params: {
      name: string;
      schema?: Record<string, unknown> | null;
      retentionMs?: number | null;
      maxMessages?: number | null;
    };
    result: QueueInfo;
  };
  'queue.delete': { params: { name: string; force?: boolean }; result: { name: string; deleted: number } };
  'queue.purge': { params: { name: string }; result: { name: string; deleted: number } };
  publish: {
    params: { queue: string; messages: MessageInput[]; wait?: boolean; waitTimeoutMs?: number };
    result: PublishResult;
  };
  'listener.add': { params: ListenerAddParams; result: ListenerInfo };
  'listener.list': { params: { queue?: string }; result: ListenerInfo[] };
  'listener.get': { params: { ref: string; secret?: boolean }; result: ListenerInfo };
  'listener.remove': { params: { ref: string }; result: { id: string } };
  'listener.pause': { params: { ref: string }; result: ListenerInfo };
  'listener.resume': { params: { ref: string }; result: ListenerInfo };
  'deliveries.list': {
    params: { listener?: string; state?: DeliveryState; limit?: number };
    result: DeliveryInfo[];
  };
  'deliveries.retry': { params: { id?: string; allDead?: boolean; listener?: string }; result: { retried: number } };
  listen: { params: ListenParams; result: { reason: string } };
  'listen.ack': { params: { stream: number; tag: number }; result: null };
  'messages.list': {
    params: { queue: string; afterId?: string; sinceMs?: number; limit?: number };
    result: Envelope[];
  };
  /** messages.list, and the ids of damaged records skipped in the page (never served). */
  'messages.page': {
    params: { queue: string; afterId?: string; sinceMs?: number; limit?: number };
    result: { messages: Envelope[]; damaged: string[] };
  };
  'messages.get': { params: { queue: string; id: string }; result: Envelope };
  'messages.delete': { params: { queue: string; id: string }; result: { id: string } };
}

export type RequestType = keyof RequestMap;
export type ParamsOf<T extends RequestType> = RequestMap[T]['params'];
export type ResultOf<T extends RequestType> = RequestMap[T]['result'];

export function validateQueueName(name: unknown): string {
  if (typeof name !== 'string' || !QUEUE_NAME_RE.test(name)) {
    throw new DiscueError(
      'INVALID_QUEUE_NAME',
      `invalid queue name ${JSON.stringify(name)}: use 1-64 characters of a-z A-Z 0-9 . _ -`,
    );
  }
  return name;
}

const MESSAGE_FIELDS = new Set(['data', 'name', 'key']);
/** C0 controls and DEL. */
const CONTROL_CHAR_RE = /[\u0000-\u001f\u007f]/;

/**
 * Checks one message as it arrives from a user. `where` names it in errors
 * ("line 3") for batches.
 */
export function validateMessage(value: unknown, where?: string): MessageInput {
  const at = where ? `${where}: ` : '';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DiscueError('INVALID_MESSAGE', `${at}a message must be a JSON object like {"data":"..."}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!MESSAGE_FIELDS.has(key)) {
      throw new DiscueError(
        'INVALID_MESSAGE',
        `${at}unknown field ${JSON.stringify(key)}: a message has only "data", and optionally "name" and "key"`,
      );
    }
  }
  const { data, name, key } = record;
  if (data === undefined) {
    throw new DiscueError('INVALID_MESSAGE', `${at}the message has no "data" field`);
  }
  if (typeof data !== 'string') {
    throw new DiscueError(
      'INVALID_MESSAGE',
      `${at}"data" must be a string, got ${describeType(data)} (to send JSON, encode it as a string)`,
    );
  }
  const size = Buffer.byteLength(data, 'utf8');
  if (size > MAX_DATA_BYTES) {
    throw new DiscueError(
      'MESSAGE_TOO_LARGE',
      `${at}"data" is ${size} bytes; the limit is ${MAX_DATA_BYTES} bytes (256 KiB)`,
    );
  }
  const message: MessageInput = { data };
  if (name !== undefined) {
    if (typeof name !== 'string') {
      throw new DiscueError('INVALID_MESSAGE', `${at}"name" must be a string, got ${describeType(name)}`);
    }
    if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
      throw new DiscueError('INVALID_MESSAGE', `${at}"name" must be 1-${MAX_NAME_LENGTH} characters`);
    }
    // A command listener gets the name in its environment, which cannot hold a
    // NUL: such a message could never be delivered and would hold up the listener.
    const control = CONTROL_CHAR_RE.exec(name);
    if (control) {
      const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
      throw new DiscueError(
        'INVALID_MESSAGE',
        `${at}"name" contains the control character U+${code} at position ${control.index + 1}; names may not hold C0 control characters or DEL`,
      );
    }
    message.name = name;
  }
  if (key !== undefined) message.key = validateKey(key, at);
  return message;
}

/** An idempotency key: 1-256 printable ASCII characters. */
export function validateKey(key: unknown, at = ''): string {
  if (typeof key !== 'string') {
    throw new DiscueError('INVALID_MESSAGE', `${at}"key" must be a string, got ${describeType(key)}`);
  }
  if (key.length === 0 || key.length > MAX_KEY_LENGTH || !KEY_RE.test(key)) {
    throw new DiscueError(
      'INVALID_MESSAGE',
      `${at}invalid key ${JSON.stringify(key.length > 40 ? key.slice(0, 40) + '…' : key)}: a key is 1-${MAX_KEY_LENGTH} printable ASCII characters (space to ~), e.g. an order number or a UUID`,
    );
  }
  return key;
}

/** Parses a message given as JSON text. */
export function parseMessage(text: string, where?: string): MessageInput {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const at = where ? `${where}: ` : '';
    throw new DiscueError('INVALID_JSON', `${at}not valid JSON (${(cause as Error).message})`, { cause });
  }
  return validateMessage(value, where);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** One number and its unit; a duration is one or more of them ("1m30s"), or a bare number. */
const DURATION_PART_RE = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*/y;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "500ms", "30s", "1m30s", "5m", "2h", "7d", "1w"; a bare number means seconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim();
  let ms: number | undefined;
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) {
    ms = Number(trimmed) * UNIT_MS.s!;
  } else if (trimmed !== '') {
    ms = 0;
    DURATION_PART_RE.lastIndex = 0;
    while (DURATION_PART_RE.lastIndex < trimmed.length) {
      const match = DURATION_PART_RE.exec(trimmed);
      if (!match) {
        ms = undefined;
        break;
      }
      ms += Number(match[1]) * UNIT_MS[match[2]!]!;
    }
  }
  if (ms === undefined) {
    throw new DiscueError(
      'INVALID_DURATION',
      `invalid ${what} ${JSON.stringify(text)}: use a number with a unit, like 500ms, 30s, 1m30s, 5m, 2h, 7d`,
    );
  }
  if (!Number.isFinite(ms) || ms <= 0 || ms > 100 * 365 * UNIT_MS.d!) {
    throw new DiscueError('INVALID_DURATION', `invalid ${what} ${JSON.stringify(text)}: out of range`);
  }
  return Math.round(ms);
}

/** A duration the way one types it: 30s, 1m30s, 7d, 500ms (parseDuration reads it back). */
export function formatDuration(ms: number): string {
  let rest = Math.round(ms);
  let text = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit]!;
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text || '0ms';
}

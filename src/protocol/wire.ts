/**
 * The shapes that cross the socket: the message envelope, what the daemon
 * reports (queues, listeners, deliveries, statistics) and request results.
 */

import type { WireError } from './errors.js';
import type { StoreLocation } from './store.js';

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
  /** The HTTP API's base URL, when it is on. */
  http?: string;
  /** This host's id (in $DISCUE_HOME/host-id): a command listener runs only on the host that added it. */
  hostId?: string;
  /** A clustered store (NATS): its servers, the one connected now, the replicas. */
  cluster?: ClusterStatus;
}

export interface ClusterStatus {
  /** Server URLs, credentials masked. */
  servers: string[];
  /** The server the daemon talks to now; absent while it reconnects. */
  connected?: string;
  replicas: number;
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

/** One publish of a `publish.many` request: its result, or the error a `publish` of its own would have got. */
export type PublishManyOutcome = { ok: true; result: PublishResult } | { ok: false; error: WireError };

export type ListenerKind = 'http' | 'exec' | 'stream';
export type ListenerState = 'active' | 'paused' | 'disabled';
/** Every state a delivery record can be in: the protocol type, the daemon's check and the CLI's --state choices. */
export const DELIVERY_STATES = ['pending', 'failed', 'dead', 'delivered'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

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
  /** HTTP: each delivery carries the CloudEvents 1.0 binary-mode headers too. */
  cloudevents?: boolean;
  state: ListenerState;
  disabledReason?: string;
  createdAt: string;
  /** A command listener on a shared (NATS) store: the id of the only host that runs it; absent: any daemon delivers. */
  host?: string;
  /** Globs on the message name (`*` one segment, `>` the rest); any match delivers. None: everything. */
  filters?: string[];
  /** At most this many sends, "N/s" or "N/m" (a token bucket, per listener). */
  rate?: string;
  /** Checked (GET, 2xx is alive) after a failed delivery, before another attempt is spent. */
  livenessUrl?: string;
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
  /** Waiting for its rate limit (not failing). */
  throttled?: boolean;
  /** With a liveness URL: whether the receiver answered its last check (absent: not checked yet). */
  liveness?: 'alive' | 'down';
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

/** A `messages.page` reply (see RequestMap). */
export interface MessagePageResult {
  messages: Envelope[];
  damaged: string[];
  next?: string;
}

/** One message pushed to a `listen` stream; ack it with `listen.ack`. */
export interface StreamEvent {
  tag: number;
  message: Envelope;
}

export interface WaitOutcome {
  listener: string;
  name?: string;
  /**
   * refused: the receiver answered 410 Gone and the listener was disabled; the message was not delivered.
   * skipped: the listener's filters take none of the messages: nothing was sent to it, and it was not waited for.
   */
  state: 'delivered' | 'dead' | 'pending' | 'refused' | 'skipped';
  /** Why a refused listener was disabled. */
  reason?: string;
  /** With pending: why it is taking long (the listener's failures so far). */
  health?: ListenerHealth;
}


/** An HTTP API token as `token list` shows it: never the token itself, which only `token create` returns, once. */
export interface TokenInfo {
  name: string;
  scopes: string[];
  createdAt: string;
}

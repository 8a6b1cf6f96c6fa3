/**
 * The storage contract (the backend seam). The daemon, the delivery engine
 * and the request handlers talk to queues, messages, listeners and delivery
 * progress only through these interfaces, so a second backend (NATS
 * JetStream) can implement them without touching the daemon. Only LevelDB is
 * built (backend/level/). This file imports no storage library: everything
 * it speaks is a plain type, and test/backend/ checks any implementation
 * against it.
 */
import type { Attempt, ClusterStatus, DeliveryState, Envelope, ListenerInfo, MessageInput, QueueInfo } from '../protocol/wire.js';

export type { Attempt, ClusterStatus, DeliveryState, Envelope, MessageInput, QueueInfo };

/**
 * How far a listener has got in a queue, or where a page starts. Opaque to
 * everything above the backend: a message id for LevelDB, a stream sequence
 * for JetStream. Callers only hand back what the backend gave them.
 */
export type Position = string;

/**
 * A queue as everything below the catalogue refers to it: fixed when the
 * queue is created, kept by a rename. Its name lives only in the catalogue
 * record; request handlers resolve names to ids (queueId) and replies map
 * ids back (queueName), so a rename is one write to the catalogue.
 */
export type QueueId = string;

export interface QueueConfig {
  name: string;
  schema?: Record<string, unknown>;
  retentionMs?: number;
  maxMessages?: number;
}

/** `null` removes a setting; `undefined` leaves it as it is. */
export interface QueuePatch {
  schema?: Record<string, unknown> | null;
  retentionMs?: number | null;
  maxMessages?: number | null;
}

export interface ListOptions {
  /** Only messages after this position (exclusive). */
  afterId?: Position;
  /**
   * Where the page before ended: its `next`, handed back unchanged. It
   * replaces afterId and sinceMs (the page goes on from there).
   */
  next?: Position;
  /** Only messages stored at or after this time (ms since epoch). */
  sinceMs?: number;
  limit: number;
}

/** Idempotency keys: JetStream's duplicate window, kept by any backend. */
export interface DedupeOptions {
  /** A key is a duplicate for this long after its first message was stored (ms). */
  windowMs: number;
  /** At most this many keys are kept per queue; past it the oldest are forgotten early. */
  maxKeys: number;
}

export interface StoreStats {
  queues: number;
  messages: number;
  /** What is wrong with the storage now (disk full, damaged records found), for `daemon status`. */
  warnings: string[];
  /** A clustered backend's servers (credentials masked), the one connected now, and the replicas. */
  cluster?: ClusterStatus;
}


/** A page of messages, and the ids of damaged records skipped in it (never served). */
export interface MessagePage {
  messages: Envelope[];
  damaged: string[];
  /**
   * Where the next page starts (past the damaged records read too); absent
   * when the page read nothing, so the caller asks again from where it was.
   */
  next?: Position;
}

/** Where the store reports what it detects (the daemon's log fits). */
export interface StoreLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What appendOnce did with a batch, position by position. */
export interface AppendOutcome {
  /** One id per input: the new message's, or for a duplicate the first message's with that key. */
  ids: string[];
  /**
   * The furthest position of every message the batch names (new or
   * duplicate): a `publish --wait` waits until each consumer has settled
   * through it (Consumer.settledThrough), never comparing ids itself.
   */
  through: Position;
  /** The messages actually stored, in order (what listeners get). */
  stored: Envelope[];
  /** Positions of inputs that stored nothing because their key was seen (0-based). */
  duplicates: number[];
  /** When the batch was stored; for a batch of duplicates only, when the first of them was. */
  publishedAt: string;
}

export type AppendListener = (queue: QueueId, messages: Envelope[]) => void;
/**
 * The catalogue's change feed. `name` is the queue's name after the event
 * (for `renamed`, the new one; `previous` the old one); `updated`: its
 * settings changed (schema, retention, limit).
 */
export type QueueEvent =
  | { type: 'created'; queue: QueueId; name: string }
  | { type: 'updated'; queue: QueueId; name: string }
  | { type: 'deleted'; queue: QueueId; name: string; removedListeners: string[] }
  | { type: 'renamed'; queue: QueueId; name: string; previous: string };
export type QueueEventListener = (event: QueueEvent) => void;

/** What a backend does by itself, so the daemon does not guess. */
export interface BackendSupports {
  /** Removes messages past a queue's age limit by itself (JetStream max_age); otherwise the daemon calls enforceRetention. */
  retention: boolean;
  /** Shared by several daemons (a cluster); otherwise one daemon owns it. */
  clustering: boolean;
  /** A consumer records an outcome and moves its position in one atomic write. */
  atomicSettle: boolean;
}

export interface Store {
  readonly supports: BackendSupports;
  open(): Promise<void>;
  /** Finishes pending writes, then closes. */
  close(): Promise<void>;

  /**
   * Resolves once the backend can answer; BACKEND_UNAVAILABLE when it cannot
   * within a few seconds (a cluster down or without quorum). Answers made
   * from memory (listQueues) wait for it, so an outage is not passed off as
   * the state. Absent: always ready (a local store).
   */
  ready?(what: string): Promise<void>;

  // The catalogue: the only place a queue's name is kept.
  listQueues(): QueueInfo[];
  /** The id of the queue with this name; QUEUE_NOT_FOUND (with a suggestion) if there is none. */
  queueId(name: string): QueueId;
  /** The queue's name now, or undefined once it is deleted. */
  queueName(id: QueueId): string | undefined;
  /** Every queue's id. */
  queueIds(): QueueId[];
  hasQueue(id: QueueId): boolean;
  /** The queue's settings, without touching the disk (the publish path uses it). */
  queueConfig(id: QueueId): QueueConfig;
  getQueue(name: string): Promise<QueueInfo>;
  createQueue(config: QueueConfig): Promise<QueueInfo>;
  updateQueue(name: string, patch: QueuePatch): Promise<QueueInfo>;
  /**
   * Gives a queue a new name, in one durable write: its id, and with it its
   * messages, listeners, positions and deliveries, stay as they are.
   * QUEUE_EXISTS if `to` is taken.
   */
  renameQueue(from: string, to: string): Promise<QueueInfo>;
  /** Removes the queue and all its messages; returns how many messages went. */
  deleteQueue(name: string): Promise<number>;
  /** Removes every message stored so far, keeps the queue. */
  purgeQueue(name: string): Promise<number>;

  // Messages, by queue id. Envelopes carry the queue's name as the catalogue has it when they are read.
  /**
   * Stores messages in order and resolves once they are durable (synced).
   * Concurrent appends share disk writes.
   */
  append(queue: QueueId, messages: MessageInput[]): Promise<Envelope[]>;
  /**
   * Like append, with idempotency keys: a message whose `key` this queue
   * stored within the dedupe window is not stored again (JetStream's
   * Nats-Msg-Id). A key is written in the same synced batch as its message.
   */
  appendOnce(queue: QueueId, messages: MessageInput[]): Promise<AppendOutcome>;
  /** Up to `limit` good messages; damaged records are skipped (and logged). */
  listMessages(queue: QueueId, options: ListOptions): Promise<Envelope[]>;
  /** As listMessages, and says which damaged records it skipped. */
  readMessages(queue: QueueId, options: ListOptions): Promise<MessagePage>;
  /**
   * Counts every message after `afterId`, and names the last one counted.
   * No removal of the queue's messages runs while it counts: a removal is
   * either in the count's snapshot or reaches the consumers after it.
   */
  countMessages(queue: QueueId, options: { afterId?: Position }): Promise<{ count: number; lastId: Position | undefined }>;
  /**
   * Stores messages exported from another store (`discue import`), keeping
   * their ids and publish times, after every message the queue holds, in
   * order; durable when it resolves. Listeners get them as any append.
   */
  importMessages(queue: QueueId, messages: Envelope[]): Promise<void>;
  /** Throws DATA_CORRUPT for a record that fails its checksum. */
  getMessage(queue: QueueId, id: string): Promise<Envelope>;
  deleteMessage(queue: QueueId, id: string): Promise<void>;
  /**
   * Removes messages past their queue's age limit, and idempotency keys past
   * their window; returns how many messages. Called by the daemon unless
   * supports.retention.
   */
  enforceRetention(now?: number): Promise<number>;

  /**
   * Called after each durable append, in append order (statistics). The
   * backend's own consumers learn of appends and removals by themselves.
   */
  onAppend(listener: AppendListener): void;
  onQueueEvent(listener: QueueEventListener): void;
  /**
   * Listener registrations and delivery records, kept by the same backend
   * as the messages so an acknowledgement is atomic with the position it
   * moves (LevelDB: one batch; JetStream: durable consumers).
   */
  readonly deliveries: Deliveries;
  /**
   * Hands out one listener's messages of one queue, in order, and takes
   * their outcome (JetStream: a pull consumer). A durable consumer starts
   * at the position stored for it (saveListener puts the first one); one
   * with no stored position, at `options.start`. The caller closes it.
   */
  consumer(listener: ListenerRecord, queue: QueueId, options: ConsumerOptions): Consumer;
  stats(): StoreStats;
}

// ---- listeners and delivery progress ---------------------------------------

/**
 * What is stored of a listener: what the daemon reports (ListenerInfo) minus
 * the live figures it adds when asked, with its queues by id (the reply
 * names them).
 */
export type ListenerRecord = Omit<ListenerInfo, 'hasSecret' | 'progress' | 'stats' | 'connected' | 'queues'> & { queues: QueueId[] };

export interface DeliveryRecord {
  listenerId: string;
  queue: QueueId;
  messageId: string;
  state: DeliveryState;
  attempts: Attempt[];
  /**
   * Attempts made before the current round: `deliveries retry` starts a fresh
   * round of max-attempts without forgetting the earlier attempts.
   */
  roundStart?: number;
  nextAttemptAt?: string;
  updatedAt: string;
}

export interface DeliveryFilter {
  listenerId?: string;
  state?: DeliveryState;
  limit: number;
}

/**
 * The listener registry and what each listener has done with each message:
 * a record for each delivery that needed more than one try (open or dead),
 * plus a bounded history of delivered ones. Positions are the consumers'.
 */
export interface Deliveries {
  /**
   * Listener changes made by another daemon sharing the store (a cluster),
   * so a listener added on one host delivers on every other. This daemon's
   * own saves and removals are not reported back; a one-daemon store
   * (LevelDB) never reports any.
   */
  onListenerEvent(listener: (event: ListenerEvent) => void): void;
  listeners(): ListenerRecord[];
  listener(id: string): ListenerRecord | undefined;
  byName(name: string): ListenerRecord | undefined;
  /**
   * Saves a listener, and in the same durable write the position of each of
   * its queues that has none yet: `start` ('all' when not given), resolved
   * now (`end` is the queue's end at this moment, not when a consumer opens).
   */
  saveListener(record: ListenerRecord, start?: StartAt): Promise<void>;
  /** Removes a listener with its cursors, open and dead deliveries, and history. */
  removeListener(id: string): Promise<void>;
  /**
   * Moves a durable listener's position in one queue to just before `at` (a
   * time, or a message id: that message is delivered again), back or
   * forward, in one durable write; its open deliveries after the new
   * position are forgotten (they go out again as new). The listener's
   * consumers of that queue must be closed first and opened after (replay).
   * Returns how many stored messages lie after the new position.
   */
  movePosition(lid: string, queue: QueueId, at: { sinceMs: number } | { messageId: string }): Promise<number>;
  /**
   * Removes a listener's open, dead and delivered records of a deleted queue
   * (the listener stays, registered for its other queues).
   */
  forgetQueueRecords(lid: string, queue: QueueId): Promise<void>;

  get(lid: string, messageId: string): Promise<DeliveryRecord | undefined>;
  /** Open and dead records (and with state 'delivered', the history), newest first. */
  list(filter: DeliveryFilter): Promise<DeliveryRecord[]>;
  /** Open (pending/failed) deliveries of a listener, oldest first (its consumers resume them). */
  openDeliveries(lid: string): Promise<DeliveryRecord[]>;
  deadDeliveries(lid: string): Promise<DeliveryRecord[]>;
}

/**
 * A listener saved or removed elsewhere. `saved` carries the registry's own
 * record (an existing one is updated in place, so workers holding it see the
 * new state) and the queues it took before (absent: it is new here).
 */
export type ListenerEvent = { type: 'saved'; record: ListenerRecord; previousQueues?: QueueId[] } | { type: 'removed'; id: string };

// ---- consumers -------------------------------------------------------------

/**
 * Where a listener with no position yet starts: every stored message, the
 * queue's end, a time, or (an import) after a given message id in each
 * queue, the end of a queue the map does not name.
 */
export type StartAt = 'all' | 'end' | { sinceMs: number } | { afterIds: Record<QueueId, string> };

export interface ConsumerOptions {
  /**
   * Keeps position and delivery records in the backend, so a restart
   * resumes them (a listener); otherwise they live as long as the consumer
   * (a foreground listen without a name).
   */
  durable: boolean;
  /** Where a consumer with no stored position starts (default 'all'). */
  start?: StartAt;
  /**
   * Deliveries out at once, at most (the listener's concurrency; JetStream
   * max_ack_pending). One waiting out a retry delay counts: with 1, a
   * message being retried holds back the ones after it, so order holds.
   */
  maxInFlight: number;
  /**
   * Globs on the message name (protocol/choose.ts): only matching messages
   * are handed out; the others move the position without an attempt.
   * Absent or empty: every message. JetStream: filter_subjects, with the
   * name in the subject, so the server skips them.
   */
  filters?: string[];
  /**
   * Called when the position moved without a settle of this consumer's own
   * (past filtered messages; NATS: the server's floor read back), so
   * settledThrough may have changed.
   */
  onPassed?: () => void;
}

/** One message handed out to one listener (JetStream: a JsMsg). */
export interface Delivery {
  readonly position: Position;
  /**
   * The stored message; undefined when it is damaged (fails its checksum)
   * and so cannot be sent as published: record it dead, with the reason.
   */
  readonly message: Envelope | undefined;
  /** What was done so far: attempts (of every round), roundStart, nextAttemptAt. */
  readonly record: DeliveryRecord;
}

/** What a consumer shows of its progress (listener list, stats, top). */
export interface ConsumerProgress {
  /** The id of the last message settled in order: the listener's cursor, as users see it. */
  cursor?: string;
  /** Deliveries out: being sent, or waiting out a retry delay. */
  inFlight: number;
  /** Stored messages after the position: the backlog. */
  pending: number;
  /** Age of the oldest message not settled in order; 0 when there is none. */
  lagMs: number;
  /** When the earliest delivery waiting out a retry delay is due (ms since epoch). */
  nextRetryAt?: number;
}

/**
 * A listener's view of one queue. The outcome verbs take the delivery
 * `next` handed out, return at once, and write in the background (close
 * waits for the writes); what is settled in order moves the position.
 */
export interface Consumer {
  /**
   * The next due delivery, waiting for one: a dead one requeued, one
   * released, a retry whose delay passed, or the next message in order.
   * Undefined once `signal` aborts or the consumer closes.
   */
  next(signal: AbortSignal): Promise<Delivery | undefined>;
  /** Acknowledged: records the attempt, settles it. */
  delivered(delivery: Delivery, attempt: Attempt): void;
  /** Records a failed attempt; hands the delivery out again after `delayMs` (JetStream: nak with delay). */
  retry(delivery: Delivery, attempt: Attempt, delayMs: number): void;
  /** Records the last attempt; settles it dead (kept until requeued). */
  dead(delivery: Delivery, attempt: Attempt): void;
  /** Not an attempt (paused, disconnected, shutting down): hands it out first again later. */
  release(delivery: Delivery): void;
  /**
   * A dead delivery of this queue handed out again, out of order, for a
   * fresh round of attempts; saved before it resolves. False when there is
   * no such dead delivery.
   */
  requeue(messageId: string): Promise<boolean>;
  /** Whether everything up to and including `position` is settled, in order (publish --wait). */
  settledThrough(position: Position): boolean;
  /** Whether the message was settled dead recently (publish --wait reports it). */
  wasDead(messageId: string): boolean;
  progress(now?: number): ConsumerProgress;
  /** Looks up what progress() cannot answer from memory (the lag's oldest message); cheap when nothing is missing. */
  refresh(): Promise<void>;
  /** Hands out nothing more; resolves once its writes are done. */
  close(): Promise<void>;
}

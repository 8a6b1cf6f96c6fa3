/**
 * The storage contract (the backend seam). The daemon, the delivery engine
 * and the request handlers talk to queues, messages, listeners and delivery
 * progress only through these interfaces, so a second backend (NATS
 * JetStream) can implement them without touching the daemon. Only LevelDB is
 * built (backend/level/). This file imports no storage library: everything
 * it speaks is a plain type, and test/backend/ checks any implementation
 * against it.
 */
import type { Attempt, DeliveryState, Envelope, ListenerInfo, MessageInput, QueueInfo } from '../protocol/wire.js';

export type { Attempt, DeliveryState, Envelope, MessageInput, QueueInfo };

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
  /** The messages actually stored, in order (what listeners get). */
  stored: Envelope[];
  /** Positions of inputs that stored nothing because their key was seen (0-based). */
  duplicates: number[];
  /** When the batch was stored; for a batch of duplicates only, when the first of them was. */
  publishedAt: string;
}

export type AppendListener = (queue: QueueId, messages: Envelope[]) => void;
/** Ids removed from a queue (retention, purge, trim, delete), in id order, after they are gone from disk. */
export type RemoveListener = (queue: QueueId, ids: string[]) => void;
/**
 * The catalogue's change feed. `name` is the queue's name after the event
 * (for `renamed`, the new one; `previous` the old one).
 */
export type QueueEvent =
  | { type: 'created'; queue: QueueId; name: string }
  | { type: 'deleted'; queue: QueueId; name: string; removedListeners: string[] }
  | { type: 'renamed'; queue: QueueId; name: string; previous: string };
export type QueueEventListener = (event: QueueEvent) => void;

/** What a backend does by itself, so the daemon does not guess. */
export interface BackendSupports {
  /** Removes messages past a queue's age limit by itself (JetStream max_age); otherwise the daemon calls enforceRetention. */
  retention: boolean;
  /** Shared by several daemons (a cluster); otherwise one daemon owns it. */
  clustering: boolean;
  /** settle() records an outcome and moves the cursor in one atomic write. */
  atomicSettle: boolean;
}

export interface Store {
  readonly supports: BackendSupports;
  open(): Promise<void>;
  /** Finishes pending writes, then closes. */
  close(): Promise<void>;

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
  /** The newest message's position: where a listener that starts "from new" starts. */
  lastPosition(id: QueueId): Position | undefined;
  getQueue(name: string): Promise<QueueInfo>;
  createQueue(config: QueueConfig): Promise<QueueInfo>;
  updateQueue(name: string, patch: QueuePatch): Promise<QueueInfo>;
  /**
   * Gives a queue a new name, in one durable write: its id, and with it its
   * messages, listeners, cursors and deliveries, stay as they are.
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
   * either in the count's snapshot or reported (onRemove) after the count.
   */
  countMessages(queue: QueueId, options: { afterId?: Position }): Promise<{ count: number; lastId: Position | undefined }>;
  /** Throws DATA_CORRUPT for a record that fails its checksum. */
  getMessage(queue: QueueId, id: string): Promise<Envelope>;
  deleteMessage(queue: QueueId, id: string): Promise<void>;
  /**
   * Removes messages past their queue's age limit, and idempotency keys past
   * their window; returns how many messages. Called by the daemon unless
   * supports.retention.
   */
  enforceRetention(now?: number): Promise<number>;

  /** Called after each durable append, in append order. */
  onAppend(listener: AppendListener): void;
  onRemove(listener: RemoveListener): void;
  onQueueEvent(listener: QueueEventListener): void;
  /**
   * Listener registrations and delivery progress, kept by the same backend
   * as the messages so an acknowledgement is atomic with the cursor it moves
   * (LevelDB: one batch; JetStream: durable consumers).
   */
  readonly deliveries: Deliveries;
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
 * a cursor per (listener, queue) for what is settled in order, and a record
 * for each delivery that needed more than one try (open or dead), plus a
 * bounded history of delivered ones.
 */
export interface Deliveries {
  listeners(): ListenerRecord[];
  listener(id: string): ListenerRecord | undefined;
  byName(name: string): ListenerRecord | undefined;
  /** Saves a listener, and with it the cursors it starts from (one durable write). */
  saveListener(record: ListenerRecord, cursors?: { queue: QueueId; cursor: Position | undefined }[]): Promise<void>;
  /** Removes a listener with its cursors, open and dead deliveries, and history. */
  removeListener(id: string): Promise<void>;
  /**
   * Removes a listener's open, dead and delivered records of a deleted queue
   * (the listener stays, registered for its other queues).
   */
  forgetQueueRecords(lid: string, queue: QueueId): Promise<void>;

  /** The last position settled in order by this listener in this queue. */
  cursor(lid: string, queue: QueueId): Position | undefined;
  /**
   * Records the outcome of a delivery and, if given, advances the cursor,
   * atomically and durably. Delivered records go to the bounded history;
   * dead ones stay until retried or the listener is removed.
   */
  settle(record: DeliveryRecord, cursor: Position | undefined): Promise<void>;
  /** Advances only the cursor (messages skipped, e.g. filtered or removed). */
  advance(lid: string, queue: QueueId, cursor: Position): Promise<void>;
  /** Drops an open or dead delivery record (its message is gone: nothing left to deliver). */
  forget(lid: string, messageId: string): Promise<void>;
  /** Persists a delivery still being retried, so a restart keeps its attempt count. */
  saveOpen(record: DeliveryRecord): Promise<void>;

  get(lid: string, messageId: string): Promise<DeliveryRecord | undefined>;
  /** Open and dead records (and with state 'delivered', the history), newest first. */
  list(filter: DeliveryFilter): Promise<DeliveryRecord[]>;
  /** Open (pending/failed) deliveries of a listener, oldest first: resumed at start. */
  openDeliveries(lid: string): Promise<DeliveryRecord[]>;
  deadDeliveries(lid: string): Promise<DeliveryRecord[]>;
}

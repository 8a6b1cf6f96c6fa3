/**
 * The storage contract. The daemon talks to queues and messages only through
 * this interface, so a second backend (a distributed log such as NATS
 * JetStream) can implement it without touching the daemon. Only LevelDB is
 * built (store/level.ts).
 */
import type { Envelope, MessageInput, QueueInfo } from '../protocol/messages.js';
import type { DeliveryStore } from './deliveries.js';

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
  /** Only messages after this id (exclusive). */
  afterId?: string;
  /** Only messages stored at or after this time (ms since epoch). */
  sinceMs?: number;
  limit: number;
}

export interface StoreStats {
  queues: number;
  messages: number;
  batches: number;
  writes: number;
  largestBatch: number;
  /** What is wrong with the storage now (disk full, damaged records found), for `daemon status`. */
  warnings: string[];
}

/** A page of messages, and the ids of damaged records skipped in it (never served). */
export interface MessagePage {
  messages: Envelope[];
  damaged: string[];
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

export type AppendListener = (queue: string, messages: Envelope[]) => void;
/** Ids removed from a queue (retention, purge, trim, delete), in id order, after they are gone from disk. */
export type RemoveListener = (queue: string, ids: string[]) => void;
export type QueueEventListener = (event: { type: 'created' | 'deleted'; queue: string; removedListeners?: string[] }) => void;

export interface Store {
  open(): Promise<void>;
  /** Finishes pending writes, then closes. */
  close(): Promise<void>;

  listQueues(): QueueInfo[];
  getQueue(name: string): Promise<QueueInfo>;
  hasQueue(name: string): boolean;
  /** The queue's settings, without touching the disk (the publish path uses it). */
  queueConfig(name: string): QueueConfig;
  createQueue(config: QueueConfig): Promise<QueueInfo>;
  updateQueue(name: string, patch: QueuePatch): Promise<QueueInfo>;
  /** Removes the queue and all its messages; returns how many messages went. */
  deleteQueue(name: string): Promise<number>;
  /** Removes every message stored so far, keeps the queue. */
  purgeQueue(name: string): Promise<number>;

  /**
   * Stores messages in order and resolves once they are durable (synced).
   * Concurrent appends share disk writes.
   */
  append(queue: string, messages: MessageInput[]): Promise<Envelope[]>;
  /**
   * Like append, with idempotency keys: a message whose `key` this queue
   * stored within the dedupe window is not stored again (JetStream's
   * Nats-Msg-Id). A key is written in the same synced batch as its message.
   */
  appendOnce(queue: string, messages: MessageInput[]): Promise<AppendOutcome>;
  /** Up to `limit` good messages; damaged records are skipped (and logged). */
  listMessages(queue: string, options: ListOptions): Promise<Envelope[]>;
  /** As listMessages, and says which damaged records it skipped. */
  readMessages(queue: string, options: ListOptions): Promise<MessagePage>;
  /**
   * Counts every message after `afterId`, and names the last one counted.
   * No removal of the queue's messages runs while it counts: a removal is
   * either in the count's snapshot or reported (onRemove) after the count.
   */
  countMessages(queue: string, options: { afterId?: string }): Promise<{ count: number; lastId: string | undefined }>;
  /** Throws DATA_CORRUPT for a record that fails its checksum. */
  getMessage(queue: string, id: string): Promise<Envelope>;
  deleteMessage(queue: string, id: string): Promise<void>;
  /** Removes messages past their queue's age limit; returns how many. */
  enforceRetention(now?: number): Promise<number>;

  /** Called after each durable append, in append order. */
  onAppend(listener: AppendListener): void;
  onRemove(listener: RemoveListener): void;
  onQueueEvent(listener: QueueEventListener): void;
  /**
   * Listener registrations and delivery progress, in the same database as
   * the messages so acknowledgements are atomic. (A second backend would
   * bring its own, e.g. JetStream durable consumers.)
   */
  readonly deliveries: DeliveryStore;
  stats(): StoreStats;
}

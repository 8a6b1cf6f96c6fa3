/**
 * Every request the daemon serves: its params and its result. The typed
 * client is built from this, and the daemon's handler map is typed over it.
 */
import type {
  DaemonStatus,
  DeliveryInfo,
  DeliveryState,
  Envelope,
  ListenerInfo,
  MessageInput,
  MessagePageResult,
  PublishManyOutcome,
  PublishResult,
  QueueInfo,
  StatsSnapshot,
  TokenInfo,
} from './wire.js';

/** Where a new listener or listen starts: new (messages stored from now on) or all (the backlog too). */
export const START_FROM = ['new', 'all'] as const;
export type StartFrom = (typeof START_FROM)[number];

export function isStartFrom(value: unknown): value is StartFrom {
  return (START_FROM as readonly unknown[]).includes(value);
}

export interface ListenerAddParams {
  kind: 'http' | 'exec';
  queues: string[];
  name?: string;
  url?: string;
  headers?: Record<string, string>;
  secret?: string;
  /** HTTP: add the CloudEvents binary-mode headers to each delivery. */
  cloudevents?: boolean;
  command?: string;
  shell?: boolean;
  cwd?: string;
  /** A command listener on a shared (NATS) store: run by any daemon, not only this host's. */
  anyHost?: boolean;
  /** `discue import`: start after this message id in each queue named (the end of the others), instead of `from`. */
  afterIds?: Record<string, string>;
  /** Added paused (`discue import` of a paused listener: no daemon delivers before it is resumed). */
  paused?: boolean;
  timeoutMs?: number;
  maxAttempts?: number;
  retryDelayMs?: number;
  concurrency?: number;
  /** 'new', 'all', or a time (ms since epoch): messages stored from then on. */
  from?: StartFrom | number;
  filters?: string[];
  rate?: string;
  livenessUrl?: string;
}

/** `null` clears a setting; absent leaves it. */
export interface ListenerUpdateParams {
  ref: string;
  filters?: string[] | null;
  rate?: string | null;
  livenessUrl?: string | null;
}

/** Where a replay starts: a time (ms since epoch) or a message id (that message included). */
export interface ListenerReplayParams {
  ref: string;
  sinceMs?: number;
  messageId?: string;
  /** Only count what would go out. */
  dryRun?: boolean;
}

export interface ListenParams {
  /** Queues to listen to; empty means all queues, including ones created later. */
  queues: string[];
  /** Durable: the daemon keeps the position under this name. */
  name?: string;
  from?: StartFrom;
  /** With from "new": start at messages stored from this time (ms), e.g. when the command started. */
  sinceMs?: number;
  /** Messages sent before waiting for acks. */
  prefetch?: number;
  filters?: string[];
}

/** Every request type, its params and its result: the typed client is built from this. */
export interface RequestMap {
  /** `features`: requests this daemon serves beyond protocol 1's first set (absent from older daemons). */
  hello: { params: { protocol: number; version: string }; result: { protocol: number; version: string; pid: number; features?: string[] } };
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
  /** Renames a queue, keeping its messages, listeners and deliveries. */
  'queue.rename': { params: { name: string; to: string }; result: QueueInfo };
  publish: {
    params: { queue: string; messages: MessageInput[]; wait?: boolean; waitTimeoutMs?: number };
    result: PublishResult;
  };
  /**
   * Publishes in one frame, each stored and answered as a publish of its own
   * (in order; one failing leaves the others be). No `wait`. The library
   * sends it for publishes made in the same tick, when the daemon's hello
   * lists the feature "publish.many".
   */
  'publish.many': {
    params: { publishes: { queue: string; messages: MessageInput[] }[] };
    result: { results: PublishManyOutcome[] };
  };
  'listener.add': { params: ListenerAddParams; result: ListenerInfo };
  'listener.list': { params: { queue?: string }; result: ListenerInfo[] };
  'listener.get': { params: { ref: string; secret?: boolean }; result: ListenerInfo };
  'listener.remove': { params: { ref: string }; result: { id: string } };
  'listener.pause': { params: { ref: string }; result: ListenerInfo };
  'listener.resume': { params: { ref: string }; result: ListenerInfo };
  'listener.update': { params: ListenerUpdateParams; result: ListenerInfo };
  /** Moves the listener back and delivers again from there; `messages`: how many go out (at most, with filters: matching ones). */
  'listener.replay': { params: ListenerReplayParams; result: { messages: number; queues: string[] } };
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
  /**
   * messages.list, the ids of damaged records skipped in the page (never
   * served), and `next`: an opaque token for where the page ended. Pass it
   * back alone (with queue and limit) for the page after; it is absent when
   * the page read nothing (ask again with the same one). Keep asking until a
   * page holds no messages.
   */
  'messages.page': {
    params: { queue: string; afterId?: string; sinceMs?: number; next?: string; limit?: number };
    result: MessagePageResult;
  };
  /** Exported messages stored under their own ids and times, after the queue's last one (`discue import`). */
  'messages.import': { params: { queue: string; messages: Envelope[] }; result: { imported: number } };
  'messages.get': { params: { queue: string; id: string }; result: Envelope };
  'messages.delete': { params: { queue: string; id: string }; result: { id: string } };
  /** HTTP API tokens; the token itself is in this result only. */
  'token.create': { params: { name: string; scopes: string[] }; result: TokenInfo & { token: string } };
  'token.list': { params: Record<string, never>; result: TokenInfo[] };
  'token.revoke': { params: { name: string }; result: { name: string } };
}

export type RequestType = keyof RequestMap;
export type ParamsOf<T extends RequestType> = RequestMap[T]['params'];
export type ResultOf<T extends RequestType> = RequestMap[T]['result'];

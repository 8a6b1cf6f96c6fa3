/**
 * Streams: foreground `discue listen` connections. A stream is a listener
 * of kind 'stream' whose receiver is the client's connection (stream.ts).
 * A named one is stored and keeps its positions across connections; one
 * without a name lives as long as its connection, from where it started.
 */
import { DiscueError } from '../protocol/errors.js';
import type { StreamEvent } from '../protocol/wire.js';
import type { ListenerRecord, StartAt, Store } from '../backend/types.js';
import type { DeliveryEngine } from './engine.js';
import { newListenerId } from './listeners.js';
import { StreamConnection } from './stream.js';

export interface StreamOptions {
  /** The queues to take; none: every queue, and those created later. */
  queues: string[];
  name?: string;
  from: 'new' | 'all';
  /** With from "new": start at this time instead of the queue's end now. */
  sinceMs?: number;
  prefetch: number;
  /** Globs on the message name; none: every message. */
  filters?: string[];
}

/** A connected stream, as the connection that carries it holds it. */
export interface Stream {
  listenerId: string;
  detach(): void;
  ack(tag: number): boolean;
}

export class Streams {
  /** The client connection of each stream listener, shared by its workers (one per queue). */
  private readonly connections = new Map<string, StreamConnection>();

  constructor(
    private readonly store: Store,
    private readonly engine: DeliveryEngine,
  ) {}

  /** The connection a stream listener's workers send through (made on first use, attached by `listen`). */
  connection(listenerId: string): StreamConnection {
    let connection = this.connections.get(listenerId);
    if (!connection) {
      connection = new StreamConnection();
      this.connections.set(listenerId, connection);
    }
    return connection;
  }

  connected(listenerId: string): boolean {
    return this.connections.get(listenerId)?.attached ?? false;
  }

  /** A stream listener removed: its connection gets nothing more. */
  forget(listenerId: string): void {
    this.connections.get(listenerId)?.detach();
    this.connections.delete(listenerId);
  }

  detachAll(): void {
    for (const connection of this.connections.values()) connection.detach();
  }

  /** Attaches a `listen` connection: a named (stored) stream listener or one without a name. */
  async attach(options: StreamOptions, emit: (event: StreamEvent) => void): Promise<Stream> {
    const { listeners } = this.engine;
    let record: ListenerRecord | undefined = options.name ? listeners.byName(options.name) : undefined;
    if (record && record.kind !== 'stream') {
      throw new DiscueError('LISTENER_EXISTS', `"${options.name}" is the name of a ${record.kind} listener`);
    }
    if (record && this.connected(record.id)) {
      throw new DiscueError('LISTENER_EXISTS', `a listen named "${options.name}" is already connected`);
    }
    const start: StartAt = options.from === 'all' ? 'all' : options.sinceMs === undefined ? 'end' : { sinceMs: options.sinceMs };
    if (record && (!sameQueues(record, options) || !sameFilters(record.filters, options.filters))) {
      // The same name with other queues or filters: follow what the user asks now, keep positions of shared queues.
      await this.engine.stopWorkers(record.id);
      record.queues = options.queues;
      record.allQueues = options.queues.length === 0;
      if (options.filters?.length) record.filters = options.filters;
      else delete record.filters;
      await this.store.deliveries.saveListener(record, start);
      this.engine.startWorkers(record);
    }
    if (record && this.store.supports.clustering && record.host !== this.engine.hostId) {
      // A named listen on a shared store is delivered by the daemon it is
      // connected to: the one it was on before stops pulling its messages
      // (which it would hold for a receiver that is not there).
      record.host = this.engine.hostId;
      await this.store.deliveries.saveListener(record, start);
      this.engine.startWorkers(record);
    }
    if (!record) {
      record = {
        id: newListenerId(),
        kind: 'stream',
        queues: options.queues,
        allQueues: options.queues.length === 0,
        timeoutMs: 0,
        maxAttempts: 1,
        retryDelayMs: 1000,
        concurrency: Math.max(1, options.prefetch),
        state: 'active',
        createdAt: new Date().toISOString(),
      };
      if (options.filters?.length) record.filters = options.filters;
      if (options.name) {
        record.name = options.name;
        if (this.store.supports.clustering) record.host = this.engine.hostId;
        await this.store.deliveries.saveListener(record, start);
        this.engine.startWorkers(record);
      } else {
        listeners.unnamed.set(record.id, record);
        this.engine.startWorkers(record, start);
      }
    }
    const listenerId = record.id;
    const connection = this.connection(listenerId);
    connection.attach({ emit });
    this.engine.wake(listenerId);
    return {
      listenerId,
      ack: (tag) => connection.ack(tag),
      detach: () => {
        connection.detach();
        if (listeners.unnamed.delete(listenerId)) {
          this.connections.delete(listenerId);
          void this.engine.stopWorkers(listenerId);
        }
        this.engine.waiters.check();
      },
    };
  }
}

function sameQueues(record: ListenerRecord, options: StreamOptions): boolean {
  if (options.queues.length === 0) return record.allQueues === true;
  return !record.allQueues && [...record.queues].sort().join(',') === [...options.queues].sort().join(',');
}

function sameFilters(a: string[] | undefined, b: string[] | undefined): boolean {
  return [...(a ?? [])].sort().join('\n') === [...(b ?? [])].sort().join('\n');
}

/**
 * The queue catalogue as every backend holds it in memory: one entry per
 * queue, found by name (what users type) and by id (what everything below
 * the catalogue keeps, so a rename touches one entry). Each backend makes it
 * durable its own way (LevelDB records, a NATS KV bucket) and keeps this in
 * step; the look-ups, their errors and the identity checks live here once.
 */
import { DiscueError } from '../protocol/errors.js';
import { didYouMean } from '../protocol/suggest.js';
import type { QueueConfig, QueueId } from './types.js';

export interface CatalogueEntry extends QueueConfig {
  qid: QueueId;
}

export class Catalogue<T extends CatalogueEntry> {
  private readonly byName = new Map<string, T>();
  private readonly byId = new Map<QueueId, T>();

  get size(): number {
    return this.byName.size;
  }

  entries(): T[] {
    return [...this.byName.values()];
  }

  /** By name, as `queue list` shows them. */
  sorted(): T[] {
    return this.entries().sort((a, b) => a.name.localeCompare(b.name));
  }

  ids(): QueueId[] {
    return [...this.byId.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  hasId(id: QueueId): boolean {
    return this.byId.has(id);
  }

  find(name: string): T | undefined {
    return this.byName.get(name);
  }

  findById(id: QueueId): T | undefined {
    return this.byId.get(id);
  }

  nameOf(id: QueueId): string | undefined {
    return this.byId.get(id)?.name;
  }

  /** The queue a user named, or QUEUE_NOT_FOUND with the nearest names. */
  named(name: string): T {
    const entry = this.byName.get(name);
    if (entry === undefined) {
      throw new DiscueError('QUEUE_NOT_FOUND', `queue "${name}" does not exist${didYouMean(name, this.byName.keys())} (see \`discue queue list\`)`);
    }
    return entry;
  }

  /** A caller holding the id of a queue deleted meanwhile (a worker, a publish racing a delete) gets QUEUE_NOT_FOUND. */
  withId(id: QueueId): T {
    const entry = this.byId.get(id);
    if (entry === undefined) throw new DiscueError('QUEUE_NOT_FOUND', 'the queue was deleted');
    return entry;
  }

  config(id: QueueId): QueueConfig {
    const { name, schema, retentionMs, maxMessages } = this.withId(id);
    const config: QueueConfig = { name };
    if (schema !== undefined) config.schema = schema;
    if (retentionMs !== undefined) config.retentionMs = retentionMs;
    if (maxMessages !== undefined) config.maxMessages = maxMessages;
    return config;
  }

  /**
   * Still the catalogue's entry for its queue: false once the queue was
   * deleted, or deleted and created again under the same name, so a trim or
   * sweep that ran meanwhile does not write a dead entry back.
   */
  isCurrent(entry: T): boolean {
    return this.byId.get(entry.qid) === entry;
  }

  add(entry: T): void {
    this.byName.set(entry.name, entry);
    this.byId.set(entry.qid, entry);
  }

  /** Forgets the entry under its name and id, unless another entry took them meanwhile. */
  remove(entry: T): void {
    if (this.byName.get(entry.name) === entry) this.byName.delete(entry.name);
    if (this.byId.get(entry.qid) === entry) this.byId.delete(entry.qid);
  }

  /** The same queue (same id, same entry) under another name. */
  rename(entry: T, to: string): void {
    if (this.byName.get(entry.name) === entry) this.byName.delete(entry.name);
    entry.name = to;
    this.byName.set(to, entry);
  }
}
